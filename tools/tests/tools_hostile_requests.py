"""The table of hostile requests against ``POST /v1/events``, and how to send each one.

Each ``Case`` builds its request from the stack's keys and a canary (a unique string the
request carries in its body, or in a header when the body cannot hold one) and states
the expected outcome:

* rejected — ``status`` and ``code``: the ingest stage's ``error`` (its documented
  ``ErrorCode``), API Gateway's ``message`` when the gateway refuses the request before the
  handler, or the HTTP reason phrase when the HTTP server refuses it before the gateway;
* ``quarantined`` — valid at the envelope level by design (ingest checks only the
  envelope): 202, then sanitize quarantines the event for that reason (and ``field``);
* ``sanitized`` — a valid batch (the canary is only in a header): 202 and sanitized.

``HttpCall``s are sent with httpx; ``WireCall``s are bytes on a raw socket, for what
httpx cannot send: broken framing, huge or many headers, slow and cut-off bodies.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

JSON = "application/json"
NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Keys:
    """API keys of the stack: a client for every partner, one for nimbus-ai only, a partner's."""

    ingest: str
    nimbus_only: str
    partner: str


@dataclass(frozen=True)
class HttpCall:
    """One request sent with httpx."""

    headers: list[tuple[str, str]]
    body: bytes = b""
    method: str = "POST"


@dataclass(frozen=True)
class WireCall:
    """Bytes written to a socket: ``pieces`` of (data, seconds to wait after it); then the
    write side is shut (the client is done sending, or gives up)."""

    pieces: tuple[tuple[bytes, float], ...]


@dataclass(frozen=True)
class Answer:
    status: int
    code: str | None
    text: str


@dataclass(frozen=True)
class Case:
    """One hostile request and what must come of it."""

    id: str
    build: Callable[[Keys, str], HttpCall | WireCall]
    status: int
    code: str | None = None
    quarantined: str | None = None
    field: str | None = None  # the quarantine record's field (None: not checked)
    sanitized: bool = False
    # A request sent first (its answer must be 202): the idempotency key's first use.
    setup: Callable[[Keys, str], HttpCall] | None = None
    note: str = ""

    @property
    def outcome(self) -> str:
        """The expected outcome, as the report's table states it."""
        if self.quarantined:
            where = f" at {self.field}" if self.field else ""
            return f"202, then quarantined: {self.quarantined}{where}"
        if self.sanitized:
            return "202, then sanitized (canary only in a header)"
        return f"{self.status} {self.code}"


# --- events and bodies ----------------------------------------------------------------


def event(canary: str, **overrides: Any) -> dict[str, Any]:
    """A valid acme inference event whose free text holds ``canary``."""
    document: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "schema_version": "1.0",
        "kind": "inference",
        "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "model": {"id": "acme/titan-large", "version": "2026-10-15"},
        "metrics": {"latency_ms": 120.5, "input_tokens": 12},
        "outcome": {"status": "error", "http_status": 502, "error_message": f"upstream {canary}"},
    }
    document.update(overrides)
    return document


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def ndjson(events: list[dict[str, Any]]) -> bytes:
    return b"".join(dumps(item) + b"\n" for item in events)


def good_batch() -> list[dict[str, Any]]:
    """The good request sent after every hostile one: one clean event."""
    document = event("ok")
    document["outcome"] = {"status": "ok", "http_status": 200}
    return [document]


def post(keys: Keys, body: bytes, content_type: str | None = JSON, **extra: str) -> HttpCall:
    headers = [("x-api-key", keys.ingest)]
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    headers += [(name.replace("_", "-"), value) for name, value in extra.items()]
    return HttpCall(headers, body)


def _replace(body: bytes, old: bytes, new: bytes) -> bytes:
    assert body.count(old) == 1, old
    return body.replace(old, new)


def _one(canary: str, **overrides: Any) -> bytes:
    return dumps([event(canary, **overrides)])


def _nested(depth: int, canary: str) -> bytes:
    inner = b"[" * depth + json.dumps(canary).encode() + b"]" * depth
    return _replace(_one(canary, attributes={"deep": 0}), b'"deep":0', b'"deep":' + inner)


