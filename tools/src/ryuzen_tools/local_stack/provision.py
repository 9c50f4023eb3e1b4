"""Create one stack's AWS resources in moto, from its StackConfig.

Names derive from the stack name (``ryuzen-dev-raw``), so two stacks never collide in one
moto backend. What is created mirrors the Pulumi program where moto can emulate it:
encrypted, public-access-blocked, never versioned buckets; S3 event notifications into SQS
queues with dead-letter queues; the audit and idempotency tables; KMS keys; API keys for
every ingest client and partner; the EventBridge bus the bundle task announces
``BundleDelivered`` on, and a rule on it whose target is the ``bundle-delivered`` queue
(in AWS the rule invokes the cleanup Lambda itself; here the queue's poller does).
Skipped on purpose: the TLS-only bucket policy (moto denies every request under an
``aws:SecureTransport`` condition, DESIGN §6).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ryuzen_contracts.bundle_delivered import DETAIL_TYPE, EVENT_SOURCE
from ryuzen_contracts.stack_config import StackConfig
from ryuzen_contracts.tables import (
    AUDIT_TTL_ATTRIBUTE,
    IDEMPOTENCY_TTL_ATTRIBUTE,
    audit_table_definition,
    idempotency_table_definition,
)

from ryuzen_tools.local_stack.aws import LocalClients

BUCKET_ROLES = ("raw", "sanitized", "analytics", "quarantine", "bundles", "artifacts")
# Where telemetry lives while it is worked on. Versioning stays off on them (it is never
# enabled on any bucket here): with versioning a DeleteObjects only adds delete markers
# and the data stays, so cleanup's "deleted" would not be true (DESIGN §5).
WORKING_BUCKET_ROLES = ("raw", "sanitized", "analytics", "quarantine")
TABLE_ROLES = ("audit", "idempotency")

# key_layout has no constant for these filters; tests assert that raw_key() starts with
# RAW_PREFIX and sanitized_key() ends with SANITIZED_SUFFIX, so they cannot drift apart.
RAW_PREFIX = "raw/"
SANITIZED_SUFFIX = ".parquet"

DLQ_RETENTION_SECONDS = 14 * 24 * 3600
RAW_LIFECYCLE_DAYS = 1  # the backstop; S3 lifecycle cannot count hours (DESIGN §5)


@dataclass(frozen=True)
class NotificationRoute:
    """S3 ``ObjectCreated`` events of one bucket, filtered by key, into one queue."""

    queue_role: str
    bucket_role: str
    filter_name: Literal["prefix", "suffix"]
    filter_value: str


NOTIFICATION_ROUTES = (
    NotificationRoute("raw-events", "raw", "prefix", RAW_PREFIX),
    NotificationRoute("sanitized-events", "sanitized", "suffix", SANITIZED_SUFFIX),
)


@dataclass(frozen=True)
class EventRoute:
    """Events of one source and detail-type on the stack's bus, by a rule, into one queue."""

    queue_role: str
    source: str
    detail_type: str
    # A delivery delay on the queue (SQS DelaySeconds); see BUNDLE_DELIVERED_ROUTE.
    delay_s: int = 0

    def pattern(self) -> str:
        """The rule's event pattern."""
        return json.dumps({"source": [self.source], "detail-type": [self.detail_type]})


# The contracts' BundleDelivered event. The builder emits
# the event just *before* it commits DELIVERED, and cleanup refuses a month that is not
# DELIVERED yet, to be retried once the queue's visibility timeout ends (a minute). A few
# seconds' delivery delay lets the commit land first, so the first attempt cleans.
BUNDLE_DELIVERED_ROUTE = EventRoute("bundle-delivered", EVENT_SOURCE, DETAIL_TYPE, delay_s=5)
EVENT_ROUTES = (BUNDLE_DELIVERED_ROUTE,)


@dataclass(frozen=True)
class QueueSettings:
    """How the stage queues behave: visibility timeout and receives before the DLQ."""

    visibility_timeout_s: int = 30
    max_receive_count: int = 3
    # Per queue role, the timeout of the stage consuming it. AWS refuses an event source
    # mapping whose queue's visibility timeout is shorter than the function's timeout (a
    # message would reappear, and be processed twice, while its first run still goes on),
    # so such a queue's visibility timeout is raised to the consumer's timeout.
    consumer_timeouts_s: Mapping[str, float] = field(default_factory=dict)

    def visibility_for(self, role: str) -> int:
        """The visibility timeout of the queue ``role``, in seconds."""
        return max(self.visibility_timeout_s, math.ceil(self.consumer_timeouts_s.get(role, 0)))


@dataclass(frozen=True)
class QueueResources:
    """A stage queue and its dead-letter queue."""

    role: str
    name: str
    url: str
    arn: str
    dlq_name: str
    dlq_url: str
    dlq_arn: str


