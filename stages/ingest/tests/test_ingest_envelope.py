"""Envelope parsing in isolation: text spans, bomb-safe inflation, media types."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from ryuzen_ingest import envelope
from ryuzen_ingest.responses import ErrorCode, IngestError


def test_array_spans_are_the_exact_element_texts() -> None:
    text = ' [ {"event_id":"a","model":{"id":"acme/x"},"k":1,"k":2} ,\n{"event_id" : "b"}\t]\n'
    events = envelope.parse_json_array(text)
    assert [span for _, span in events] == [
        '{"event_id":"a","model":{"id":"acme/x"},"k":1,"k":2}',
        '{"event_id" : "b"}',
    ]
    assert events[0][0]["k"] == 2


def test_ndjson_skips_blank_lines_and_strips_json_whitespace_only() -> None:
    text = '\r\n {"a": 1}\t\r\n\n{"b": [1,\r2]}\n'
    events = envelope.parse_ndjson(text)
    assert [span for _, span in events] == ['{"a": 1}', '{"b": [1, 2]}']
    assert [value for value, _ in events] == [{"a": 1}, {"b": [1, 2]}]


def test_line_separators_inside_strings_are_kept() -> None:
    # U+2028 is legal inside a JSON string; only CR/LF (never legal there) are replaced.
    text = json.dumps([{"s": "a\u2028b"}], ensure_ascii=False)
    ((value, span),) = envelope.parse_json_array(text)
    assert value["s"] == "a\u2028b" and "\u2028" in span


def test_inflate_stops_at_the_cap() -> None:
    bomb = gzip.compress(b"\0" * 100_000)
    with pytest.raises(IngestError) as refused:
        envelope.inflate(bomb, limit=1000)
    assert (refused.value.status, refused.value.code) == (413, ErrorCode.TOO_LARGE)


def test_inflate_allows_exactly_the_cap() -> None:
    assert envelope.inflate(gzip.compress(b"x" * 1000), limit=1000) == b"x" * 1000


def test_inflate_joins_concatenated_members() -> None:
    assert envelope.inflate(gzip.compress(b"[1,") + gzip.compress(b"2]")) == b"[1,2]"


def test_inflate_refuses_zlib_and_raw_deflate() -> None:
    for data in (zlib.compress(b"[]"), zlib.compress(b"[]")[2:-4]):
        with pytest.raises(IngestError) as refused:
            envelope.inflate(data)
        assert refused.value.code == ErrorCode.INVALID_ENCODING


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/json", "application/json"),
        ("APPLICATION/JSON;charset=UTF-8", "application/json"),
        ('application/x-ndjson; charset="utf-8"', "application/x-ndjson"),
        ("application/json;", "application/json"),
    ],
)
def test_accepted_media_types(header: str, expected: str) -> None:
    assert envelope.parse_media_type(header) == expected


@pytest.mark.parametrize(
    "header",
    ["application/jsonl", "application/json; charset=utf-16", "application/json; q=1", "*/*", ""],
)
def test_refused_media_types(header: str) -> None:
    with pytest.raises(IngestError) as refused:
        envelope.parse_media_type(header)
    assert refused.value.status == 415


@pytest.mark.parametrize(
    ("header", "gzip_expected"), [(None, False), ("identity", False), (" GZip ", True)]
)
def test_content_codings(header: str | None, gzip_expected: bool) -> None:
    assert envelope.is_gzip(header) is gzip_expected


def test_read_envelope_keeps_the_inflated_payload() -> None:
    body = gzip.compress(b'{"event_id":"a","model":{"id":"acme/x"}}\n')
    import base64

    result = envelope.read_envelope(
        base64.b64encode(body).decode(),
        is_base64=True,
        content_type="application/x-ndjson",
        content_encoding="gzip",
    )
    assert result.payload == b'{"event_id":"a","model":{"id":"acme/x"}}\n'
    assert result.media_type == "application/x-ndjson"
    assert len(result.events) == 1