def _wire_head(keys: Keys, *lines: str, content_type: str = NDJSON) -> bytes:
    head = ["POST /v1/events HTTP/1.1", "Host: 127.0.0.1", f"x-api-key: {keys.ingest}"]
    head += [f"Content-Type: {content_type}", *lines]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


def _wire(keys: Keys, body: bytes, *lines: str, api_key: str | None = None) -> WireCall:
    head = _wire_head(keys, *lines, f"Content-Length: {len(body)}")
    if api_key is not None:
        head = head.replace(f"x-api-key: {keys.ingest}".encode(), f"x-api-key: {api_key}".encode())
    return WireCall(((head + body, 0.0),))


def _chunked(body: bytes) -> bytes:
    return f"{len(body):x}\r\n".encode() + body + b"\r\n"


# --- the table -------------------------------------------------------------------------

# API Gateway refuses a body it did not fully receive, or whose framing is ambiguous.
BAD_REQUEST = (400, "Bad Request")
TOO_LONG = 10 * 2**20 + 1  # API Gateway's payload limit, plus one byte

# fmt: off
CASES: tuple[Case, ...] = (
    # Broken JSON and wrong shapes
    Case("truncated-json", lambda k, c: post(k, _one(c)[:-9]), 400, "invalid_json"),
    Case("truncated-ndjson-line", lambda k, c: post(k, ndjson([event(c), event(c)])[:-12],
         NDJSON), 400, "invalid_json"),
    Case("top-level-object", lambda k, c: post(k, dumps(event(c))), 400, "invalid_json"),
    Case("top-level-string", lambda k, c: post(k, dumps(c)), 400, "invalid_json"),
    Case("array-of-scalars", lambda k, c: post(k, dumps([c, 1, None])), 400, "missing_field"),
    Case("event-id-a-number", lambda k, c: post(k, _one(c, event_id=12345)), 400,
         "missing_field"),
    Case("event-id-missing", lambda k, c: post(k, dumps([{"model": {"id": "acme/x"}, "x": c}])),
         400, "missing_field"),
    Case("model-a-string", lambda k, c: post(k, _one(c, model=c)), 400, "missing_field"),
    Case("model-id-a-number", lambda k, c: post(k, _one(c, model={"id": 7, "version": c})), 400,
         "missing_field"),
    Case("nan", lambda k, c: post(k, _replace(_one(c), b"120.5", b"NaN")), 400, "invalid_json"),
    Case("infinity", lambda k, c: post(k, _replace(_one(c), b"120.5", b"-Infinity")), 400,
         "invalid_json"),
    Case("number-5000-digits", lambda k, c: post(k, _replace(_one(c), b"120.5", b"9" * 5000)),
         400, "invalid_json", note="Python's int() limit (4,300 digits)"),
    Case("number-400-digits", lambda k, c: post(k, _replace(_one(c), b":12}", b":" + b"9" * 400
         + b"}")), 202, quarantined="schema_violation", field="metrics.input_tokens"),
    Case("float-overflow-1e400", lambda k, c: post(k, _replace(_one(c), b"120.5", b"1e400")),
         202, quarantined="schema_violation", field="metrics.latency_ms"),
    Case("nesting-10000-deep", lambda k, c: post(k, b"[" * 10_000 + dumps(c) + b"]" * 10_000),
         400, "invalid_json"),
    Case("nesting-10000-deep-in-event", lambda k, c: post(k, _nested(10_000, c)), 400,
         "invalid_json"),
    Case("nesting-500-deep-in-event", lambda k, c: post(k, _nested(500, c)), 202,
         quarantined="schema_violation"),
    Case("wrong-type-in-event", lambda k, c: post(k, _one(c, metrics={"latency_ms": "fast"})),
         202, quarantined="schema_violation", field="metrics.latency_ms"),
    # Sizes
    Case("string-10MB", lambda k, c: post(k, _one(c, attributes={"x": c + "x" * 10_000_000})),
         413, "too_large"),
    Case("body-over-10MiB", lambda k, c: WireCall(((_wire_head(k, f"Content-Length: {TOO_LONG}",
         content_type=JSON) + dumps([c]), 0.0),)), 413, "Request Too Long",
         note="API Gateway's payload limit, answered from the header"),
    Case("gzip-bomb", lambda k, c: post(k, gzip.compress(dumps([c])[:-1] + b" " * (64 * 2**20)
         + b"]"), Content_Encoding="gzip"), 413, "too_large"),
    Case("gzip-event-over-64KiB", lambda k, c: post(k, gzip.compress(_one(c, attributes={
         "x": c * 20_000})), Content_Encoding="gzip"), 413, "event_too_large"),
    Case("events-5001", lambda k, c: post(k, gzip.compress(dumps([event(c)] * 5001)),
         Content_Encoding="gzip"), 413, "too_many_events", note="gzip: 5,001 events are > 1 MiB"),
    Case("event-over-64KiB", lambda k, c: post(k, _one(c, attributes={"x": c * 6000})), 413,
         "event_too_large"),
    Case("empty-body", lambda k, c: post(k, b"", X_Note=c), 400, "empty_batch"),
    Case("empty-array", lambda k, c: post(k, b"[]", X_Note=c), 400, "empty_batch"),
    Case("whitespace-only", lambda k, c: post(k, b" \r\n\t ", X_Note=c), 400, "empty_batch"),
    # Encodings and media types that lie or are unsupported
    Case("gzip-truncated", lambda k, c: post(k, gzip.compress(_one(c))[:-12],
         Content_Encoding="gzip"), 400, "invalid_encoding"),
    Case("gzip-claimed-plain-body", lambda k, c: post(k, _one(c), Content_Encoding="gzip"), 400,
         "invalid_encoding"),
    Case("gzip-sent-as-identity", lambda k, c: post(k, gzip.compress(_one(c)),
         Content_Encoding="identity"), 400, "invalid_json"),
    Case("content-encoding-br", lambda k, c: post(k, _one(c), Content_Encoding="br"), 415,
         "unsupported_media_type"),
    Case("content-encoding-gzip-twice", lambda k, c: post(k, gzip.compress(gzip.compress(
         _one(c))), Content_Encoding="gzip, gzip"), 415, "unsupported_media_type"),
    Case("content-type-text-plain", lambda k, c: post(k, _one(c), "text/plain"), 415,
         "unsupported_media_type"),
    Case("content-type-missing", lambda k, c: post(k, _one(c), None), 415,
         "unsupported_media_type"),
    Case("content-type-charset-latin1", lambda k, c: post(k, _one(c),
         "application/json; charset=latin-1"), 415, "unsupported_media_type"),
    Case("content-type-ndjson-body-array", lambda k, c: post(k, _one(c), NDJSON), 400,
         "missing_field", note="one NDJSON line holding an array"),
    Case("content-type-json-body-ndjson", lambda k, c: post(k, ndjson([event(c)] * 2)), 400,
         "invalid_json"),
    Case("content-type-conflicting", lambda k, c: HttpCall([("x-api-key", k.ingest),
         ("Content-Type", JSON), ("Content-Type", "text/plain")], _one(c)), 415,
         "unsupported_media_type"),
    Case("invalid-utf8", lambda k, c: post(k, _replace(_one(c), b"upstream", b"up\xff\xfestream")),
         400, "invalid_json"),
    Case("utf16-body", lambda k, c: post(k, _one(c).decode().encode("utf-16")), 400,
         "invalid_json"),
    Case("utf8-bom", lambda k, c: post(k, b"\xef\xbb\xbf" + _one(c)), 400, "invalid_json"),
    Case("raw-nul-byte-in-string", lambda k, c: post(k, _replace(_one(c), b"upstream",
         b"up\x00stream")), 400, "invalid_json"),
    Case("escaped-nul-in-version", lambda k, c: post(k, _one(c, model={"id": "acme/titan-large",
         "version": f"1.0\u0000{c}"})), 202, quarantined="schema_violation",
         field="model.version"),
    Case("lone-surrogate", lambda k, c: post(k, _replace(_one(c), b"upstream", b"\\ud800up")),
         202, quarantined="invalid_json"),
    Case("duplicate-keys", lambda k, c: post(k, _replace(_one(c), b'"kind":"inference"',
         b'"kind":"inference","kind":"delivery"')), 202, quarantined="duplicate_key",
         field="kind"),
    # Chat data and model ids
    Case("prompt-field", lambda k, c: post(k, _one(c, prompt=f"summarise {c}")), 202,
         quarantined="unknown_field", field="prompt"),
    Case("messages-field", lambda k, c: post(k, _one(c, messages=[{"role": "user",
         "content": c}])), 202, quarantined="unknown_field", field="messages"),
    Case("model-id-path-traversal", lambda k, c: post(k, _one(c, model={"id":
         f"acme/../../etc/{c}"})), 202, quarantined="schema_violation",
         field="model.id"),
    Case("model-id-traversal-outside-partners", lambda k, c: post(k, _one(c, model={"id":
         f"../../{c}"})), 400, "unknown_model"),
    Case("model-id-homoglyph-partner", lambda k, c: post(k, _one(c, model={"id":
         f"\u0430cme/{c}"})), 400, "unknown_model"),
    Case("model-id-homoglyph-name", lambda k, c: post(k, _one(c, model={"id":
         f"acme/t\u0456tan-{c}"})), 202, quarantined="schema_violation",
         field="model.id"),
    Case("model-of-no-partner", lambda k, c: post(k, _one(c, model={"id": f"nobody/{c}"})), 400,
         "unknown_model"),
    # Keys, partners, idempotency, methods
    Case("api-key-missing", lambda k, c: HttpCall([("Content-Type", JSON)], _one(c)), 403,
         "Forbidden"),
    Case("api-key-wrong", lambda k, c: HttpCall([("x-api-key", c), ("Content-Type", JSON)],
         _one(c)), 403, "Forbidden"),
    Case("api-key-of-a-partner", lambda k, c: HttpCall([("x-api-key", k.partner),
         ("Content-Type", JSON)], _one(c)), 403, "unknown_client"),
    Case("partner-not-allowed-for-key", lambda k, c: HttpCall([("x-api-key", k.nimbus_only),
         ("Content-Type", JSON)], _one(c)), 403, "forbidden_partner"),
    Case("one-forbidden-event-in-batch", lambda k, c: HttpCall([("x-api-key", k.nimbus_only),
         ("Content-Type", JSON)], dumps([event(c, model={"id": "nimbus/cirrus-7b"}), event(c)])),
         403, "forbidden_partner"),
    Case("idempotency-key-invalid", lambda k, c: post(k, _one(c), Idempotency_Key=f"{c} x"),
         400, "invalid_idempotency_key"),
    Case("idempotency-key-reused", lambda k, c: post(k, _one(c), Idempotency_Key=f"reuse-{c}"),
         422, "idempotency_key_reused",
         setup=lambda k, c: post(k, dumps(good_batch()), Idempotency_Key=f"reuse-{c}")),
    Case("method-get", lambda k, c: HttpCall([("x-api-key", k.ingest), ("X-Note", c)], b"",
         "GET"), 405, "Method Not Allowed"),
    # HTTP framing, headers and timing (raw sockets)
    Case("header-line-over-64KiB", lambda k, c: _wire(k, b"", "X-Note: " + c * 6000), 431,
         "Line too long", note="http.server refuses it before the gateway"),
    Case("too-many-headers", lambda k, c: _wire(k, b"", *(f"X-N{i}: {c}" for i in range(120))),
         431, "Too many headers"),
    Case("header-60KiB-on-a-valid-batch", lambda k, c: _wire(k, ndjson(good_batch()),
         "X-Note: " + c * 4000), 202, sanitized=True,
         note="the local gateway passes headers up to http.server's 64 KiB line"),
    Case("nul-in-api-key-header", lambda k, c: _wire(k, ndjson([event(c)]),
         api_key=f"{k.ingest}\x00{c}"), 403, "Forbidden"),
    Case("body-cut-off", lambda k, c: WireCall(((_wire_head(k, "Content-Length: 100000")
         + ndjson([event(c)] * 3), 0.0),)), *BAD_REQUEST),
    Case("body-stalled-then-cut-off", lambda k, c: WireCall(((_wire_head(k,
         "Content-Length: 100000") + ndjson([event(c)]), 1.5), (ndjson([event(c)]), 0.0))),
         *BAD_REQUEST, note="a good request is answered during the stall"),
    Case("slow-body-complete", lambda k, c: _slow(k, ndjson([event(c, prompt=c)])), 202,
         quarantined="unknown_field", field="prompt",
         note="the body dripped in 6 pieces, 0.25 s apart"),
    Case("chunked-cut-off", lambda k, c: WireCall(((_wire_head(k, "Transfer-Encoding: chunked")
         + _chunked(ndjson([event(c)] * 2)), 0.0),)), *BAD_REQUEST),
    Case("content-length-negative", lambda k, c: WireCall(((_wire_head(k, "Content-Length: -1")
         + ndjson([event(c)]), 0.0),)), *BAD_REQUEST),
    Case("content-length-superscript-digit", lambda k, c: WireCall(((_wire_head(k,
         "Content-Length: \u00b2") + ndjson([event(c)]), 0.0),)), *BAD_REQUEST),
    Case("content-length-repeated-differing", lambda k, c: _two_lengths(k, c), *BAD_REQUEST),
    Case("content-length-beside-chunked", lambda k, c: WireCall(((_wire_head(k,
         "Content-Length: 40", "Transfer-Encoding: chunked") + _chunked(ndjson([event(c)] * 2))
         + b"0\r\n\r\n", 0.0),)), *BAD_REQUEST),
)
# fmt: on


