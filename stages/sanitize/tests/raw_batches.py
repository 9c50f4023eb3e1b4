"""Test helpers: RAW objects exactly as the ingest stage writes them, and valid v1 events."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

RECEIVED_AT = datetime(2026, 11, 28, 5, 30, 12, 345000, tzinfo=UTC)


def event(model_id: str = "acme/titan-large", **overrides: Any) -> dict[str, Any]:
    """A valid inference event occurring a minute before RECEIVED_AT."""
    document: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "schema_version": "1.0",
        "kind": "inference",
        "occurred_at": (RECEIVED_AT - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "model": {"id": model_id, "version": "2026-10-01"},
        "region": "eu-west-1",
        "metrics": {
            "latency_ms": 812.5,
            "ttft_ms": 120.0,
            "input_tokens": 512,
            "output_tokens": 128,
        },
        "outcome": {"status": "ok", "http_status": 200, "finish_reason": "stop"},
        "client": {"sdk": "ryuzen-python", "sdk_version": "1.4.2"},
        "attributes": {"tier": "gold", "stream": True},
    }
    document.update(overrides)
    return document


def raw_line(
    event_text: str, batch_id: str, partner: str, received_at: datetime = RECEIVED_AT
) -> str:
    """One RAW line: the receipt first, then the event text verbatim (as ingest writes it)."""
    receipt = {
        "batch_id": batch_id,
        "received_at": received_at.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{received_at.microsecond // 1000:03d}Z",
        "client_id": "edge-gateway",
        "request_id": "req-1",
        "partner": partner,
        "schema": "ryuzen.raw.v1",
    }
    return (
        '{"receipt":' + json.dumps(receipt, separators=(",", ":")) + ',"event":' + event_text + "}"
    )


def raw_object(items: list[tuple[str, str] | tuple[dict[str, Any], str]], batch_id: str) -> bytes:
    """gzip NDJSON of (event or event text, partner) pairs."""
    lines = []
    for payload, partner in items:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        lines.append(raw_line(text, batch_id, partner))
    return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"))
