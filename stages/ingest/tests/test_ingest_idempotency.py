"""Idempotency-Key: a retry returns the first answer and writes nothing new."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from ryuzen_ingest import ingest_handler

IDEMPOTENCY_TABLE = "ryuzen-test-idempotency"


@pytest.fixture
def body(telemetry_events: list[dict[str, Any]]) -> str:
    return json.dumps(telemetry_events)


def keyed(
    api_event: Callable[..., dict[str, Any]], body: str, key: str = "retry-me-1", **options: Any
) -> Any:
    headers = {"Idempotency-Key": key, **options.pop("headers", {})}
    return api_event(body, headers=headers, **options)


def test_replay_writes_once_and_returns_the_same_batch(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    raw_keys: Callable[[], list[str]],
    body: str,
) -> None:
    # Given a request that was accepted
    first = call(keyed(api_event, body))
    assert first["statusCode"] == 202

    # When the client retries it with the same key (even gzip-compressed this time)
    second = call(keyed(api_event, body))
    third = call(keyed(api_event, body.encode(), gzip_body=True))

    # Then it gets the same answer, marked as replayed, and RAW holds one object
    assert second["statusCode"] == third["statusCode"] == 202
    assert second["body"] == third["body"] == first["body"]
    assert second["headers"]["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first["headers"]
    assert len(raw_keys()) == 1


def test_same_key_with_another_body_is_refused(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    raw_keys: Callable[[], list[str]],
    body: str,
) -> None:
    assert call(keyed(api_event, body))["statusCode"] == 202
    response = call(keyed(api_event, body.replace("titan-2", "titan-3")))
    assert response["statusCode"] == 422
    assert json.loads(response["body"])["error"] == "idempotency_key_reused"
    assert len(raw_keys()) == 1


def test_keys_are_scoped_by_client(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    raw_keys: Callable[[], list[str]],
) -> None:
    nimbus = json.dumps([{"event_id": "a", "model": {"id": "nimbus/cirrus"}}])
    first = call(keyed(api_event, nimbus, api_key_id="k1edgegw01"))
    second = call(keyed(api_event, nimbus, api_key_id="k2batch0001"))
    assert first["statusCode"] == second["statusCode"] == 202
    assert json.loads(first["body"])["batch_id"] != json.loads(second["body"])["batch_id"]
    assert len(raw_keys()) == 2


def test_failed_write_is_not_remembered(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    raw_keys: Callable[[], list[str]],
    s3: Any,
    body: str,
) -> None:
    # Given the first attempt fails because S3 throttles
    with Stubber(s3) as stubber:
        stubber.add_client_error("put_object", service_error_code="SlowDown", http_status_code=503)
        assert call(keyed(api_event, body))["statusCode"] == 503

    # When the client retries with the same key
    retry = call(keyed(api_event, body))

    # Then the retry is processed, not answered with the cached failure
    assert retry["statusCode"] == 202
    assert "Idempotent-Replayed" not in retry["headers"]
    assert len(raw_keys()) == 1


def test_rejection_does_not_consume_the_key(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    body: str,
) -> None:
    assert call(keyed(api_event, "[1]"))["statusCode"] == 400
    assert call(keyed(api_event, body))["statusCode"] == 202


def test_concurrent_duplicate_gets_409(
    api_event: Callable[..., dict[str, Any]],
    runtime: ingest_handler.IngestRuntime,
    raw_keys: Callable[[], list[str]],
    body: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a duplicate arrives while the first request is still writing to S3
    real_put = runtime.s3.put_object
    duplicates: list[dict[str, Any]] = []

    def put_while_duplicate_arrives(**kwargs: Any) -> Any:
        duplicates.append(ingest_handler.handle(keyed(api_event, body), None, runtime))
        return real_put(**kwargs)

    monkeypatch.setattr(runtime.s3, "put_object", put_while_duplicate_arrives)

    # When both are answered
    first = ingest_handler.handle(keyed(api_event, body), None, runtime)

    # Then the duplicate is told to come back later, and only the first writes
    assert first["statusCode"] == 202
    (duplicate,) = duplicates
    assert duplicate["statusCode"] == 409
    assert json.loads(duplicate["body"])["error"] == "idempotency_in_progress"
    assert int(duplicate["headers"]["Retry-After"]) >= 1
    assert len(raw_keys()) == 1


def test_idempotency_store_down_answers_503_and_writes_nothing(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    raw_keys: Callable[[], list[str]],
    dynamodb: Any,
    body: str,
) -> None:
    dynamodb.delete_table(TableName=IDEMPOTENCY_TABLE)
    response = call(keyed(api_event, body))
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "1"
    assert json.loads(response["body"])["error"] == "unavailable"
    assert raw_keys() == []


def test_answer_stands_when_only_remembering_it_fails(
    api_event: Callable[..., dict[str, Any]],
    runtime: ingest_handler.IngestRuntime,
    raw_keys: Callable[[], list[str]],
    body: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given DynamoDB fails after the batch is in RAW, when powertools stores the answer
    def throttled(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
            "UpdateItem",
        )

    monkeypatch.setattr(runtime.dynamodb, "update_item", throttled)

    # Then the client is told the truth: the batch was accepted
    response = ingest_handler.handle(keyed(api_event, body), None, runtime)
    assert response["statusCode"] == 202
    assert len(raw_keys()) == 1
    # (the record stays in progress until its lock expires)
    (item,) = runtime.dynamodb.scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    assert item["status"]["S"] == "INPROGRESS"


def test_records_hold_hashes_not_keys_or_events(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    dynamodb: Any,
    body: str,
) -> None:
    call(keyed(api_event, body, key="distinctive-key-value"))
    (item,) = dynamodb.scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    stored = json.dumps(item)
    assert item["id"]["S"].startswith("ryuzen-ingest.events#")
    assert "distinctive-key-value" not in stored
    assert "acme/titan-2" not in stored
    assert item["status"]["S"] == "COMPLETED"
