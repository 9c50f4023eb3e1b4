"""SANITIZED frame -> ANALYTICS frame: pure polars, no I/O.

The SANITIZED columns are already flat (sanitize flattens the event), so normalization is:
drop what the analytics contract leaves out (``client_id``: partners never learn which of
our customers sent an event; ``partner`` and ``schema_version``: the partner is a hive
partition and the schema version is the table's), dedup on ``event_id``, derive
``occurred_date``, ``tokens_per_second`` and ``late``, and cast to the contract's types
in the contract's order.
"""

from __future__ import annotations

import polars as pl

from ryuzen_analytics.frame_schemas import ANALYTICS_SCHEMA, SANITIZED_SCHEMA, require_schema


def generation_seconds() -> pl.Expr:
    """Seconds spent generating after the first token: ``(latency - coalesce(ttft, 0)) / 1000``."""
    return (pl.col("latency_ms") - pl.col("ttft_ms").fill_null(0.0)) / 1000.0


def tokens_per_second() -> pl.Expr:
    """``output_tokens / generation seconds``; null when either is null or seconds <= 0.

    A non-positive denominator (ttft >= latency, or a zero latency) has no meaningful rate:
    null rather than infinity or a negative rate, so Athena averages stay honest.
    """
    seconds = generation_seconds()
    return (
        pl.when(seconds > 0)
        .then(pl.col("output_tokens").cast(pl.Float64) / seconds)
        .otherwise(None)
    )


def late() -> pl.Expr:
    """True when the event occurred before the first instant (UTC) of its receipt month."""
    return pl.col("occurred_at") < pl.col("received_at").dt.truncate("1mo")


def normalize(sanitized: pl.DataFrame) -> pl.DataFrame:
    """The ANALYTICS rows of one SANITIZED frame: deduplicated, derived, in contract order.

    Dedup keeps the first row of each ``event_id`` (the order sanitize wrote them, which is
    the order the client sent them). The input must have the exact SANITIZED schema.
    """
    require_schema(sanitized.schema, SANITIZED_SCHEMA, "SANITIZED")
    deduplicated = sanitized.unique(subset="event_id", keep="first", maintain_order=True)
    derived = deduplicated.with_columns(
        # occurred_at is UTC-typed, so its date is the UTC date.
        occurred_date=pl.col("occurred_at").dt.date(),
        tokens_per_second=tokens_per_second(),
        late=late(),
    )
    return derived.select(
        pl.col(name).cast(dtype, strict=True) for name, dtype in ANALYTICS_SCHEMA.items()
    )
