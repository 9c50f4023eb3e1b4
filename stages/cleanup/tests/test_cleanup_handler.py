"""The Lambda edge: a raw EventBridge event or an SQS batch of them, partial failures, settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from cleanup_fixtures import (
    AUDIT_TABLE,
    BUCKETS,
    MONTH,
    PARTNER,
    REGION,
    CleanupStack,
    LambdaContext,
    eventbridge_event,
    sqs_batch,
)
from ryuzen_cleanup import cleanup_handler
from ryuzen_cleanup.bundle_delivered import InvalidBundleEvent, parse_bundle_delivered
from ryuzen_cleanup.cleanup_settings import CleanupSettings, make_signer
from ryuzen_cleanup.delete_old_telemetry import NotDeliveredYet
from ryuzen_contracts.audit_log import AuditEventType
from ryuzen_contracts.bundle_state import BundleState
from ryuzen_contracts.key_layout import bundle_key
from ryuzen_contracts.settings import SettingsError
from ryuzen_contracts.signing import KmsSigner, LocalSigner

CONTEXT = LambdaContext("ryuzen-cleanup")


def environment(key_file: Path) -> dict[str, str]:
    return {
        "SANITIZED_BUCKET": BUCKETS["sanitized"],
        "ANALYTICS_BUCKET": BUCKETS["analytics"],
        "BUNDLES_BUCKET": BUCKETS["bundles"],
        "AUDIT_TABLE": AUDIT_TABLE,
        "SIGNING_KEY_FILE": str(key_file),
    }


@pytest.fixture
def handler_env(
    stack: CleanupStack, key_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[CleanupStack]:
    """The stage's environment as the local stack sets it, and a fresh runtime."""
    for name, value in environment(key_files[0]).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SIGNING_KMS_KEY_ID", raising=False)
    cleanup_handler.reset_runtime()
    yield stack
    cleanup_handler.reset_runtime()


def system_errors(stack: CleanupStack) -> list[str]:
    since = datetime.now(UTC) - timedelta(hours=1)
    return [
        str(event.detail["error"])
        for event in stack.audit.system_events(since)
        if event.event_type is AuditEventType.ERROR
    ]


def test_an_eventbridge_event_cleans_the_month(handler_env: CleanupStack) -> None:
    stack = handler_env
    stack.move_to(BundleState.DELIVERED)
    stack.put_month()

    result = cleanup_handler.lambda_handler(eventbridge_event(), CONTEXT)

    assert result == {"outcome": "CLEANED"}
    assert stack.keys("sanitized") == stack.keys("analytics") == set()
    assert stack.states.get(PARTNER, MONTH).state is BundleState.CLEANED


def test_an_eventbridge_event_too_early_is_raised_for_lambda_to_retry(
    handler_env: CleanupStack,
) -> None:
    handler_env.move_to(BundleState.BUILT)

    with pytest.raises(NotDeliveredYet):
        cleanup_handler.lambda_handler(eventbridge_event(), CONTEXT)


def test_an_sqs_batch_reports_only_the_month_to_retry(handler_env: CleanupStack) -> None:
    # Given one delivered month and one whose state is still BUILT...
    stack = handler_env
    stack.move_to(BundleState.DELIVERED)
    stack.put_month()
    stack.move_to(BundleState.BUILT, "nimbus-ai")
    waiting = stack.put_month("nimbus-ai")

    result = cleanup_handler.lambda_handler(
        sqs_batch(
            json.dumps(eventbridge_event()),
            json.dumps(eventbridge_event("nimbus-ai")),
        ),
        CONTEXT,
    )

    # ...the delivered month is cleaned and only the other message comes back.
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert stack.states.get(PARTNER, MONTH).state is BundleState.CLEANED
    assert waiting <= stack.keys("sanitized") | stack.keys("analytics")


def test_redelivered_and_refused_messages_are_acknowledged(handler_env: CleanupStack) -> None:
    stack = handler_env
    stack.move_to(BundleState.DELIVERED)
    stack.put_month()
    first = json.dumps(eventbridge_event())
    cleanup_handler.lambda_handler(sqs_batch(first), CONTEXT)

    result = cleanup_handler.lambda_handler(
        sqs_batch(first, json.dumps(eventbridge_event("orbital"))), CONTEXT
    )

    assert result == {"batchItemFailures": []}
    refusals = [
        e.detail["error"]
        for e in stack.audit.for_partner_month("orbital", MONTH)
        if e.event_type is AuditEventType.ERROR
    ]
    assert refusals == ["no_bundle_state"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("not json", id="not-json"),
        pytest.param(json.dumps([1, 2]), id="not-an-object"),
        pytest.param(
            json.dumps({**eventbridge_event(), "detail-type": "BundleCreated"}), id="other-type"
        ),
        pytest.param(json.dumps({**eventbridge_event(), "source": "aws.s3"}), id="other-source"),
        pytest.param(json.dumps(eventbridge_event(detail={"sha256": "ABC"})), id="bad-sha256"),
        pytest.param(
            json.dumps(eventbridge_event(detail={"partner": "../x"})), id="hostile-partner"
        ),
        pytest.param(
            json.dumps(eventbridge_event(detail={"bundle_key": bundle_key("orbital", MONTH)})),
            id="another-partners-bundle",
        ),
    ],
)
def test_a_malformed_event_is_audited_and_acknowledged(
    handler_env: CleanupStack, body: str
) -> None:
    stack = handler_env
    stack.move_to(BundleState.DELIVERED)
    month_keys = stack.put_month()

    # Two messages: with one alone, powertools raises for an entirely failed batch.
    result = cleanup_handler.lambda_handler(sqs_batch(body, body), CONTEXT)

    assert result == {"batchItemFailures": []}
    assert month_keys <= stack.keys("sanitized") | stack.keys("analytics")
    assert system_errors(stack) == ["invalid_event", "invalid_event"]


