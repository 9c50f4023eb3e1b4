"""The Lambda edge: S3 notifications in SQS, test events, URL-decoded keys, partial failures."""

from __future__ import annotations

import json

import pytest
from analytics_fixtures import MONTH, PARTNER, RECEIVED_AT, sanitized_batch
from analytics_lambda_events import EVENTS, Context, notification, sqs_event
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from ryuzen_analytics import analytics_handler
from ryuzen_analytics.analytics_handler import (
    AnalyticsSettings,
    s3_keys,
    sanitized_parquet_key,
)
from ryuzen_contracts.audit_log import AuditEventType
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import analytics_key, certificate_key, sanitized_key
from ryuzen_contracts.settings import SettingsError


@pytest.fixture
def handler_env(stack, monkeypatch: pytest.MonkeyPatch):
    env = {
        "SANITIZED_BUCKET": "sanitized",
        "ANALYTICS_BUCKET": "analytics",
        "AUDIT_TABLE": "audit",
        "POWERTOOLS_SERVICE_NAME": "ryuzen-analytics",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    analytics_handler.reset_runtime()
    yield stack
    analytics_handler.reset_runtime()


# --- parsing the notification ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            json.dumps({"Event": "s3:TestEvent", "Service": "Amazon S3", "Bucket": "sanitized"}),
            [],
            id="test-event",
        ),
        pytest.param(notification("other-bucket", "sanitized/x.parquet"), [], id="other-bucket"),
        pytest.param(
            notification("sanitized", "sanitized/x.parquet", "ObjectRemoved:Delete"),
            [],
            id="not-a-creation",
        ),
        pytest.param(
            notification("sanitized", "sanitized/partner=acme/month=2026-11/a b+c.parquet"),
            ["sanitized/partner=acme/month=2026-11/a b+c.parquet"],
            id="url-decoded",
        ),
    ],
)
def test_s3_keys(body: str, expected: list[str]) -> None:
    assert s3_keys(body, "sanitized") == expected


def test_the_sample_event_names_an_encoded_hive_key() -> None:
    body = (EVENTS / "s3_object_created.json").read_text()

    assert s3_keys(body, "sanitized") == ["sanitized/partner=acme/month=2026-11/01JDX.parquet"]


@pytest.mark.parametrize(
    ("key", "accepted"),
    [
        pytest.param(sanitized_key(PARTNER, MONTH, new_ulid()), True, id="parquet"),
        pytest.param(certificate_key(PARTNER, MONTH, new_ulid()), False, id="certificate"),
        pytest.param("sanitized/partner=acme/month=2026-11/notes.parquet", False, id="no-ulid"),
        pytest.param("analytics/events/x.parquet", False, id="other-prefix"),
    ],
)
def test_only_sanitized_parquet_keys_are_processed(key: str, accepted: bool) -> None:
    assert (sanitized_parquet_key(key) is not None) is accepted


# --- the handler -------------------------------------------------------------------------------


def test_one_bad_object_fails_alone(handler_env) -> None:
    # Given a batch of five messages: a good object, a test event, a file that is not
    # Parquet, a certificate and a key no stage writes
    stack = handler_env
    good_batch, frame = sanitized_batch(3)
    good_key = stack.put_sanitized(frame, good_batch)
    bad_key = stack.put_sanitized(b"not parquet", new_ulid(RECEIVED_AT))
    event_in = sqs_event(
        notification("sanitized", good_key),
        json.dumps({"Event": "s3:TestEvent"}),
        notification("sanitized", bad_key),
        notification("sanitized", certificate_key(PARTNER, MONTH, good_batch)),
        notification("sanitized", "sanitized/stray file.parquet"),
    )

    # When the handler runs
    result = analytics_handler.lambda_handler(event_in, Context())

    # Then only the bad object's message is reported failed, the good one is written,
    # and the failure is audited with the key and the error type (no content)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert stack.keys("analytics") == [analytics_key(PARTNER, MONTH, 28, good_batch)]
    errors = stack.audit.system_events(RECEIVED_AT.replace(year=2000))
    assert [e.event_type for e in errors] == [AuditEventType.ERROR]
    assert errors[0].stage == "analytics"
    assert errors[0].detail == {
        "step": "check_sanitized",
        "error": "SanitizedObjectError",
        "sanitized_key": bad_key,
    }


def test_a_redelivered_message_succeeds_again(handler_env) -> None:
    stack = handler_env
    batch, frame = sanitized_batch(2)
    body = notification("sanitized", stack.put_sanitized(frame, batch))

    first = analytics_handler.lambda_handler(sqs_event(body), Context())
    written = {k: stack.read("analytics", k) for k in stack.keys("analytics")}
    second = analytics_handler.lambda_handler(sqs_event(body, body), Context())

    assert first == second == {"batchItemFailures": []}
    assert {k: stack.read("analytics", k) for k in stack.keys("analytics")} == written


def test_an_s3_failure_fails_the_message(handler_env) -> None:
    # Given a notification for an object that is gone, beside a good one
    stack = handler_env
    batch, frame = sanitized_batch(1)
    good_key = stack.put_sanitized(frame, batch)
    missing = sanitized_key(PARTNER, MONTH, new_ulid(RECEIVED_AT))

    result = analytics_handler.lambda_handler(
        sqs_event(notification("sanitized", missing), notification("sanitized", good_key)),
        Context(),
    )

    # Then that message is redelivered (and ends in the DLQ): retrying cannot conjure the
    # object, but an operator must see that a SANITIZED object vanished unprocessed
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert stack.keys("analytics") == [analytics_key(PARTNER, MONTH, 28, batch)]
    (error,) = stack.audit.system_events(RECEIVED_AT.replace(year=2000))
    assert error.detail == {
        "step": "read_sanitized",
        "error": "NoSuchKey",
        "sanitized_key": missing,
    }


def test_a_batch_that_fails_entirely_raises(handler_env) -> None:
    # powertools raises when every record failed, so Lambda retries the whole batch
    missing = sanitized_key(PARTNER, MONTH, new_ulid(RECEIVED_AT))

    with pytest.raises(BatchProcessingError):
        analytics_handler.lambda_handler(sqs_event(notification("sanitized", missing)), Context())


@pytest.mark.parametrize("missing", ["SANITIZED_BUCKET", "ANALYTICS_BUCKET", "AUDIT_TABLE"])
def test_a_missing_setting_is_named(missing: str) -> None:
    environ = {"SANITIZED_BUCKET": "s", "ANALYTICS_BUCKET": "a", "AUDIT_TABLE": "t"}
    del environ[missing]

    with pytest.raises(SettingsError, match=missing):
        AnalyticsSettings.from_environ(environ)
