"""Test helpers: SANITIZED rows, frames and Parquet exactly as the sanitize stage writes them.

Built here from the SANITIZED column contract rather than by running sanitize: a stage's
tests run in a venv holding only that stage and the contracts.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from ryuzen_analytics.frame_schemas import SANITIZED_SCHEMA
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import month_of

RECEIVED_AT = datetime(2026, 11, 28, 5, 30, 12, 345000, tzinfo=UTC)
PARTNER = "acme"
MONTH = month_of(RECEIVED_AT)


def sanitized_row(
    batch_id: str, received_at: datetime = RECEIVED_AT, **overrides: Any
) -> dict[str, Any]:
    """One SANITIZED row: an ok inference event that occurred a minute before receipt."""
    row: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "schema_version": "1.0",
        "kind": "inference",
        "occurred_at": received_at - timedelta(minutes=1),
        "received_at": received_at,
        "batch_id": batch_id,
        "client_id": "edge-gateway",
        "partner": PARTNER,
        "model_id": "acme/titan-large",
        "model_version": "2026-10-01",
        "region": "eu-west-1",
        "latency_ms": 812.5,
        "ttft_ms": 120.0,
        "input_tokens": 512,
        "output_tokens": 128,
        "retries": 0,
        "cache_hit": False,
        "status": "ok",
        "http_status": 200,
        "error_code": None,
        "error_message": None,
        "finish_reason": "stop",
        "delivery_channel": None,
        "delivery_attempts": None,
        "delivery_delivered": None,
        "delivery_bytes": None,
        "client_sdk": "ryuzen-python",
        "client_sdk_version": "1.4.2",
        "attributes": [
            {"key": "stream", "value": "true", "type": "bool"},
            {"key": "tier", "value": "gold", "type": "string"},
        ],
    }
    unknown = set(overrides) - set(row)
    assert not unknown, f"not SANITIZED columns: {unknown}"
    row.update(overrides)
    return row


def sanitized_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows in the SANITIZED schema (never inferred)."""
    return pl.DataFrame(rows, schema=SANITIZED_SCHEMA)


def to_parquet(frame: pl.DataFrame) -> bytes:
    """Parquet bytes as sanitize writes them (zstd, statistics)."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


def sanitized_batch(
    count: int, batch_id: str | None = None, received_at: datetime = RECEIVED_AT
) -> tuple[str, pl.DataFrame]:
    """A batch id and ``count`` rows of it."""
    batch_id = batch_id or new_ulid(received_at)
    return batch_id, sanitized_frame([sanitized_row(batch_id, received_at) for _ in range(count)])
