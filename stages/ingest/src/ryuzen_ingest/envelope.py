"""Envelope checks: media type, decoding, bomb-safe inflation, strict JSON and size limits.

Only what ingest must know before it writes RAW: the body parses, its sizes are within
limits, and every item is an object with a string ``event_id`` and a ``model.id``. Full
validation against the TelemetryEvent contract is the sanitize stage's job.

Each event keeps its exact original JSON text beside the parsed dict, because the
sanitize stage must later see duplicate keys (``{"a":1,"a":2}``) that re-serialising a
parsed dict would hide. Every event is parsed exactly once.

Non-object items (``[1, "x"]``) are ``missing_field``, not ``invalid_json``: the body *is*
valid JSON; what is wrong is that the item lacks the envelope fields.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from dataclasses import dataclass
from typing import Any

from ryuzen_ingest.responses import ErrorCode, IngestError

MAX_BODY_BYTES = 1024 * 1024
MAX_INFLATED_BYTES = 10 * 1024 * 1024
MAX_EVENTS = 5000
MAX_EVENT_BYTES = 64 * 1024

MEDIA_JSON = "application/json"
MEDIA_NDJSON = "application/x-ndjson"
_MEDIA_TYPES = frozenset({MEDIA_JSON, MEDIA_NDJSON})
_UTF8_BOM = b"\xef\xbb\xbf"
# base64 of MAX_BODY_BYTES is 4/3 as long; anything longer is too large before decoding.
_MAX_BASE64_CHARS = (MAX_BODY_BYTES + 2) // 3 * 4
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_JSON_WHITESPACE = frozenset(" \t\n\r")  # a set, so the empty string is not "in" it


def _skip_whitespace(text: str, index: int) -> int:
    return _WHITESPACE.match(text, index).end()  # type: ignore[union-attr]  # always matches


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for the process: strict=True refuses raw control characters inside strings,
# parse_constant refuses NaN/Infinity/-Infinity, which Python's json accepts by default.
_DECODER = json.JSONDecoder(strict=True, parse_constant=_reject_constant)
_scan_once = _DECODER.scan_once  # type: ignore[attr-defined]  # set by JSONDecoder.__init__

Event = tuple[dict[str, Any], str]
"""A parsed event and its exact original JSON text (CR/LF between tokens made spaces)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """An accepted body: its events in order, its media type and the inflated bytes."""

    events: list[Event]
    media_type: str
    payload: bytes


def _reject(status: int, code: ErrorCode, detail: str) -> IngestError:
    return IngestError(status, code, detail)