@dataclass(frozen=True)
class QueueSender:
    """Who may send to a queue: an AWS service principal, from one source ARN."""

    service: str
    source_arn: str


@dataclass(frozen=True)
class ApiKey:
    """An API Gateway key created by moto; ``owner`` is the client or partner id."""

    id: str
    value: str
    owner: str
    kind: Literal["ingest", "partner"]


@dataclass(frozen=True)
class LocalStackResources:
    """Everything provisioned for one stack, by role."""

    stack: str
    region: str
    buckets: dict[str, str]
    queues: dict[str, QueueResources]
    tables: dict[str, str]
    kms_keys: dict[str, str]
    ingest_keys: dict[str, ApiKey] = field(default_factory=dict)
    partner_keys: dict[str, ApiKey] = field(default_factory=dict)
    event_bus: str = ""
    # EventBridge rule names on ``event_bus``, by the role of the queue each targets.
    event_rules: dict[str, str] = field(default_factory=dict)

    @property
    def signing_key_id(self) -> str:
        """The KMS ECC_NIST_P256 SIGN_VERIFY key the deployed stack signs attestations with.

        Provisioned so the local stack matches the deployed one; the local stages sign with
        a key file instead (``signing_key.py``), because moto's KMS mishandles digests.
        """
        return self.kms_keys["signing"]

    def api_key_clients(self) -> dict[str, str]:
        """``{api key id: ingest client id}``: the ingest stage's ``API_KEY_CLIENTS``."""
        return {key.id: client for client, key in self.ingest_keys.items()}

    def api_key_partners(self) -> dict[str, str]:
        """``{api key id: partner id}``: the pull handler's ``API_KEY_PARTNERS``."""
        return {key.id: partner for partner, key in self.partner_keys.items()}

    def all_api_keys(self) -> list[ApiKey]:
        """Every key the gateway knows, ingest and partner alike."""
        return [*self.ingest_keys.values(), *self.partner_keys.values()]


def resource_name(stack: str, role: str) -> str:
    """``ryuzen-{stack}-{role}``: the one naming rule for local resources."""
    return f"ryuzen-{stack}-{role}"


def provision(
    clients: LocalClients,
    config: StackConfig,
    *,
    stack: str,
    queue_settings: QueueSettings | None = None,
) -> LocalStackResources:
    """Create every resource of ``stack`` and return their names, URLs and ids."""
    settings = queue_settings or QueueSettings()
    kms_keys = _create_keys(clients.client("kms"), stack)
    buckets = {role: resource_name(stack, role) for role in BUCKET_ROLES}
    s3 = clients.client("s3")
    for role, name in buckets.items():
        key_id = kms_keys["quarantine" if role == "quarantine" else "data"]
        _create_bucket(s3, name, clients.region, key_id)
    _add_lifecycle(s3, buckets["raw"], RAW_LIFECYCLE_DAYS)
    _add_lifecycle(s3, buckets["quarantine"], config.retention.quarantine_days)

    sqs = clients.client("sqs")
    queues = {
        route.queue_role: _create_queue_pair(
            sqs,
            route.queue_role,
            resource_name(stack, route.queue_role),
            settings,
            QueueSender("s3.amazonaws.com", _bucket_arn(buckets[route.bucket_role])),
        )
        for route in NOTIFICATION_ROUTES
    }
    _add_notifications(s3, buckets, queues)
    event_bus = resource_name(stack, "events")
    event_rules = _add_event_routes(clients.client("events"), sqs, stack, event_bus, settings)
    queues.update({role: queue for role, (_, queue) in event_rules.items()})

    ddb = clients.client("dynamodb")
    tables = {role: resource_name(stack, role) for role in TABLE_ROLES}
    _create_table(ddb, audit_table_definition(tables["audit"]), AUDIT_TTL_ATTRIBUTE)
    _create_table(
        ddb, idempotency_table_definition(tables["idempotency"]), IDEMPOTENCY_TTL_ATTRIBUTE
    )

    apigateway = clients.client("apigateway")
    ingest_keys = {
        client.id: _create_api_key(apigateway, stack, "client", client.id, "ingest")
        for client in config.ingest_clients
    }
    partner_keys = {
        partner.id: _create_api_key(apigateway, stack, "partner", partner.id, "partner")
        for partner in config.partners
    }
    return LocalStackResources(
        stack=stack,
        region=clients.region,
        buckets=buckets,
        queues=queues,
        tables=tables,
        kms_keys=kms_keys,
        ingest_keys=ingest_keys,
        partner_keys=partner_keys,
        event_bus=event_bus,
        event_rules={role: rule for role, (rule, _) in event_rules.items()},
    )


