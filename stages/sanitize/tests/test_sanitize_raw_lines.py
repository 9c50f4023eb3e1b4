"""Line parsing: the fast duplicate-key proof must never let a duplicate through."""

from __future__ import annotations

import gzip
import json

import pytest
from raw_batches import raw_line
from ryuzen_sanitize.raw_lines import RawObjectError, inflate, parse_line

BATCH = "01JDXW6T4N5M8Q9R2S3T4V5W6X"


def parsed(event_text: str):
    return parse_line(1, raw_line(event_text, BATCH, "acme"))


@pytest.mark.parametrize(
    ("event_text", "key"),
    [
        pytest.param('{"a": 1, "a": 2}', "a", id="top-level"),
        pytest.param('{"attributes": {"x": "1", "x": "2"}}', "x", id="nested"),
        pytest.param('{"a" : 1, "a" : 2}', "a", id="space-before-colon"),
        pytest.param('{"a"\t:1,"a"\n:2}', "a", id="tab-and-newline-before-colon"),
        pytest.param(
            '{"m": "say \\":\\" here", "a": 1, "a": 2}', "a", id="colon-token-inside-a-string"
        ),
        pytest.param('{"a": 1, "b": "c\\":", "a": 2}', "a", id="count-compensated-by-string"),
        pytest.param('{"list": [{"k": 1, "k": 2}]}', "k", id="inside-an-array"),
    ],
)
def test_duplicate_keys_are_always_found(event_text: str, key: str) -> None:
    line = parsed(event_text)
    assert (line.error, line.error_field) == ("duplicate_key", key)
    assert line.receipt is not None and line.receipt.partner == "acme"


@pytest.mark.parametrize(
    "event_text",
    [
        pytest.param('{"a": 1, "b": {"c": 2}}', id="compact"),
        pytest.param('{"a" : 1, "b" : {"c" : 2}}', id="spaced"),
        pytest.param('{"m": "a\\": b", "n": 1}', id="colon-token-inside-a-string"),
        pytest.param('{"m": "\\ud83d\\ude00 \\ud7ff"}', id="surrogate-pair-and-near-miss"),
    ],
)
def test_events_without_duplicates_parse(event_text: str) -> None:
    line = parsed(event_text)
    assert line.error is None and line.event == json.loads(event_text)


@pytest.mark.parametrize(
    "event_text",
    [
        pytest.param('{"a": NaN}', id="nan"),
        pytest.param('{"a": Infinity}', id="infinity"),
        pytest.param('{"a": 1', id="truncated"),
        pytest.param("[1, 2]", id="not-an-object"),
        pytest.param('{"m": "a\\ud800b"}', id="lone-high-surrogate"),
        pytest.param('{"m": "\\uDC00"}', id="lone-low-surrogate-upper-case"),
        pytest.param('{"\\ud800": 1}', id="lone-surrogate-in-a-key"),
    ],
)
def test_invalid_json_keeps_the_receipt(event_text: str) -> None:
    line = parsed(event_text)
    assert line.error == "invalid_json"


def test_a_line_that_is_not_ours_has_no_receipt() -> None:
    assert parse_line(3, '{"event": {}}').receipt is None
    assert parse_line(3, "garbage").error == "invalid_json"


def test_inflate_refuses_non_gzip_and_bombs() -> None:
    with pytest.raises(RawObjectError):
        inflate(b"not gzip")
    with pytest.raises(RawObjectError, match="limit"):
        inflate(gzip.compress(b"0" * (17 * 2**20)))


@pytest.mark.parametrize(
    "event_text",
    [
        pytest.param('{"a": 1, "s": "\\u0022:", "a": 2}', id="escaped-quote-compensates"),
        pytest.param('{"a": 1, "s": "\\"\\u003a", "a": 2}', id="escaped-colon-compensates"),
        pytest.param('{"a": 1, "s": "caf\\u00e9", "a": 2}', id="non-ascii-escape"),
    ],
)
def test_escapes_cannot_hide_a_duplicate(event_text: str) -> None:
    assert parsed(event_text).error == "duplicate_key"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("partner", "NOT A PARTNER", id="invalid-partner"),
        pytest.param("partner", "../acme", id="traversal-partner"),
        pytest.param("received_at", "2026-11-28T05:30:12", id="naive-receipt-time"),
    ],
)
def test_a_receipt_that_is_not_ours_makes_the_line_unattributed(field: str, value: str) -> None:
    line = json.loads(raw_line('{"a": 1}', BATCH, "acme"))
    line["receipt"][field] = value
    parsed_line = parse_line(1, json.dumps(line, separators=(",", ":")))
    assert (parsed_line.error, parsed_line.receipt) == ("invalid_json", None)
