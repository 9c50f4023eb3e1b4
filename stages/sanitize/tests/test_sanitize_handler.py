"""The Lambda edge: S3 notifications in SQS, test events, URL-decoded keys, partial failures."""

from __future__ import annotations

import io
import json
from pathlib import Path

import boto3
import pytest
from raw_batches import RECEIVED_AT, event, raw_object
from ryuzen_contracts.audit_log import AuditEventType
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.settings import SettingsError
from ryuzen_sanitize import sanitize_handler
from ryuzen_sanitize.quarantine import value_hasher_from_kms
from ryuzen_sanitize.sanitize_handler import SanitizeSettings, s3_keys
from sanitize_lambda_events import EVENTS, Context, notification, sqs_event


@pytest.fixture
def handler_env(stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    key_file = tmp_path / "key.pem"  # written by make_stack
    env = {
        "RAW_BUCKET": "raw",
        "SANITIZED_BUCKET": "sanitized",
        "QUARANTINE_BUCKET": "quarantine",
        "AUDIT_TABLE": "audit",
        "STACK_CONFIG": stack.target.config.to_json(),
        "SIGNING_KEY_FILE": str(key_file),
        "POWERTOOLS_SERVICE_NAME": "ryuzen-sanitize",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("QUARANTINE_HASH_KMS_KEY_ID", raising=False)
    sanitize_handler.runtime.cache_clear()
    yield stack
    sanitize_handler.runtime.cache_clear()


def test_test_events_and_other_buckets_are_ignored() -> None:
    assert s3_keys(json.dumps({"Event": "s3:TestEvent", "Service": "Amazon S3"}), "raw") == []
    assert s3_keys(notification("other-bucket", "raw/x"), "raw") == []


def test_keys_are_url_decoded() -> None:
    assert s3_keys(notification("raw", "raw/a b+c.ndjson.gz"), "raw") == ["raw/a b+c.ndjson.gz"]


def test_one_bad_object_fails_alone(handler_env) -> None:
    stack = handler_env
    good_batch = new_ulid(RECEIVED_AT)
    good_key = stack.put_raw(raw_object([(event(), "acme")], good_batch), good_batch)
    bad_key = stack.put_raw(b"this is not gzip")
    event_in = sqs_event(
        notification("raw", good_key),
        json.dumps({"Event": "s3:TestEvent"}),
        notification("raw", bad_key),
    )

    result = sanitize_handler.lambda_handler(event_in, Context())

    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert stack.keys("raw") == [bad_key]
    errors = stack.audit.system_events(RECEIVED_AT.replace(year=2000))
    assert [e.event_type for e in errors] == [AuditEventType.ERROR]
    assert errors[0].detail["error"] == "RawObjectError"


def test_the_quarantined_value_hash_is_keyed_by_the_configured_kms_key(
    handler_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the stack's HMAC key in the environment, as the Pulumi program sets it...
    stack = handler_env
    kms = boto3.client("kms", region_name="eu-west-1")
    key_id = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"][
        "KeyId"
    ]
    monkeypatch.setenv("QUARANTINE_HASH_KMS_KEY_ID", key_id)
    batch = new_ulid(RECEIVED_AT)
    pii_id = {**event(), "model": {"id": "acme/titan-large", "version": CANARY_PHONE}}
    key = stack.put_raw(raw_object([(pii_id, "acme")], batch), batch)

    # ...a quarantined value is hashed under the secret that key's MAC gives.
    result = sanitize_handler.lambda_handler(sqs_event(notification("raw", key)), Context())

    assert result == {"batchItemFailures": []}
    (record,) = stack.quarantine_records()
    expected = value_hasher_from_kms(kms, key_id)
    assert record["value_hmac_sha256"] == expected(CANARY_PHONE)
    assert record["value_hash_key"] == expected.key_id


def test_without_a_hash_key_no_value_hash_is_recorded(handler_env) -> None:
    stack = handler_env
    batch = new_ulid(RECEIVED_AT)
    pii_id = {**event(), "model": {"id": "acme/titan-large", "version": CANARY_PHONE}}
    key = stack.put_raw(raw_object([(pii_id, "acme")], batch), batch)

    sanitize_handler.lambda_handler(sqs_event(notification("raw", key)), Context())

    (record,) = stack.quarantine_records()
    assert (record["value_hmac_sha256"], record["value_hash_key"]) == (None, None)


def test_missing_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANITIZED_BUCKET", raising=False)
    with pytest.raises(SettingsError, match="SANITIZED_BUCKET"):
        SanitizeSettings.from_environ({"RAW_BUCKET": "raw"})


CANARY_EMAIL = "maria.canary@example.org"
CANARY_PHONE = "415-555-0132"
# A "sanitized" log line recorded from this handler (the redact case below). The Pulumi
# program's SCRUB_VIOLATION metric filter is tested against this very file
# (infra/tests/test_infra_monitoring.py), so the two cannot drift apart unnoticed.
SANITIZED_LOG_LINE = EVENTS / "sanitized_log_line.json"


@pytest.fixture
def log_lines():
    """The JSON lines the handler's logger writes, parsed."""
    handler = sanitize_handler.logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    handler.setStream(previous)


def _noisy() -> dict:
    return event(outcome={"status": "error", "error_message": f"mail {CANARY_EMAIL} bounced"})


@pytest.mark.parametrize(
    ("items", "violations", "quarantined"),
    [
        # onPii: redact (the default): the event is kept, the PII is redacted — and counted.
        pytest.param(lambda: [(_noisy(), "acme"), (event(), "acme")], 1, 0, id="redacted"),
        pytest.param(
            lambda: [
                (event(model={"id": "acme/titan-large", "version": CANARY_PHONE}), "acme"),
                ({**event(), "prompt": CANARY_EMAIL}, "acme"),
                (_noisy(), "acme"),
            ],
            3,
            2,
            id="identifier-unknown-field-and-redaction",
        ),
        # Malformed telemetry is quarantined but is no PII finding.
        pytest.param(
            lambda: [("{not json", "acme"), (event(kind="chat"), "acme"), (event(), "acme")],
            0,
            2,
            id="malformed-only",
        ),
    ],
)
def test_the_sanitized_log_line_counts_scrub_violations_without_values(
    handler_env, log_lines, items, violations: int, quarantined: int
) -> None:
    # Given a RAW object whose events carry PII in different places
    stack = handler_env
    batch = new_ulid(RECEIVED_AT)
    key = stack.put_raw(raw_object(items(), batch), batch)

    # When the handler sanitizes it
    result = sanitize_handler.lambda_handler(sqs_event(notification("raw", key)), Context())

    # Then its "sanitized" line holds the total of PII findings, and never a value
    assert result == {"batchItemFailures": []}
    (line,) = [record for record in log_lines() if record["message"] == "sanitized"]
    assert line["scrub_violations"] == violations
    assert sum(line["quarantined"].values()) == quarantined
    assert line["batch_id"] == batch
    logged = json.dumps(log_lines())
    for value in (CANARY_EMAIL, CANARY_PHONE, "bounced", "prompt"):
        assert value not in logged


def test_the_recorded_log_line_has_the_live_shape(handler_env, log_lines) -> None:
    stack = handler_env
    batch = new_ulid(RECEIVED_AT)
    key = stack.put_raw(raw_object([(_noisy(), "acme"), (event(), "acme")], batch), batch)
    sanitize_handler.lambda_handler(sqs_event(notification("raw", key)), Context())
    (live,) = [record for record in log_lines() if record["message"] == "sanitized"]
    recorded = json.loads(SANITIZED_LOG_LINE.read_text(encoding="utf-8"))

    def shape(record: dict) -> dict[str, str]:
        return {name: type(value).__name__ for name, value in record.items()}

    assert shape(recorded) == shape(live)
    counts = ("received", "sanitized", "quarantined", "redactions", "scrub_violations")
    assert {name: recorded[name] for name in counts} == {name: live[name] for name in counts}