def _create_keys(kms: Any, stack: str) -> dict[str, str]:
    specs = {
        "data": {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"},
        # The quarantine bucket has its own key so its readers can be listed separately.
        "quarantine": {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"},
        "signing": {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
        # sanitize derives the secret of its quarantined-value hash from this key's MAC
        "quarantine-hash": {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
    }
    keys = {}
    for role, spec in specs.items():
        key_id = kms.create_key(Description=f"ryuzen {stack} {role}", **spec)["KeyMetadata"][
            "KeyId"
        ]
        kms.create_alias(AliasName=f"alias/{resource_name(stack, role)}", TargetKeyId=key_id)
        keys[role] = key_id
    return keys


def _create_bucket(s3: Any, name: str, region: str, kms_key_id: str) -> None:
    options: dict[str, Any] = {}
    if region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
        options["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(Bucket=name, **options)
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": kms_key_id,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    # moto stores but does not enforce this (DESIGN §6); set anyway so the stack looks
    # like the deployed one to anything that reads its configuration.
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def _add_lifecycle(s3: Any, bucket: str, days: int) -> None:
    # moto never expires objects; the rule documents intent and matches the deployed stack.
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-working-data",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": days},
                }
            ]
        },
    )


def _bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def _create_queue_pair(
    sqs: Any,
    role: str,
    name: str,
    settings: QueueSettings,
    sender: QueueSender,
    *,
    delay_s: int = 0,
) -> QueueResources:
    dlq_name = f"{name}-dlq"
    dlq_url = sqs.create_queue(
        QueueName=dlq_name, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
    )["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(settings.visibility_for(role)),
            "DelaySeconds": str(delay_s),
            # SQS itself moves a message to the DLQ once it has been received this many
            # times without being deleted; moto honours it (tests/test_event_source.py).
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count}
            ),
        },
    )["QueueUrl"]
    arn = _queue_arn(sqs, url)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": _may_send(arn, sender)})
    return QueueResources(
        role=role,
        name=name,
        url=url,
        arn=arn,
        dlq_name=dlq_name,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
    )


def _queue_arn(sqs: Any, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def _may_send(queue_arn: str, sender: QueueSender) -> str:
    # moto does not evaluate queue policies; AWS does, and refuses an S3 notification
    # configuration (or drops a rule's events) without this one.
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": sender.service},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": sender.source_arn}},
                }
            ],
        }
    )


def _add_notifications(s3: Any, buckets: dict[str, str], queues: dict[str, QueueResources]) -> None:
    for route in NOTIFICATION_ROUTES:
        # Configuring the notification makes S3 (and moto) send one s3:TestEvent message.
        s3.put_bucket_notification_configuration(
            Bucket=buckets[route.bucket_role],
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "Id": f"{route.bucket_role}-to-{route.queue_role}",
                        "QueueArn": queues[route.queue_role].arn,
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {
                                "FilterRules": [
                                    {"Name": route.filter_name, "Value": route.filter_value}
                                ]
                            }
                        },
                    }
                ]
            },
        )


def _add_event_routes(
    events: Any, sqs: Any, stack: str, event_bus: str, settings: QueueSettings
) -> dict[str, tuple[str, QueueResources]]:
    """The bus, and per EventRoute a rule on it targeting a new queue: ``{role: (rule, queue)}``."""
    events.create_event_bus(Name=event_bus)
    routes = {}
    for route in EVENT_ROUTES:
        rule = resource_name(stack, route.queue_role)
        rule_arn = events.put_rule(
            Name=rule, EventBusName=event_bus, EventPattern=route.pattern(), State="ENABLED"
        )["RuleArn"]
        queue = _create_queue_pair(
            sqs,
            route.queue_role,
            resource_name(stack, route.queue_role),
            settings,
            QueueSender("events.amazonaws.com", rule_arn),
            delay_s=route.delay_s,
        )
        events.put_targets(
            Rule=rule,
            EventBusName=event_bus,
            Targets=[{"Id": f"{route.queue_role}-queue", "Arn": queue.arn}],
        )
        routes[route.queue_role] = (rule, queue)
    return routes


def _create_table(ddb: Any, definition: dict[str, Any], ttl_attribute: str) -> None:
    ddb.create_table(**definition)
    ddb.update_time_to_live(
        TableName=definition["TableName"],
        TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
    )


def _create_api_key(
    apigateway: Any, stack: str, name_part: str, owner: str, kind: Literal["ingest", "partner"]
) -> ApiKey:
    created = apigateway.create_api_key(
        name=resource_name(stack, f"{name_part}-{owner}"), enabled=True, generateDistinctId=True
    )
    return ApiKey(id=created["id"], value=created["value"], owner=owner, kind=kind)
