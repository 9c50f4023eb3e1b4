"""The daily summary: per model and receipt day, the figures a partner looks at first.

Computed from the deduplicated parts one day at a time: counts, shares and sums by
polars' streaming engine, then each percentile metric alone — in memory (about 12 bytes
an event) for a day of up to ``IN_MEMORY_ROWS`` events, and past that by histogram
narrowing (``exact_quantiles``), which reads only the values near each wanted rank. So
memory is bounded whatever the month's size and however it falls on its days.
Percentiles are exact, linearly interpolated between closest ranks (numpy's default),
ignoring nulls; rates are shares of the day's events for that model. The same pass
yields the month's late-event count and its watermark (the latest receipt time included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl

from ryuzen_bundle.exact_quantiles import IN_MEMORY_ROWS, grouped_quantiles

# The statuses of the contract; "error rate by status" is one share per non-ok status.
STATUSES = ("ok", "error", "timeout", "cancelled", "rate_limited", "filtered")
ERROR_STATUSES = STATUSES[1:]
SUMMARY_SCHEMA = pl.Schema(
    {
        "day": pl.Date(),
        "model_id": pl.String(),
        "events": pl.Int64(),
        "error_rate": pl.Float64(),
        **{f"status_rate_{status}": pl.Float64() for status in ERROR_STATUSES},
        "latency_ms_p50": pl.Float64(),
        "latency_ms_p90": pl.Float64(),
        "latency_ms_p99": pl.Float64(),
        "ttft_ms_p50": pl.Float64(),
        "ttft_ms_p99": pl.Float64(),
        "input_tokens_sum": pl.Int64(),
        "output_tokens_sum": pl.Int64(),
        "tokens_per_second_p50": pl.Float64(),
    }
)
SUMMARY_COLUMNS_DOC: tuple[tuple[str, str], ...] = (
    ("day", "receipt day (UTC), as in data/events/day=DD"),
    ("model_id", "model id"),
    ("events", "events of this model received that day"),
    ("error_rate", "share of those events whose status is not 'ok'"),
    *(
        (f"status_rate_{status}", f"share of those events whose status is '{status}'")
        for status in ERROR_STATUSES
    ),
    ("latency_ms_p50 / p90 / p99", "latency percentiles, milliseconds"),
    ("ttft_ms_p50 / p99", "time-to-first-token percentiles, milliseconds"),
    ("input_tokens_sum / output_tokens_sum", "token counts summed"),
    ("tokens_per_second_p50", "median output tokens per generation second"),
)


_QUANTILES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("latency_ms", (50, 90, 99)),
    ("ttft_ms", (50, 99)),
    ("tokens_per_second", (50,)),
)


def _counted() -> list[pl.Expr]:
    """Figures the streaming engine aggregates in constant memory (counts, shares, sums)."""
    ok = (pl.col("status") == "ok").fill_null(False)
    return [
        pl.len().cast(pl.Int64).alias("events"),
        ((~ok).sum() / pl.len()).alias("error_rate"),
        *(
            ((pl.col("status") == status).fill_null(False).sum() / pl.len()).alias(
                f"status_rate_{status}"
            )
            for status in ERROR_STATUSES
        ),
        pl.col("input_tokens").sum().cast(pl.Int64).alias("input_tokens_sum"),
        pl.col("output_tokens").sum().cast(pl.Int64).alias("output_tokens_sum"),
    ]


def _percentiles(column: str, quantiles: tuple[int, ...]) -> list[pl.Expr]:
    return [
        pl.col(column).quantile(q / 100, interpolation="linear").alias(f"{column}_p{q}")
        for q in quantiles
    ]


def _in_memory_percentiles(
    scan: pl.LazyFrame, column: str, quantiles: tuple[int, ...]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per model and overall, from the metric read alone (model as a categorical code
    and the value: ~12 bytes an event)."""
    values = scan.select(pl.col("model_id").cast(pl.Categorical), column).collect()
    by_model = (
        values.group_by("model_id")
        .agg(_percentiles(column, quantiles))
        .with_columns(pl.col("model_id").cast(pl.String))
    )
    return by_model, values.select(_percentiles(column, quantiles))


