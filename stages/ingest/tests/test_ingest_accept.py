"""Good batches: one RAW object per request, checksummed, whose lines round-trip."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ryuzen_contracts.ids import is_ulid
from ryuzen_contracts.key_layout import parse_raw_key

REQUEST_ID = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"  # requestContext.requestId of the fixture


def json_array(events: list[dict[str, Any]]) -> str:
    return json.dumps(events)


def ndjson(events: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(item) + "\n" for item in events)


def ndjson_crlf_with_blank_lines(events: list[dict[str, Any]]) -> str:
    return "\r\n\r\n".join(json.dumps(item) for item in events) + "\r\n"


def pretty_array(events: list[dict[str, Any]]) -> str:
    return json.dumps(events, indent=2).replace("\n", "\r\n")


GOOD = [
    pytest.param(json_array, "application/json", False, False, id="json-array"),
    pytest.param(json_array, "application/json", False, True, id="json-array-base64"),
    pytest.param(json_array, "application/json", True, True, id="json-array-gzip"),
    pytest.param(
        pretty_array, "application/json; charset=utf-8", False, False, id="json-array-pretty-crlf"
    ),
    pytest.param(ndjson, "application/x-ndjson", False, False, id="ndjson"),
    pytest.param(ndjson, "application/x-ndjson", False, True, id="ndjson-base64"),
    pytest.param(ndjson, 'Application/X-NDJSON; Charset="UTF-8"', True, True, id="ndjson-gzip"),
    pytest.param(
        ndjson_crlf_with_blank_lines,
        "application/x-ndjson",
        False,
        False,
        id="ndjson-crlf-blank-lines",
    ),
]


@pytest.mark.parametrize(("encode", "content_type", "gzip_body", "base64_body"), GOOD)
def test_good_batch_becomes_one_raw_object(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    raw_keys: Callable[[], list[str]],
    read_raw: Callable[[str], tuple[list[str], dict[str, Any]]],
    telemetry_events: list[dict[str, Any]],
    encode: Callable[[list[dict[str, Any]]], str],
    content_type: str,
    gzip_body: bool,
    base64_body: bool,
) -> None:
    # Given three events for three partners from a client allowed to send for all of them
    before = datetime.now(UTC)
    request = api_event(
        encode(telemetry_events),
        content_type=content_type,
        gzip_body=gzip_body,
        base64_body=base64_body,
    )

    # When ingest accepts it
    response = call(request)

    # Then it answers 202 with the batch id, and exactly one RAW object holds the batch
    assert response["statusCode"] == 202, response["body"]
    answer = json.loads(response["body"])
    assert answer["accepted"] == 3 and is_ulid(answer["batch_id"])
    (key,) = raw_keys()
    parsed = parse_raw_key(key)
    assert parsed.batch_id == answer["batch_id"]
    assert before - timedelta(hours=1) < parsed.received_hour <= datetime.now(UTC)

    lines, head = read_raw(key)
    assert head["Metadata"]["event-count"] == "3"
    assert len(lines) == 3
    partners = []
    for line, sent in zip(lines, telemetry_events, strict=True):
        record = json.loads(line)
        assert set(record) == {"receipt", "event"}
        assert record["event"] == sent
        receipt = record["receipt"]
        assert list(receipt) == [
            "batch_id",
            "received_at",
            "client_id",
            "request_id",
            "partner",
            "schema",
        ]
        assert receipt["batch_id"] == answer["batch_id"]
        assert receipt["client_id"] == "edge-gateway"
        assert receipt["request_id"] == REQUEST_ID
        assert receipt["schema"] == "ryuzen.raw.v1"
        received = datetime.fromisoformat(receipt["received_at"].replace("Z", "+00:00"))
        assert received.replace(minute=0, second=0, microsecond=0) == parsed.received_hour
        assert receipt["received_at"].endswith("Z") and len(receipt["received_at"]) == 24
        partners.append(receipt["partner"])
    assert partners == ["acme", "nimbus-ai", "orbital"]


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_original_text_with_duplicate_keys_is_kept_verbatim(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    raw_keys: Callable[[], list[str]],
    read_raw: Callable[[str], tuple[list[str], dict[str, Any]]],
    content_type: str,
) -> None:
    # Given events whose JSON text a parse-and-dump would change: duplicate keys, escapes,
    # odd spacing and number spellings
    originals = [
        '{"event_id":"a","model":{"id":"acme/x"},"a":1,"a":2}',
        '{ "event_id" : "b" , "model" : { "id" : "acme/y" } , "n" : 1.50e2 , "s" : "\\u00e9\\n" }',
    ]
    body = (
        "[" + ",".join(originals) + "]"
        if content_type == "application/json"
        else "\n".join(originals)
    )

    # When ingest accepts them
    response = call(api_event(body, content_type=content_type))

    # Then each RAW line carries the event text exactly as it was sent
    assert response["statusCode"] == 202, response["body"]
    lines, _ = read_raw(raw_keys()[0])
    for line, original in zip(lines, originals, strict=True):
        assert line.endswith(',"event":' + original + "}")
    assert json.loads(lines[0])["event"]["a"] == 2


def test_multiline_array_element_becomes_one_line(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    raw_keys: Callable[[], list[str]],
    read_raw: Callable[[str], tuple[list[str], dict[str, Any]]],
) -> None:
    body = '[\r\n  {\r\n    "event_id": "a",\n    "model": {"id": "acme/x"}\r\n  }\n]'
    response = call(api_event(body))
    assert response["statusCode"] == 202
    (line,) = read_raw(raw_keys()[0])[0]
    assert line.endswith(',"event":{      "event_id": "a",     "model": {"id": "acme/x"}    }}')


def test_event_just_under_the_limit_in_utf8_bytes_is_accepted(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    # 20,000 euro signs are 60,000 UTF-8 bytes: over 64 KiB if counted as 4 bytes each, under as 3.
    body = json.dumps(
        [{"event_id": "a", "model": {"id": "acme/x"}, "pad": "€" * 20_000}], ensure_ascii=False
    )
    assert call(api_event(body))["statusCode"] == 202


def test_batch_of_exactly_5000_events_is_accepted(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    body = json.dumps([{"event_id": str(n), "model": {"id": "nimbus/cirrus"}} for n in range(5000)])
    response = call(api_event(body))
    assert response["statusCode"] == 202
    assert json.loads(response["body"])["accepted"] == 5000


def test_header_names_are_case_insensitive(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    telemetry_events: list[dict[str, Any]],
) -> None:
    request = api_event(gzip.compress(ndjson(telemetry_events).encode()), content_type=None)
    request["headers"] = {"CONTENT-TYPE": "application/x-ndjson", "content-encoding": "GZIP"}
    request["multiValueHeaders"] = None
    assert call(request)["statusCode"] == 202


def test_each_request_gets_its_own_batch(
    api_event: Callable[..., dict[str, Any]],
    call: Callable[[dict[str, Any]], dict[str, Any]],
    raw_keys: Callable[[], list[str]],
    telemetry_events: list[dict[str, Any]],
) -> None:
    first = json.loads(call(api_event(json_array(telemetry_events)))["body"])["batch_id"]
    second = json.loads(call(api_event(json_array(telemetry_events)))["body"])["batch_id"]
    assert first != second
    assert len(raw_keys()) == 2
