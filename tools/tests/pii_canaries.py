"""Events carrying planted PII ("canaries") for the end-to-end privacy tests.

Each canary is a distinctive value that must never appear in clear in SANITIZED, in a
quarantine record, in a certificate or in the audit log. Every event is a valid v1 event
except where it breaks the contract on purpose (an unknown ``prompt`` field).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

# Free text (outcome.error_message, attribute values): redacted in place (onPii: redact).
TEXT_CANARIES = {
    "email": "canary.user@example.org",
    "phone": "+1 415-555-0199",
    "ipv4": "198.51.100.77",
    "card": "4111 1111 1111 1111",
    "aws_key": "AKIACANARY0000000001",
    "attribute_email": "canary2@example.net",
    "attribute_phone": "415-555-0177",
}
# Identifier fields are never rewritten: PII there quarantines the whole event.
VERSION_CANARY = "415-555-0132"  # a phone number as model.version
ERROR_CODE_CANARY = "AKIACANARY0000000002"  # an AWS key id as outcome.error_code
# An unknown field is a quarantine reason; its value must not be kept even hashed in clear.
PROMPT_CANARY = "please summarise the chat of canary3@example.com"

ALL_CANARIES = (*TEXT_CANARIES.values(), VERSION_CANARY, ERROR_CODE_CANARY, PROMPT_CANARY)
# Fragments that must not survive either (a partial redaction would leave them).
CANARY_FRAGMENTS = ("canary", "CANARY", "415-555-01", "198.51.100.77", "4111 1111", "@example.")


def _event(model_id: str, **overrides: Any) -> dict[str, Any]:
    occurred = datetime.now(UTC) - timedelta(minutes=1)
    document: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "schema_version": "1.0",
        "kind": "inference",
        "occurred_at": occurred.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "model": {"id": model_id, "version": "2026-10-15"},
        "region": "eu-west-1",
        "metrics": {"latency_ms": 812.5, "ttft_ms": 120.0, "input_tokens": 512, "output_tokens": 8},
        "outcome": {"status": "error", "http_status": 502, "error_code": "upstream_error"},
        "client": {"sdk": "ryuzen-py", "sdk_version": "1.4.2"},
        "attributes": {"tier": "pro"},
    }
    document.update(overrides)
    return document


def canary_events() -> dict[str, dict[str, Any]]:
    """The planted events by role; each role says what sanitize must do with it."""
    text = TEXT_CANARIES
    message = (
        f"upstream refused: contact {text['email']} or {text['phone']} from {text['ipv4']}, "
        f"card {text['card']}, key {text['aws_key']}"
    )
    redacted = _event(
        "acme/titan-large",
        outcome={
            "status": "error",
            "http_status": 502,
            "error_code": "upstream_error",
            "error_message": message,
        },
        attributes={
            "tier": "pro",
            "contact": f"reach me at {text['attribute_email']}",
            "callback": f"phone {text['attribute_phone']}",
            "stream": True,
        },
    )
    version = _event("nimbus/core-v2", model={"id": "nimbus/core-v2", "version": VERSION_CANARY})
    error_code = _event(
        "orbital/swift-mini",
        outcome={"status": "error", "http_status": 500, "error_code": ERROR_CODE_CANARY},
    )
    prompt = _event("acme/swift-mini", prompt=PROMPT_CANARY)
    return {"redacted": redacted, "version": version, "error_code": error_code, "prompt": prompt}


def find_canaries(data: bytes | str) -> list[str]:
    """The canaries and fragments that occur in ``data``."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    return [value for value in (*ALL_CANARIES, *CANARY_FRAGMENTS) if value in text]