def parse_media_type(content_type: str | None) -> str:
    """``application/json`` or ``application/x-ndjson``; only a ``charset=utf-8`` parameter."""
    if not content_type:
        raise _reject(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Content-Type is required")
    media, *params = content_type.split(";")
    media = media.strip().lower()
    if media not in _MEDIA_TYPES:
        raise _reject(
            415,
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json or application/x-ndjson",
        )
    for param in params:
        name, _, value = param.partition("=")
        if not name.strip() and not value.strip():
            continue  # a stray ";" is harmless
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8":
            raise _reject(
                415,
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                "the only Content-Type parameter allowed is charset=utf-8",
            )
    return media


def is_gzip(content_encoding: str | None) -> bool:
    """True for ``gzip``; False for none or ``identity``; anything else is 415."""
    coding = (content_encoding or "").strip().lower()
    if coding in ("", "identity"):
        return False
    if coding == "gzip":
        return True
    raise _reject(
        415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Content-Encoding must be gzip or identity"
    )


def body_bytes(body: str | None, is_base64: bool, *, gzip: bool) -> bytes:
    """The body as received, as bytes; 413 above MAX_BODY_BYTES before any other work."""
    if not body:
        return b""
    if is_base64:
        if len(body) > _MAX_BASE64_CHARS:
            raise _reject(413, ErrorCode.TOO_LARGE, "body exceeds 1 MiB")
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise _reject(400, ErrorCode.INVALID_ENCODING, "body is not valid base64") from None
    else:
        if len(body) > MAX_BODY_BYTES:  # every character is at least one byte
            raise _reject(413, ErrorCode.TOO_LARGE, "body exceeds 1 MiB")
        try:
            data = body.encode("utf-8")
        except UnicodeEncodeError:
            if gzip:
                raise _reject(400, ErrorCode.INVALID_ENCODING, "gzip body is not valid") from None
            raise _reject(400, ErrorCode.INVALID_JSON, "body is not valid UTF-8") from None
    if len(data) > MAX_BODY_BYTES:
        raise _reject(413, ErrorCode.TOO_LARGE, "body exceeds 1 MiB")
    return data


def inflate(data: bytes, limit: int = MAX_INFLATED_BYTES) -> bytes:
    """Gunzip ``data`` (one or more members), never producing more than ``limit`` + 1 bytes.

    ``max_length`` bounds every decompress call, so a gzip bomb costs at most the cap in
    memory before it is refused. This is stdlib zlib on purpose: ISA-L would save ~0.3 ms
    per batch here, not worth a second implementation on the path that guards memory.
    """
    parts: list[bytes] = []
    produced = 0
    remaining = data
    try:
        while remaining:
            inflater = zlib.decompressobj(wbits=31)  # 31 = gzip wrapper only
            pending = remaining
            while True:
                chunk = inflater.decompress(pending, limit - produced + 1)
                produced += len(chunk)
                if produced > limit:
                    raise _reject(413, ErrorCode.TOO_LARGE, "inflated body exceeds 10 MiB")
                parts.append(chunk)
                tail = inflater.unconsumed_tail
                if inflater.eof or not tail or (not chunk and tail == pending):
                    break
                pending = tail
            if not inflater.eof:
                raise _reject(400, ErrorCode.INVALID_ENCODING, "gzip body is truncated")
            # Concatenated members are valid gzip (RFC 1952); each costs >= 18 input bytes,
            # so this loop is bounded by the 1 MiB body.
            remaining = inflater.unused_data
    except zlib.error:
        raise _reject(400, ErrorCode.INVALID_ENCODING, "body is not valid gzip") from None
    return b"".join(parts)  # one part is returned as is, without a copy


def decode_text(data: bytes) -> str:
    """Strict UTF-8 without a byte order mark."""
    if data.startswith(_UTF8_BOM):
        raise _reject(400, ErrorCode.INVALID_JSON, "body starts with a byte order mark")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _reject(400, ErrorCode.INVALID_JSON, "body is not valid UTF-8") from None


def _invalid_json(error: Exception, *, line: int | None = None) -> IngestError:
    """``invalid_json`` with a position at most: never a quote of the body."""
    where = "body" if line is None else f"NDJSON line {line}"
    if isinstance(error, json.JSONDecodeError):
        position = f"column {error.colno}" if line else f"line {error.lineno}, column {error.colno}"
        detail = f"{where} is not valid JSON ({position})"
    elif isinstance(error, RecursionError):
        detail = f"{where} is nested too deeply"
    else:
        # ValueError from parse_constant (NaN/Infinity) or from int() over 4300 digits.
        detail = f"{where} holds a value strict JSON does not allow"
    return _reject(400, ErrorCode.INVALID_JSON, detail)


def _too_many() -> IngestError:
    return _reject(413, ErrorCode.TOO_MANY_EVENTS, f"a batch holds at most {MAX_EVENTS} events")


def _one_line(text: str) -> str:
    # Strict JSON forbids raw CR/LF inside strings, so any here are whitespace between
    # tokens: making them spaces keeps the RAW line one line without changing the value.
    if "\n" in text or "\r" in text:
        return text.replace("\r", " ").replace("\n", " ")
    return text


def parse_json_array(text: str) -> list[Event]:
    """Each element of a top-level JSON array with its exact text span, in order."""
    events: list[Event] = []
    append = events.append
    scan_once = _scan_once
    try:
        index = _skip_whitespace(text, 0)
        if not text.startswith("[", index):
            raise _reject(400, ErrorCode.INVALID_JSON, "body must be a JSON array of events")
        index = _skip_whitespace(text, index + 1)
        if text.startswith("]", index):
            index += 1
        else:
            while True:
                try:
                    value, end = scan_once(text, index)
                except StopIteration as stop:
                    raise json.JSONDecodeError("Expecting value", text, stop.value) from None
                if len(events) == MAX_EVENTS:
                    raise _too_many()
                append((value, _one_line(text[index:end])))
                # Compact JSON (what SDKs send) takes the fast path: no whitespace to skip.
                separator = text[end : end + 1]
                if separator in _JSON_WHITESPACE:
                    end = _skip_whitespace(text, end)
                    separator = text[end : end + 1]
                if separator == ",":
                    index = end + 1
                    if text[index : index + 1] in _JSON_WHITESPACE:
                        index = _skip_whitespace(text, index)
                elif separator == "]":
                    index = end + 1
                    break
                else:
                    raise json.JSONDecodeError("Expecting ',' delimiter", text, end)
    except IngestError:
        raise
    except (ValueError, RecursionError) as error:
        raise _invalid_json(error) from None
    if _skip_whitespace(text, index) != len(text):
        raise _invalid_json(json.JSONDecodeError("Extra data", text, index))
    return events


def parse_ndjson(text: str) -> list[Event]:
    """One event per non-blank line (LF or CRLF line ends)."""
    events: list[Event] = []
    append = events.append
    scan_once = _scan_once
    for number, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.strip(" \t\r")  # JSON whitespace only, not str.strip()'s wider set
        if not line:
            continue
        try:
            value, end = scan_once(line, 0)
        except StopIteration as stop:
            error = json.JSONDecodeError("Expecting value", line, stop.value)
            raise _invalid_json(error, line=number) from None
        except (ValueError, RecursionError) as error:
            raise _invalid_json(error, line=number) from None
        if end != len(line):
            raise _reject(
                400, ErrorCode.INVALID_JSON, f"NDJSON line {number} holds more than one value"
            )
        if len(events) == MAX_EVENTS:
            raise _too_many()
        append((value, _one_line(line)))
    return events


def check_events(events: list[Event]) -> None:
    """Per-event envelope checks: size, object, string ``event_id``, string ``model.id``."""
    if not events:
        raise _reject(400, ErrorCode.EMPTY_BATCH, "the batch holds no events")
    for position, (value, text) in enumerate(events):
        # A character is at most 4 UTF-8 bytes, so short texts need no encoding to measure.
        if len(text) * 4 > MAX_EVENT_BYTES and len(text.encode("utf-8")) > MAX_EVENT_BYTES:
            raise _reject(413, ErrorCode.EVENT_TOO_LARGE, f"event {position} exceeds 64 KiB")
        if type(value) is not dict:
            raise _reject(400, ErrorCode.MISSING_FIELD, f"event {position} is not a JSON object")
        event_id = value.get("event_id")
        if type(event_id) is not str or not event_id:
            raise _reject(
                400, ErrorCode.MISSING_FIELD, f"event {position}: event_id must be a string"
            )
        model = value.get("model")
        model_id = model.get("id") if type(model) is dict else None
        if type(model_id) is not str or not model_id:
            raise _reject(
                400, ErrorCode.MISSING_FIELD, f"event {position}: model.id must be a string"
            )


def read_envelope(
    body: str | None,
    *,
    is_base64: bool,
    content_type: str | None,
    content_encoding: str | None,
) -> Envelope:
    """Run every envelope check on a request body; IngestError on the first failure."""
    media_type = parse_media_type(content_type)
    gzip = is_gzip(content_encoding)
    data = body_bytes(body, is_base64, gzip=gzip)
    if gzip and data:
        data = inflate(data)
    text = decode_text(data)
    if media_type == MEDIA_JSON:
        events = parse_json_array(text) if _skip_whitespace(text, 0) < len(text) else []
    else:
        events = parse_ndjson(text)
    check_events(events)
    return Envelope(events=events, media_type=media_type, payload=data)
