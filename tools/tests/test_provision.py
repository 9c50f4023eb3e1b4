"""Provisioning creates the whole stack from Pulumi.dev.yaml; S3 and EventBridge feed SQS."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from ryuzen_bundle.bundle_event import emit_bundle_delivered
from ryuzen_contracts.bundle_delivered import DETAIL_TYPE, EVENT_SOURCE, BundleDelivered
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import raw_key, sanitized_key
from ryuzen_contracts.stack_config import load_stack_config, stack_file
from ryuzen_tools.local_stack.aws import LocalClients
from ryuzen_tools.local_stack.provision import (
    BUCKET_ROLES,
    BUNDLE_DELIVERED_ROUTE,
    RAW_PREFIX,
    SANITIZED_SUFFIX,
    LocalStackResources,
    QueueSettings,
    provision,
)
from ryuzen_tools.project_files import stack_region
from tools_support import unique


@pytest.fixture(scope="module")
def resources(aws: LocalClients, project_dir: Path) -> LocalStackResources:
    config = load_stack_config(stack_file(project_dir, "dev"))
    return provision(aws, config, stack=unique("prov"), queue_settings=QueueSettings(5, 2))


def test_the_dev_stack_file_sets_the_region(project_dir: Path) -> None:
    assert stack_region(stack_file(project_dir, "dev")) == "eu-west-1"


def test_every_bucket_is_encrypted_and_blocks_public_access(
    aws: LocalClients, resources: LocalStackResources
) -> None:
    s3 = aws.client("s3")
    assert set(resources.buckets) == set(BUCKET_ROLES)
    for role, name in resources.buckets.items():
        assert name == f"ryuzen-{resources.stack}-{role}"
        rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][
            0
        ]
        default = rule["ApplyServerSideEncryptionByDefault"]
        assert default["SSEAlgorithm"] == "aws:kms"
        expected_key = resources.kms_keys["quarantine" if role == "quarantine" else "data"]
        assert default["KMSMasterKeyID"] == expected_key
        block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        assert "Status" not in s3.get_bucket_versioning(Bucket=name)  # versioning never enabled


def test_queues_have_dlqs_with_the_redrive_policy(
    aws: LocalClients, resources: LocalStackResources
) -> None:
    sqs = aws.client("sqs")
    assert set(resources.queues) == {"raw-events", "sanitized-events", "bundle-delivered"}
    for role, queue in resources.queues.items():
        assert queue.name == f"ryuzen-{resources.stack}-{role}"
        assert queue.dlq_name == f"{queue.name}-dlq"
        attributes = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])[
            "Attributes"
        ]
        assert json.loads(attributes["RedrivePolicy"]) == {
            "deadLetterTargetArn": queue.dlq_arn,
            "maxReceiveCount": 2,
        }
        assert attributes["VisibilityTimeout"] == "5"
        policy = json.loads(attributes["Policy"])
        sender = "events" if role == "bundle-delivered" else "s3"
        assert policy["Statement"][0]["Principal"] == {"Service": f"{sender}.amazonaws.com"}


def test_bundle_delivered_has_a_rule_on_the_bus_targeting_its_queue(
    aws: LocalClients, resources: LocalStackResources
) -> None:
    events = aws.client("events")
    rule = resources.event_rules["bundle-delivered"]
    described = events.describe_rule(Name=rule, EventBusName=resources.event_bus)
    assert described["State"] == "ENABLED"
    # the rule matches exactly what the bundle stage emits
    assert json.loads(described["EventPattern"]) == {
        "source": [EVENT_SOURCE],
        "detail-type": [DETAIL_TYPE],
    }
    (target,) = events.list_targets_by_rule(Rule=rule, EventBusName=resources.event_bus)["Targets"]
    queue = resources.queues["bundle-delivered"]
    assert target["Arn"] == queue.arn
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])[
        "Attributes"
    ]
    policy = json.loads(attributes["Policy"])["Statement"][0]
    assert policy["Condition"] == {"ArnEquals": {"aws:SourceArn": described["Arn"]}}
    assert attributes["DelaySeconds"] == str(BUNDLE_DELIVERED_ROUTE.delay_s)


def test_the_bundle_stages_event_reaches_the_bundle_delivered_queue(
    aws: LocalClients, resources: LocalStackResources
) -> None:
    # Given the provisioned bus and rule, when the bundle stage's own code emits its event
    # (and a foreign event too)
    events = aws.client("events")
    detail = BundleDelivered.for_bundle("acme", "2026-10", "0" * 64, 1024)
    emit_bundle_delivered(events, resources.event_bus, detail)
    events.put_events(
        Entries=[
            {
                "Source": "someone.else",
                "DetailType": DETAIL_TYPE,
                "Detail": "{}",
                "EventBusName": resources.event_bus,
            }
        ]
    )
    # Then, once the queue's delivery delay has passed for both, the queue holds exactly
    # the BundleDelivered event, as the cleanup handler reads it
    queue = resources.queues["bundle-delivered"]
    (body,) = _drain(aws, queue.url, want=2, timeout_s=BUNDLE_DELIVERED_ROUTE.delay_s + 3)
    assert (body["source"], body["detail-type"]) == (EVENT_SOURCE, DETAIL_TYPE)
    assert body["detail"] == json.loads(detail.detail_json())


def test_tables_match_the_contract_definitions(
    aws: LocalClients, resources: LocalStackResources
) -> None:
    ddb = aws.client("dynamodb")
    audit = ddb.describe_table(TableName=resources.tables["audit"])["Table"]
    assert [k["AttributeName"] for k in audit["KeySchema"]] == ["pk", "sk"]
    assert audit["GlobalSecondaryIndexes"][0]["IndexName"] == "event_type-sk-index"
    idempotency = ddb.describe_table(TableName=resources.tables["idempotency"])["Table"]
    assert [k["AttributeName"] for k in idempotency["KeySchema"]] == ["id"]
    ttl = ddb.describe_time_to_live(TableName=resources.tables["idempotency"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expiration"


def test_the_signing_key_is_an_ecc_p256_signing_key(
    aws: LocalClients, resources: LocalStackResources
) -> None:
    metadata = aws.client("kms").describe_key(KeyId=resources.signing_key_id)["KeyMetadata"]
    assert metadata["KeySpec"] == "ECC_NIST_P256"
    assert metadata["KeyUsage"] == "SIGN_VERIFY"


def test_api_keys_exist_for_every_client_and_partner(
    aws: LocalClients, resources: LocalStackResources, project_dir: Path
) -> None:
    config = load_stack_config(stack_file(project_dir, "dev"))
    assert set(resources.ingest_keys) == {c.id for c in config.ingest_clients}
    assert set(resources.partner_keys) == {p.id for p in config.partners}
    stored = {
        item["id"]: item["value"]
        for item in aws.client("apigateway").get_api_keys(includeValues=True)["items"]
    }
    for key in resources.all_api_keys():
        assert stored[key.id] == key.value
    assert resources.api_key_clients() == {k.id: c for c, k in resources.ingest_keys.items()}


def test_the_notification_filters_match_the_key_layout() -> None:
    batch = new_ulid()
    assert raw_key(datetime.now(UTC), batch).startswith(RAW_PREFIX)
    assert sanitized_key("acme", "2026-11", batch).endswith(SANITIZED_SUFFIX)


def _drain(aws: LocalClients, url: str, want: int, timeout_s: float = 10) -> list[dict[str, Any]]:
    sqs = aws.client("sqs")
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(bodies) < want and time.monotonic() < deadline:
        for message in sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_s3_object_created_events_reach_their_queues(
    aws: LocalClients, resources: LocalStackResources
) -> None:
    # Given the provisioned stack (whose notification setup sent one s3:TestEvent per bucket)
    s3 = aws.client("s3")
    batch = new_ulid()
    raw = raw_key(datetime.now(UTC), batch)
    sanitized = sanitized_key("acme", "2026-11", batch)

    # When objects are written, some outside the filters
    s3.put_object(Bucket=resources.buckets["raw"], Key=raw, Body=b"x")
    s3.put_object(Bucket=resources.buckets["raw"], Key="elsewhere/x.gz", Body=b"x")
    s3.put_object(Bucket=resources.buckets["sanitized"], Key=sanitized, Body=b"x")
    s3.put_object(Bucket=resources.buckets["sanitized"], Key=sanitized + ".json", Body=b"x")

    # Then each queue holds the test event and exactly the matching object
    for role, key in (("raw-events", raw), ("sanitized-events", sanitized)):
        bodies = _drain(aws, resources.queues[role].url, want=2)
        assert [b.get("Event") for b in bodies if "Event" in b] == ["s3:TestEvent"]
        records = [r for b in bodies for r in b.get("Records", [])]
        # Keys in S3 notifications are URL-encoded; moto encodes "/" too (quote_plus), so
        # consumers must unquote_plus them, which is right for AWS as well.
        assert [unquote_plus(r["s3"]["object"]["key"]) for r in records] == [key]
        assert records[0]["eventName"].startswith("ObjectCreated:")
        assert _drain(aws, resources.queues[role].url, want=1, timeout_s=1) == []