def _narrowed_percentiles(
    scan: pl.LazyFrame, column: str, quantiles: tuple[int, ...]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The same figures by histogram narrowing, never holding the day's values."""
    names = [f"{column}_p{q}" for q in quantiles]
    per_model, overall = grouped_quantiles(scan, "model_id", column, [q / 100 for q in quantiles])
    by_model = pl.DataFrame(
        [[model, *figures] for model, figures in per_model.items()],
        schema={"model_id": pl.String(), **{name: pl.Float64() for name in names}},
        orient="row",
    )
    return by_model, pl.DataFrame(
        [overall], schema=dict.fromkeys(names, pl.Float64()), orient="row"
    )


def _summarize_day(
    day: date, paths: Sequence[Path]
) -> tuple[pl.DataFrame, pl.DataFrame, int, datetime | None]:
    """One day: per model, every model together, late events and the latest receipt.

    Exact percentiles need the values, so each metric is read alone, one at a time (or,
    on a day past ``IN_MEMORY_ROWS``, narrowed to the values near each rank); the rest is
    aggregated by the streaming engine.
    """
    scan = pl.scan_parquet(list(paths))
    per_model = scan.group_by("model_id").agg(_counted()).collect(engine="streaming")
    total = scan.select(
        *_counted(),
        pl.col("late").fill_null(False).sum().alias("late"),
        pl.col("received_at").max().alias("latest"),
    ).collect(engine="streaming")
    large = int(total.item(0, "events")) > IN_MEMORY_ROWS
    for column, quantiles in _QUANTILES:
        figures = _narrowed_percentiles if large else _in_memory_percentiles
        by_model, overall = figures(scan, column, quantiles)
        per_model = per_model.join(by_model, on="model_id", how="left")
        total = total.hstack(overall)
    late = int(total.item(0, "late"))
    latest = total.item(0, "latest")
    per_model = per_model.with_columns(pl.lit(day).alias("day"))
    total = total.drop("late", "latest").with_columns(pl.lit(day).alias("day"))
    return per_model, total, late, latest


@dataclass(frozen=True)
class MonthFigures:
    """The daily summary and the month-wide counts that go into the manifest and report."""

    summary: pl.DataFrame  # SUMMARY_SCHEMA, one row per (day, model)
    day_totals: pl.DataFrame  # the same figures per day, every model together (report only)
    events: int
    late_events: int
    latest_received_at: datetime | None


def summarize(days: Sequence[tuple[date, Sequence[Path]]]) -> MonthFigures:
    """Summarize each receipt day from its Parquet parts (days without parts are skipped)."""
    summaries = []
    totals = []
    events = late = 0
    latest: datetime | None = None
    for day, paths in days:
        if not paths:
            continue
        per_model, total, day_late, day_latest = _summarize_day(day, paths)
        summaries.append(per_model)
        totals.append(total)
        events += int(total.item(0, "events"))
        late += day_late
        if day_latest is not None and (latest is None or day_latest > latest):
            latest = day_latest
    summary = (
        pl.concat(summaries).select(SUMMARY_SCHEMA.names()).cast(SUMMARY_SCHEMA)
        if summaries
        else pl.DataFrame(schema=SUMMARY_SCHEMA)
    ).sort("day", "model_id")
    total_columns = [name for name in SUMMARY_SCHEMA.names() if name != "model_id"]
    day_totals = (
        pl.concat(totals).select(total_columns)
        if totals
        else pl.DataFrame(schema={name: SUMMARY_SCHEMA[name] for name in total_columns})
    ).sort("day")
    return MonthFigures(summary, day_totals, events, late, latest)


def write_summary(summary: pl.DataFrame, path: Path) -> int:
    """Write the summary as zstd Parquet; return its row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    summary.write_parquet(path, compression="zstd", statistics=True)
    return summary.height
