"""When S3 cannot confirm the write: 503 with Retry-After, nothing claimed, an ERROR audited."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from ryuzen_contracts.audit_log import AuditEventType, AuditLog
from ryuzen_ingest import ingest_handler

AUDIT_TABLE = "ryuzen-test-audit"


@pytest.fixture
def s3_stub(s3: Any) -> Iterator[Stubber]:
    with Stubber(s3) as stubber:
        yield stubber


def audit_errors(dynamodb: Any) -> list[Any]:
    return AuditLog(dynamodb, AUDIT_TABLE).system_events(datetime.now(UTC) - timedelta(minutes=5))


@pytest.mark.parametrize(
    ("error_code", "http_status"),
    [
        pytest.param("SlowDown", 503, id="slow-down"),
        pytest.param("InternalError", 500, id="internal-error"),
        pytest.param("AccessDenied", 403, id="access-denied"),
    ],
)
def test_s3_error_answers_503_and_audits(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    s3_stub: Stubber,
    dynamodb: Any,
    telemetry_events: list[dict[str, Any]],
    error_code: str,
    http_status: int,
) -> None:
    # Given S3 refuses the PUT
    s3_stub.add_client_error(
        "put_object", service_error_code=error_code, http_status_code=http_status
    )

    # When a good batch arrives
    response = call(api_event(json.dumps(telemetry_events)))

    # Then the client is told to retry, never that the batch was accepted
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "1"
    assert json.loads(response["body"])["error"] == "unavailable"
    s3_stub.assert_no_pending_responses()

    # And an ERROR in the SYSTEM partition says which batch and why, without the payload
    (audit,) = audit_errors(dynamodb)
    assert audit.event_type == AuditEventType.ERROR
    assert (audit.stage, audit.partner, audit.month) == ("ingest", None, None)
    assert audit.detail["error_code"] == "raw_write_failed"
    assert audit.detail["s3_error_code"] == error_code
    assert len(audit.detail["batch_id"]) == 26
    assert audit.detail["events"] == 3
    assert "acme/titan-2" not in json.dumps(audit.detail)


def test_s3_unreachable_answers_503(
    api_event: Callable[..., dict[str, Any]],
    runtime: ingest_handler.IngestRuntime,
    raw_keys: Callable[[], list[str]],
    dynamodb: Any,
    telemetry_events: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://s3.invalid")

    monkeypatch.setattr(runtime.s3, "put_object", unreachable)
    response = ingest_handler.handle(api_event(json.dumps(telemetry_events)), None, runtime)
    assert response["statusCode"] == 503
    assert "Retry-After" in response["headers"]
    assert raw_keys() == []
    (audit,) = audit_errors(dynamodb)
    assert audit.detail["s3_error_code"] == "EndpointConnectionError"


def test_audit_failure_still_answers_503(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    s3_stub: Stubber,
    dynamodb: Any,
    telemetry_events: list[dict[str, Any]],
) -> None:
    # Given S3 and the audit table both fail
    s3_stub.add_client_error("put_object", service_error_code="SlowDown", http_status_code=503)
    dynamodb.delete_table(TableName=AUDIT_TABLE)

    # Then the answer is still a clean 503
    response = call(api_event(json.dumps(telemetry_events)))
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"] == "unavailable"


def test_unexpected_bug_answers_500_json(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    telemetry_events: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise KeyError("something the payload said")

    monkeypatch.setattr(ingest_handler, "write_raw_batch", broken)
    response = call(api_event(json.dumps(telemetry_events)))
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"error": "internal_error", "detail": "unexpected error"}


@pytest.mark.parametrize("event", [None, [], {"headers": "nope", "httpMethod": "POST"}])
def test_malformed_proxy_event_answers_json(
    call: Callable[[Any], dict[str, Any]], event: Any
) -> None:
    response = call(event)
    assert response["statusCode"] in (404, 500)
    assert set(json.loads(response["body"])) == {"error", "detail"}
