"""Test helpers: ANALYTICS rows in the contract schema, and zero-PII certificates.

Rows are built from Python values with an explicit schema (never inferred), so a test can
state exactly what a file holds and compute the expected figures directly.
"""

from __future__ import annotations

import io
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from ryuzen_bundle.analytics_frame import ANALYTICS_SCHEMA
from ryuzen_contracts.analytics_schema import DUPLICATES_REMOVED_KEY, SANITIZED_ROWS_KEY
from ryuzen_contracts.attestation import ZERO_PII_PREDICATE, Signer, sign, statement, subject
from ryuzen_contracts.ids import new_ulid

MONTH = "2026-10"
# A little after the month ended: builds of MONTH are allowed without overrides.
NOW = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
STATUSES = ("ok", "ok", "ok", "ok", "error", "timeout", "rate_limited", "cancelled", "filtered")


def batch_id_at(moment: datetime) -> str:
    """A ULID whose time part is ``moment`` (batch ids sort by receipt time)."""
    return new_ulid(moment)


def row(
    *,
    received_at: datetime,
    batch_id: str,
    event_id: str | None = None,
    model_id: str = "acme/titan-large",
    rng: random.Random | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """One ANALYTICS row with plausible random metrics (``overrides`` win)."""
    rng = rng or random.Random()
    latency = round(rng.lognormvariate(6.0, 0.6), 3)
    ttft = round(min(latency * rng.uniform(0.05, 0.4), latency), 3)
    output_tokens = rng.randint(0, 900)
    generation_s = (latency - ttft) / 1000
    occurred_at = received_at - timedelta(seconds=rng.uniform(0.1, 30))
    values: dict[str, Any] = {
        "event_id": event_id or str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "kind": "inference",
        "occurred_at": occurred_at,
        "occurred_date": occurred_at.date(),
        "received_at": received_at,
        "batch_id": batch_id,
        "model_id": model_id,
        "model_version": "2026-10-01",
        "region": "eu-west-1",
        "latency_ms": latency,
        "ttft_ms": ttft,
        "input_tokens": rng.randint(1, 4000),
        "output_tokens": output_tokens,
        "tokens_per_second": output_tokens / generation_s if generation_s > 0 else None,
        "retries": 0,
        "cache_hit": rng.random() < 0.1,
        "status": rng.choice(STATUSES),
        "http_status": 200,
        "error_code": None,
        "error_message": None,
        "finish_reason": "stop",
        "delivery_channel": "stream",
        "delivery_attempts": 1,
        "delivery_delivered": True,
        "delivery_bytes": rng.randint(100, 10_000),
        "client_sdk": "ryuzen-py",
        "client_sdk_version": "1.4.2",
        "late": False,
        "attributes": [{"key": "tier", "value": "pro", "type": "string"}],
    }
    values.update(overrides)
    return values


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows as a DataFrame in the contract schema."""
    return pl.DataFrame(rows, schema=ANALYTICS_SCHEMA, orient="row")


def analytics_metadata(sanitized_rows: int, duplicates_removed: int = 0) -> dict[str, str]:
    """The key-value metadata the analytics stage writes: what its batch read and dropped."""
    return {
        SANITIZED_ROWS_KEY: str(sanitized_rows),
        DUPLICATES_REMOVED_KEY: str(duplicates_removed),
    }


def parquet_bytes(data: pl.DataFrame, metadata: dict[str, str] | None = None) -> bytes:
    """zstd Parquet, as the analytics stage writes it (``metadata``: None for an object
    written before analytics recorded its counts)."""
    buffer = io.BytesIO()
    data.write_parquet(buffer, compression="zstd", metadata=metadata)
    return buffer.getvalue()


def batch(
    n: int,
    received_at: datetime,
    *,
    seed: int,
    models: tuple[str, ...] = ("acme/titan-large", "acme/swift-mini"),
    batch_id: str | None = None,
    event_ids: list[str] | None = None,
) -> pl.DataFrame:
    """``n`` rows of one ingest batch received at ``received_at``."""
    rng = random.Random(seed)
    batch_id = batch_id or batch_id_at(received_at)
    rows = []
    for index in range(n):
        rows.append(
            row(
                received_at=received_at,
                batch_id=batch_id,
                event_id=event_ids[index] if event_ids else None,
                model_id=rng.choice(models),
                rng=rng,
            )
        )
    return frame(rows)


def certificate(
    signer: Signer, partner: str, month: str, batch_id: str, quarantined: int, sanitized: int
) -> bytes:
    """A signed zero-PII certificate shaped like the sanitize stage's."""
    predicate = {
        "partner": partner,
        "month": month,
        "batch_id": batch_id,
        "counts": {
            "received": sanitized + quarantined,
            "sanitized": sanitized,
            "quarantined": quarantined,
            "quarantined_by_reason": {"unknown_field": quarantined} if quarantined else {},
            "redactions_by_rule": {},
        },
        "second_scan": {"engine": "python-re", "findings": 0, "passed": True},
    }
    subjects = [
        subject(f"sanitized/partner={partner}/month={month}/{batch_id}.parquet", b"x"),
    ]
    return sign(statement(subjects, ZERO_PII_PREDICATE, predicate), signer).to_json_bytes()


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolation percentile (numpy's default), computed directly."""
    data = sorted(values)
    if not data:
        return None
    position = (len(data) - 1) * q
    low = int(position)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (position - low)
