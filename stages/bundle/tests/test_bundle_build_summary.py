"""The daily summary, checked figure by figure against a direct computation in Python."""

from __future__ import annotations

import io
import math
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from bundle_build_stack import BundleStack
from bundle_build_support import batch, frame, percentile, row
from ryuzen_bundle.daily_summary import ERROR_STATUSES, SUMMARY_SCHEMA, summarize

START = datetime(2026, 10, 1, tzinfo=UTC)


def direct_summary(rows: list[dict[str, Any]]) -> dict[tuple[date, str], dict[str, Any]]:
    """Every summary figure per (receipt day, model), computed without polars."""
    groups: dict[tuple[date, str], list[dict[str, Any]]] = defaultdict(list)
    for item in rows:
        groups[(item["received_at"].date(), item["model_id"])].append(item)
    expected = {}
    for key, items in groups.items():
        n = len(items)

        def values(column: str, items: list[dict[str, Any]] = items) -> list[float]:
            return [item[column] for item in items if item[column] is not None]

        figures: dict[str, Any] = {
            "events": n,
            "error_rate": sum(item["status"] != "ok" for item in items) / n,
            "latency_ms_p50": percentile(values("latency_ms"), 0.50),
            "latency_ms_p90": percentile(values("latency_ms"), 0.90),
            "latency_ms_p99": percentile(values("latency_ms"), 0.99),
            "ttft_ms_p50": percentile(values("ttft_ms"), 0.50),
            "ttft_ms_p99": percentile(values("ttft_ms"), 0.99),
            "input_tokens_sum": sum(values("input_tokens")),
            "output_tokens_sum": sum(values("output_tokens")),
            "tokens_per_second_p50": percentile(values("tokens_per_second"), 0.50),
        }
        for status in ERROR_STATUSES:
            figures[f"status_rate_{status}"] = sum(item["status"] == status for item in items) / n
        expected[key] = figures
    return expected


def assert_matches(summary: pl.DataFrame, expected: dict[tuple[date, str], dict[str, Any]]) -> None:
    assert summary.schema == SUMMARY_SCHEMA
    assert summary.height == len(expected)
    for got in summary.iter_rows(named=True):
        want = expected[(got["day"], got["model_id"])]
        for column, value in want.items():
            if value is None:
                assert got[column] is None, column
            elif isinstance(value, float):
                assert math.isclose(got[column], value, rel_tol=1e-12, abs_tol=1e-9), column
            else:
                assert got[column] == value, column


def mixed_rows(seed: int) -> list[dict[str, Any]]:
    """Three days, three models, every status, some null metrics."""
    rng = random.Random(seed)
    rows = []
    for day in (0, 1, 5):
        received = START + timedelta(days=day, hours=rng.randint(0, 23))
        batch_id = f"01J{day:023d}"
        for _ in range(rng.randint(20, 60)):
            item = row(
                received_at=received,
                batch_id=batch_id,
                model_id=rng.choice(["acme/a", "acme/b", "acme/c"]),
                rng=rng,
            )
            if rng.random() < 0.1:
                item["ttft_ms"] = None
                item["tokens_per_second"] = None
            if rng.random() < 0.05:
                item["latency_ms"] = None
            rows.append(item)
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_summary_figures_match_a_direct_computation(tmp_path: Path, seed: int) -> None:
    rows = mixed_rows(seed)
    data = frame(rows)
    days = []
    dated = data.with_columns(pl.col("received_at").dt.date().alias("d"))
    for day, part in dated.group_by("d"):
        path = tmp_path / f"{day[0]}.parquet"
        part.drop("d").write_parquet(path)
        days.append((day[0], [path]))
    figures = summarize(sorted(days))
    assert_matches(figures.summary, direct_summary(rows))
    assert figures.events == len(rows)
    assert figures.latest_received_at == max(item["received_at"] for item in rows)
    assert figures.day_totals.get_column("events").to_list() == [
        sum(1 for item in rows if item["received_at"].date() == day)
        for day in sorted({item["received_at"].date() for item in rows})
    ]


def test_all_null_metrics_give_null_percentiles(tmp_path: Path) -> None:
    received = START + timedelta(days=3)
    rows = [
        row(
            received_at=received,
            batch_id="01J0",
            latency_ms=None,
            ttft_ms=None,
            tokens_per_second=None,
            status="error",
        )
        for _ in range(4)
    ]
    path = tmp_path / "x.parquet"
    frame(rows).write_parquet(path)
    figures = summarize([(received.date(), [path])])
    (got,) = figures.summary.iter_rows(named=True)
    assert got["latency_ms_p50"] is None and got["ttft_ms_p99"] is None
    assert got["error_rate"] == 1.0 and got["status_rate_error"] == 1.0


def test_bundle_summary_is_computed_on_the_deduplicated_events(stack: BundleStack) -> None:
    # Given two batches where the second re-sends ten events of the first (with other
    # metrics, as a retry measured again would have)
    first = batch(60, START + timedelta(days=1, hours=2), seed=11)
    retry = batch(
        25,
        START + timedelta(days=2, hours=2),
        seed=12,
        event_ids=first.get_column("event_id").to_list()[:10]
        + [f"40000000-0000-4000-8000-{i:012d}" for i in range(15)],
    )
    stack.put_batch(first)
    stack.put_batch(retry)

    # When the bundle is built
    stack.build()

    # Then its summary is the direct computation over the events the bundle holds
    archive = stack.bundle_zip()
    events = pl.concat(
        [
            pl.read_parquet(io.BytesIO(archive.read(name)))
            for name in archive.namelist()
            if name.startswith("data/events/")
        ]
    )
    assert events.height == 75
    summary = pl.read_parquet(io.BytesIO(archive.read("data/daily_summary.parquet")))
    assert_matches(summary, direct_summary(events.to_dicts()))
    # and the retried events count on the day they were first received
    assert summary.filter(pl.col("day") == date(2026, 10, 3)).get_column("events").sum() == 15
