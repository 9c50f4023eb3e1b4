"""The loopback API Gateway: what reaches the handler, and what the client gets back."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from ryuzen_tools.local_stack.api_gateway import MAX_PAYLOAD_BYTES, ApiGateway, Route
from tools_support import REGION, load_event

KEY_VALUE = "local-key-value-0123456789"
KEY_ID = "keyid01"


class FakeHandler:
    """Answers 202 with a small JSON body unless told otherwise; records events."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer: Any = {"statusCode": 202, "headers": {}, "body": json.dumps({"ok": True})}

    def __call__(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def handler() -> FakeHandler:
    return FakeHandler()


@pytest.fixture
def gateway(handler: FakeHandler) -> Iterator[str]:
    api = ApiGateway([Route("POST", "/v1/events", handler)], {KEY_VALUE: KEY_ID}, region=REGION)
    url = api.start()
    yield url
    api.stop()


def post(url: str, body: bytes = b"{}", **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/events", content=body, headers=headers, timeout=10)


@pytest.mark.parametrize(
    "headers",
    [pytest.param({}, id="missing"), pytest.param({"x-api-key": "not-a-key"}, id="unknown")],
)
def test_a_missing_or_unknown_key_is_forbidden_before_the_handler(
    gateway: str, handler: FakeHandler, headers: dict[str, str]
) -> None:
    response = post(gateway, **headers)
    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}
    assert handler.events == []


def test_the_event_has_the_rest_proxy_shape_and_the_key_id(
    gateway: str, handler: FakeHandler
) -> None:
    response = httpx.post(
        f"{gateway}/v1/events?dry=1&tag=a&tag=b",
        content=b'{"event_id": "x"}\n',
        headers={"x-api-key": KEY_VALUE, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 202
    assert response.headers["x-amzn-RequestId"]
    (event,) = handler.events
    sample = load_event("apigw_rest_proxy.json")
    assert set(event) == set(sample)
    assert set(event["requestContext"]) == set(sample["requestContext"])
    assert set(event["requestContext"]["identity"]) == set(sample["requestContext"]["identity"])
    assert event["httpMethod"] == "POST"
    assert event["resource"] == event["path"] == "/v1/events"
    assert event["requestContext"]["identity"]["apiKeyId"] == KEY_ID
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    uuid.UUID(event["requestContext"]["requestId"])
    assert event["isBase64Encoded"] is False
    assert event["body"] == '{"event_id": "x"}\n'
    assert event["queryStringParameters"] == {"dry": "1", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"dry": ["1"], "tag": ["a", "b"]}


def test_each_request_gets_a_fresh_request_id(gateway: str, handler: FakeHandler) -> None:
    post(gateway, **{"x-api-key": KEY_VALUE})
    post(gateway, **{"x-api-key": KEY_VALUE})
    ids = {event["requestContext"]["requestId"] for event in handler.events}
    assert len(ids) == 2


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(gzip.compress(b'{"a": 1}\n'), {"Content-Encoding": "gzip"}, id="gzip"),
        pytest.param(b"\xff\xfe\x00binary", {}, id="not-utf8"),
    ],
)
def test_binary_bodies_are_base64_encoded(
    gateway: str, handler: FakeHandler, body: bytes, headers: dict[str, str]
) -> None:
    post(gateway, body, **{"x-api-key": KEY_VALUE}, **headers)
    (event,) = handler.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_an_empty_body_is_null(gateway: str, handler: FakeHandler) -> None:
    post(gateway, b"", **{"x-api-key": KEY_VALUE})
    assert handler.events[0]["body"] is None


def test_header_names_keep_the_clients_casing_and_repeats(
    gateway: str, handler: FakeHandler
) -> None:
    # http.client sends header names exactly as given, and repeated ones separately.
    host, port = gateway.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/v1/events")
    connection.putheader("X-API-Key", KEY_VALUE)
    connection.putheader("idempotency-key", "k-1")
    connection.putheader("X-Trace", "one")
    connection.putheader("X-Trace", "two")
    connection.putheader("Content-Length", "2")
    connection.endheaders(b"{}")
    assert connection.getresponse().status == 202
    connection.close()
    (event,) = handler.events
    assert event["headers"]["X-API-Key"] == KEY_VALUE
    assert event["headers"]["idempotency-key"] == "k-1"
    assert event["headers"]["X-Trace"] == "two"
    assert event["multiValueHeaders"]["X-Trace"] == ["one", "two"]
    assert event["requestContext"]["identity"]["apiKeyId"] == KEY_ID


def test_unknown_paths_are_404_and_wrong_methods_405(gateway: str, handler: FakeHandler) -> None:
    missing = httpx.post(f"{gateway}/v1/nothing", headers={"x-api-key": KEY_VALUE})
    assert missing.status_code == 404
    wrong = httpx.get(f"{gateway}/v1/events", headers={"x-api-key": KEY_VALUE})
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"
    assert handler.events == []


def test_payloads_over_10_mb_are_refused_without_reading_them(
    gateway: str, handler: FakeHandler
) -> None:
    host, port = gateway.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/v1/events")
    connection.putheader("x-api-key", KEY_VALUE)
    connection.putheader("Content-Length", str(MAX_PAYLOAD_BYTES + 1))
    connection.endheaders()  # the body is never sent: the gateway must answer from the header
    response = connection.getresponse()
    assert response.status == 413
    connection.close()
    assert handler.events == []


def test_a_payload_of_exactly_10_mb_passes(gateway: str, handler: FakeHandler) -> None:
    response = post(gateway, b"a" * MAX_PAYLOAD_BYTES, **{"x-api-key": KEY_VALUE})
    assert response.status_code == 202
    assert len(handler.events[0]["body"]) == MAX_PAYLOAD_BYTES


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(RuntimeError("handler bug"), id="raises"),
        pytest.param({"body": "no status"}, id="no-status"),
        pytest.param({"statusCode": 200, "body": {"not": "a string"}}, id="body-not-string"),
        pytest.param("just a string", id="not-a-dict"),
    ],
)
def test_handler_failures_become_502(gateway: str, handler: FakeHandler, answer: Any) -> None:
    handler.answer = answer
    response = post(gateway, **{"x-api-key": KEY_VALUE})
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}


def test_the_handlers_answer_is_passed_through(gateway: str, handler: FakeHandler) -> None:
    handler.answer = {
        "statusCode": 503,
        "headers": {"Retry-After": "2", "Content-Type": "application/json"},
        "multiValueHeaders": {"X-Multi": ["a", "b"]},
        "body": base64.b64encode(b'{"error":"unavailable","detail":"retry"}').decode(),
        "isBase64Encoded": True,
    }
    response = post(gateway, **{"x-api-key": KEY_VALUE})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.headers.get_list("X-Multi") == ["a", "b"]
    assert response.json() == {"error": "unavailable", "detail": "retry"}