def _slow(keys: Keys, body: bytes) -> WireCall:
    head = _wire_head(keys, f"Content-Length: {len(body)}")
    size = -(-len(body) // 6)
    pieces = [(head, 0.25)] + [(body[i : i + size], 0.25) for i in range(0, len(body), size)]
    return WireCall(tuple(pieces))


def _two_lengths(keys: Keys, canary: str) -> WireCall:
    # The first line alone is a valid batch: a gateway taking the smaller length would
    # store a prefix of what the client sent.
    first = ndjson([event(canary)])
    body = first + ndjson([event(canary)])
    head = _wire_head(keys, f"Content-Length: {len(body)}", f"Content-Length: {len(first)}")
    return WireCall(((head + body, 0.0),))


# --- sending ---------------------------------------------------------------------------


def answer_of(status: int, reason: str, body: bytes) -> Answer:
    """The machine-readable code: ingest's ``error``, API Gateway's ``message``, else the
    HTTP reason phrase (an HTML error page of the HTTP server)."""
    text = body.decode("utf-8", errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    code = reason
    if isinstance(document, dict):
        code = document.get("error") or document.get("message") or reason
    return Answer(status, None if status == 202 else code, text)


def send_http(client: httpx.Client, api: str, call: HttpCall) -> Answer:
    response = client.request(
        call.method, f"{api}/v1/events", headers=call.headers, content=call.body
    )
    return answer_of(response.status_code, response.reason_phrase, response.content)


def send_wire(api: str, call: WireCall, during_pause: Callable[[], None]) -> Answer:
    """Write the pieces (running ``during_pause`` once, in the first pause), shut the write
    side, read the answer."""
    host, port = api.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        paused = False
        for data, pause in call.pieces:
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed early (431): read what it said
            if pause:
                started = time.monotonic()
                if not paused:
                    during_pause()
                    paused = True
                time.sleep(max(0.0, pause - (time.monotonic() - started)))
        with contextlib.suppress(OSError):  # the server may have closed already
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        return answer_of(response.status, response.reason, body)


@dataclass
class Sent:
    """Batches the stack accepted during the run, by what sent them."""

    good: list[str] = field(default_factory=list)
    by_case: dict[str, str] = field(default_factory=dict)

    def all(self) -> set[str]:
        return {*self.good, *self.by_case.values()}