def test_a_failure_is_audited_and_the_message_retried(
    handler_env: CleanupStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = handler_env
    stack.move_to(BundleState.DELIVERED)
    monkeypatch.setenv("SANITIZED_BUCKET", "no-such-bucket")
    cleanup_handler.reset_runtime()

    with pytest.raises(BatchProcessingError):
        cleanup_handler.lambda_handler(sqs_batch(json.dumps(eventbridge_event())), CONTEXT)

    errors = [e for e in stack.events() if e.event_type is AuditEventType.ERROR]
    assert [e.detail for e in errors] == [{"step": "delete_sanitized", "error": "NoSuchBucket"}]
    assert stack.states.get(PARTNER, MONTH).state is BundleState.DELIVERED


def test_the_event_the_bundle_stage_emits_parses() -> None:
    event = json.loads((Path(__file__).parent / "events" / "bundle_delivered.json").read_text())

    parsed = parse_bundle_delivered(event)

    assert (parsed.partner, parsed.month) == ("acme", "2026-11")
    assert parsed.bundle_key == bundle_key("acme", "2026-11")
    with pytest.raises(InvalidBundleEvent) as raised:
        parse_bundle_delivered({**event, "detail": {**event["detail"], "partner": "Secret Co"}})
    assert "Secret" not in str(raised.value)  # names fields, never echoes values


def test_settings_need_a_signer(key_files: tuple[Path, Path]) -> None:
    env = environment(key_files[0])
    del env["SIGNING_KEY_FILE"]

    with pytest.raises(SettingsError, match=r"SIGNING_KMS_KEY_ID.*SIGNING_KEY_FILE"):
        CleanupSettings.from_environ(env)


def test_settings_name_a_missing_bucket(key_files: tuple[Path, Path]) -> None:
    env = environment(key_files[0])
    del env["BUNDLES_BUCKET"]

    with pytest.raises(SettingsError, match="BUNDLES_BUCKET"):
        CleanupSettings.from_environ(env)


def test_the_signer_is_kms_in_aws_and_the_key_file_locally(
    key_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    local = CleanupSettings.from_environ(environment(key_files[0]))
    both = CleanupSettings.from_environ(
        {**environment(key_files[0]), "SIGNING_KMS_KEY_ID": "alias/ryuzen-signing"}
    )

    assert isinstance(make_signer(local), LocalSigner)
    # KMS wins when both are set, as in sanitize and bundle (no call is made here).
    assert isinstance(make_signer(both), KmsSigner)


def test_the_event_as_an_eventbridge_rule_puts_it_on_a_queue(handler_env: CleanupStack) -> None:
    # Given the local stack's wiring: a rule on the bus whose target is an SQS queue...
    stack = handler_env
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="bundle-delivered")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.create_event_bus(Name="ryuzen-bus")
    events.put_rule(
        Name="bundle-delivered",
        EventBusName="ryuzen-bus",
        EventPattern=json.dumps(
            {"source": ["ryuzen.telemetry"], "detail-type": ["BundleDelivered"]}
        ),
    )
    events.put_targets(
        Rule="bundle-delivered",
        EventBusName="ryuzen-bus",
        Targets=[{"Id": "cleanup", "Arn": queue_arn}],
    )
    stack.move_to(BundleState.DELIVERED)
    stack.put_month()
    # ...when the bundle stage puts its event on the bus (its exact PutEvents entry)...
    events.put_events(
        Entries=[
            {
                "Source": "ryuzen.telemetry",
                "DetailType": "BundleDelivered",
                "Detail": json.dumps(eventbridge_event()["detail"], sort_keys=True),
                "EventBusName": "ryuzen-bus",
            }
        ]
    )
    (message,) = sqs.receive_message(QueueUrl=queue_url)["Messages"]

    # ...the message the queue hands over cleans the month.
    result = cleanup_handler.lambda_handler(
        sqs_batch(message["Body"], json.dumps(eventbridge_event("orbital"))), CONTEXT
    )

    assert result == {"batchItemFailures": []}
    assert stack.states.get(PARTNER, MONTH).state is BundleState.CLEANED
