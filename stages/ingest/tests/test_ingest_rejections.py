"""Every bad request gets its status and error code, and nothing reaches RAW."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from typing import Any

import pytest


def event(model_id: str = "acme/titan-2", **extra: Any) -> dict[str, Any]:
    return {"event_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "model": {"id": model_id}, **extra}


def array(*events: dict[str, Any]) -> str:
    return json.dumps(list(events) or [event()])


def gzip_bomb() -> bytes:
    # 11 MiB of zeros deflates to ~11 KiB: far under the 1 MiB body limit.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1024 * 1024)
    parts = [compressor.compress(chunk) for _ in range(11)]
    return b"".join(parts) + compressor.flush()


ONE = array()

# (body, api_event keyword arguments, status, code)
CASES = [
    # --- not JSON, or not strict JSON
    pytest.param(
        '[{"event_id": "a", "model": {"id": "acme/x"},]', {}, 400, "invalid_json", id="syntax-error"
    ),
    pytest.param(
        '[{"event_id": "a", "model": {"id": "acme/x"}, "v": NaN}]',
        {},
        400,
        "invalid_json",
        id="nan",
    ),
    pytest.param(
        '[{"event_id": "a", "model": {"id": "acme/x"}, "v": Infinity}]',
        {},
        400,
        "invalid_json",
        id="infinity",
    ),
    pytest.param(
        '[{"event_id": "a", "model": {"id": "acme/x"}, "v": -Infinity}]',
        {},
        400,
        "invalid_json",
        id="minus-infinity",
    ),
    pytest.param(
        '{"event_id": "a", "model": {"id": "acme/x"}}\n{"v": NaN}',
        {"content_type": "application/x-ndjson"},
        400,
        "invalid_json",
        id="ndjson-nan",
    ),
    pytest.param(
        b'[{"event_id": "a\xff", "model": {"id": "acme/x"}}]',
        {},
        400,
        "invalid_json",
        id="invalid-utf8",
    ),
    pytest.param(
        b'[{"event_id": "\xed\xa0\x80", "model": {"id": "acme/x"}}]',
        {},
        400,
        "invalid_json",
        id="utf8-encoded-surrogate",
    ),
    pytest.param(b"\xef\xbb\xbf" + ONE.encode(), {}, 400, "invalid_json", id="utf8-bom"),
    pytest.param(ONE + " x", {}, 400, "invalid_json", id="trailing-garbage"),
    pytest.param(ONE + ONE, {}, 400, "invalid_json", id="two-arrays"),
    pytest.param(
        '{"event_id": "a", "model": {"id": "acme/x"}} {"event_id": "b", "model": {"id": "acme/x"}}',
        {"content_type": "application/x-ndjson"},
        400,
        "invalid_json",
        id="ndjson-two-values-on-a-line",
    ),
    pytest.param(
        '{"event_id": "a", "model": {"id": "acme/x"}} garbage',
        {"content_type": "application/x-ndjson"},
        400,
        "invalid_json",
        id="ndjson-trailing-garbage",
    ),
    pytest.param(
        '[{"event_id": "a\tb", "model": {"id": "acme/x"}}]',
        {},
        400,
        "invalid_json",
        id="raw-tab-in-string",
    ),
    pytest.param(
        '[{"event_id": "a", "model": {"id": "acme/x"}}',
        {},
        400,
        "invalid_json",
        id="unclosed-array",
    ),
    pytest.param(
        '[{"event_id": "a", "model": {"id": "acme/x"}, "n": ' + "9" * 5000 + "}]",
        {},
        400,
        "invalid_json",
        id="int-over-4300-digits",
    ),
    pytest.param("[" * 200_000 + "]" * 200_000, {}, 400, "invalid_json", id="deep-nesting"),
    pytest.param(json.dumps(event()), {}, 400, "invalid_json", id="object-not-array"),
    pytest.param("'single quotes'", {}, 400, "invalid_json", id="not-json"),
    # --- transfer encodings
    pytest.param("not base64!", {"is_base64_flag": True}, 400, "invalid_encoding", id="bad-base64"),
    pytest.param(
        gzip.compress(ONE.encode())[:-12],
        {"headers": {"Content-Encoding": "gzip"}},
        400,
        "invalid_encoding",
        id="gzip-truncated",
    ),
    pytest.param(
        b"\x1f\x8b\x08\x00garbage-not-deflate",
        {"headers": {"Content-Encoding": "gzip"}},
        400,
        "invalid_encoding",
        id="gzip-corrupt",
    ),
    pytest.param(
        ONE,
        {"headers": {"Content-Encoding": "gzip"}},
        400,
        "invalid_encoding",
        id="gzip-declared-plain-sent",
    ),
    pytest.param(
        gzip.compress(ONE.encode()) + b"trailing",
        {"headers": {"Content-Encoding": "gzip"}},
        400,
        "invalid_encoding",
        id="gzip-trailing-garbage",
    ),
    # --- media types
    pytest.param(
        ONE, {"content_type": "text/plain"}, 415, "unsupported_media_type", id="text-plain"
    ),
    pytest.param(ONE, {"content_type": None}, 415, "unsupported_media_type", id="no-content-type"),
    pytest.param(
        ONE,
        {"content_type": "application/json; charset=latin-1"},
        415,
        "unsupported_media_type",
        id="latin-1",
    ),
    pytest.param(
        ONE,
        {"content_type": "application/json; version=2"},
        415,
        "unsupported_media_type",
        id="unknown-parameter",
    ),
    pytest.param(
        ONE,
        {"headers": {"Content-Encoding": "br"}},
        415,
        "unsupported_media_type",
        id="brotli-encoding",
    ),
    pytest.param(
        ONE,
        {"headers": {"Content-Encoding": "gzip, gzip"}},
        415,
        "unsupported_media_type",
        id="stacked-encodings",
    ),
    # --- empty
    pytest.param(None, {}, 400, "empty_batch", id="no-body"),
    pytest.param("", {}, 400, "empty_batch", id="empty-body"),
    pytest.param(" [ ] ", {}, 400, "empty_batch", id="empty-array"),
    pytest.param(
        "\n\n  \r\n",
        {"content_type": "application/x-ndjson"},
        400,
        "empty_batch",
        id="blank-ndjson",
    ),
    pytest.param(b"", {"gzip_body": True}, 400, "empty_batch", id="gzip-of-nothing"),
    # --- sizes
    pytest.param(
        '[{"event_id": "a", "model": {"id": "acme/x"}, "pad": "' + "x" * (1024 * 1024) + '"}]',
        {},
        413,
        "too_large",
        id="body-over-1mib",
    ),
    pytest.param(
        b"[" + b" " * (1024 * 1024) + b"]",
        {"base64_body": True},
        413,
        "too_large",
        id="base64-over-1mib",
    ),
    pytest.param(
        gzip_bomb(), {"headers": {"Content-Encoding": "gzip"}}, 413, "too_large", id="gzip-bomb"
    ),
    pytest.param(
        json.dumps([event()] * 5001), {}, 413, "too_many_events", id="too-many-events-array"
    ),
    pytest.param(
        "\n".join([json.dumps(event())] * 5001),
        {"content_type": "application/x-ndjson"},
        413,
        "too_many_events",
        id="too-many-events-ndjson",
    ),
    pytest.param(
        array(event(pad="x" * (64 * 1024))), {}, 413, "event_too_large", id="event-over-64kib"
    ),
    pytest.param(
        array(event(), event(pad="é" * 33_000)),
        {},
        413,
        "event_too_large",
        id="event-over-64kib-in-utf8-bytes",
    ),
    # --- envelope fields
    pytest.param('[{"model": {"id": "acme/x"}}]', {}, 400, "missing_field", id="no-event-id"),
    pytest.param(
        '[{"event_id": 7, "model": {"id": "acme/x"}}]',
        {},
        400,
        "missing_field",
        id="event-id-number",
    ),
    pytest.param(
        '[{"event_id": "", "model": {"id": "acme/x"}}]',
        {},
        400,
        "missing_field",
        id="event-id-empty",
    ),
    pytest.param('[{"event_id": "a"}]', {}, 400, "missing_field", id="no-model"),
    pytest.param(
        '[{"event_id": "a", "model": "acme/x"}]', {}, 400, "missing_field", id="model-not-object"
    ),
    pytest.param(
        '[{"event_id": "a", "model": {"id": null}}]', {}, 400, "missing_field", id="model-id-null"
    ),
    pytest.param(array(event(), 5), {}, 400, "missing_field", id="item-not-object"),
    pytest.param(
        '"just a string"\n',
        {"content_type": "application/x-ndjson"},
        400,
        "missing_field",
        id="ndjson-scalar",
    ),
    # --- routing
    pytest.param(array(event("unknown/model")), {}, 400, "unknown_model", id="unknown-model"),
    pytest.param(array(event("acmeish/model")), {}, 400, "unknown_model", id="prefix-lookalike"),
    pytest.param(
        array(event("nimbus/cirrus"), event("acme/titan-2")),
        {"api_key_id": "k2batch0001"},
        403,
        "forbidden_partner",
        id="forbidden-partner-in-mixed-batch",
    ),
    pytest.param(ONE, {"api_key_id": None}, 403, "unknown_client", id="no-api-key-id"),
    pytest.param(
        ONE, {"api_key_id": "not-mapped"}, 403, "unknown_client", id="unmapped-api-key-id"
    ),
    pytest.param(ONE, {"api_key_id": ""}, 403, "unknown_client", id="empty-api-key-id"),
    pytest.param(ONE, {"api_key_id": 7}, 403, "unknown_client", id="api-key-id-not-text"),
    # --- headers, routes
    pytest.param(
        ONE,
        {"headers": {"Idempotency-Key": "has space"}},
        400,
        "invalid_idempotency_key",
        id="idempotency-key-space",
    ),
    pytest.param(
        ONE,
        {"headers": {"Idempotency-Key": "k" * 256}},
        400,
        "invalid_idempotency_key",
        id="idempotency-key-too-long",
    ),
    pytest.param(
        ONE,
        {"headers": {"Idempotency-Key": "key\n"}},
        400,
        "invalid_idempotency_key",
        id="idempotency-key-trailing-newline",
    ),
    pytest.param(ONE, {"path": "/v1/other"}, 404, "not_found", id="other-path"),
    pytest.param(ONE, {"method": "GET"}, 405, "method_not_allowed", id="get"),
]


@pytest.mark.parametrize(("body", "options", "status", "code"), CASES)
def test_bad_request_is_refused_and_nothing_is_written(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    raw_keys: Callable[[], list[str]],
    body: str | bytes | None,
    options: dict[str, Any],
    status: int,
    code: str,
) -> None:
    # Given a request that breaks one envelope rule
    request = api_event(body, **options)

    # When ingest answers it
    response = call(request)

    # Then it gets the status and code, a fixed-text detail, and RAW stays empty
    answer = json.loads(response["body"])
    assert (response["statusCode"], answer["error"]) == (status, code)
    assert set(answer) == {"error", "detail"}
    assert isinstance(answer["detail"], str) and len(answer["detail"]) < 120
    assert response["headers"]["Content-Type"] == "application/json"
    assert raw_keys() == []


def test_method_not_allowed_names_post(
    api_event: Callable[..., dict[str, Any]], call: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    response = call(api_event(ONE, method="PUT"))
    assert response["statusCode"] == 405
    assert response["headers"]["Allow"] == "POST"


def test_conflicting_content_types_are_refused(
    api_event: Callable[..., dict[str, Any]], call: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    request = api_event(ONE)
    request["multiValueHeaders"]["Content-Type"] = ["application/json", "text/plain"]
    response = call(request)
    assert response["statusCode"] == 415
    assert json.loads(response["body"])["error"] == "unsupported_media_type"


def test_detail_names_the_offending_event_by_position_only(
    api_event: Callable[..., dict[str, Any]], call: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    response = call(api_event(array(event(), event("secret-model/xyz"))))
    answer = json.loads(response["body"])
    assert answer == {"error": "unknown_model", "detail": "event 1: model.id belongs to no partner"}
