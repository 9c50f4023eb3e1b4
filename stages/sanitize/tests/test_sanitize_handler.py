"""The Lambda edge: S3 notifications in SQS, test events, URL-decoded keys, partial failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from raw_batches import RECEIVED_AT, event, raw_object
from ryuzen_contracts.audit_log import AuditEventType
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.settings import SettingsError
from ryuzen_sanitize import sanitize_handler
from ryuzen_sanitize.sanitize_handler import SanitizeSettings, s3_keys
from sanitize_lambda_events import Context, notification, sqs_event


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


def test_missing_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANITIZED_BUCKET", raising=False)
    with pytest.raises(SettingsError, match="SANITIZED_BUCKET"):
        SanitizeSettings.from_environ({"RAW_BUCKET": "raw"})
