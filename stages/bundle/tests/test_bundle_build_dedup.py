"""Deduplication on event_id across every batch of the month, in bounded memory."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from bundle_build_stack import BundleStack
from bundle_build_support import batch, batch_id_at, frame, parquet_bytes, row
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ryuzen_bundle.analytics_frame import ANALYTICS_SCHEMA, AnalyticsSchemaError
from ryuzen_bundle.month_events import DedupTuning, bucket_count, deduplicate_month
from ryuzen_bundle.month_objects import AnalyticsObject

START = datetime(2026, 10, 1, tzinfo=UTC)
# Every knob at its smallest: many buckets, oversized buckets split again, many spills,
# many slices, and days cut into several parts.
TINY = DedupTuning(
    bucket_rows=7, flush_rows=11, slice_rows=5, chunk_bytes=1, part_rows=20, row_group_rows=8
)


def write_files(directory: Path, batches: list[pl.DataFrame]) -> list[tuple[AnalyticsObject, Path]]:
    """Local ANALYTICS files, one per (batch, receipt day), in key order."""
    files = []
    for data in batches:
        batch_id = data.item(0, "batch_id")
        for day in sorted(data.get_column("received_at").dt.day().unique().to_list()):
            part = data.filter(pl.col("received_at").dt.day() == day)
            path = directory / f"day={day:02d}" / f"{batch_id}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(parquet_bytes(part))
            key = f"analytics/events/partner=acme/month=2026-10/day={day:02d}/{batch_id}.parquet"
            files.append((AnalyticsObject(key, day, batch_id, path.stat().st_size), path))
    return sorted(files, key=lambda item: item[0].key)


def run(tmp_path: Path, batches: list[pl.DataFrame], tuning: DedupTuning | None = None):
    files = write_files(tmp_path / "in", batches)
    result = deduplicate_month(
        iter(files), sum(item.size for item, _ in files), tmp_path / "w", tmp_path / "out", tuning
    )
    written = (
        pl.read_parquet([part.path for part in result.parts])
        if result.parts
        else pl.DataFrame(schema=ANALYTICS_SCHEMA)
    )
    return result, written


def expected_survivors(batches: list[pl.DataFrame]) -> set[tuple[str, str]]:
    """(event_id, batch_id) kept: per id the copy received first, then the earlier batch key,
    then the earlier row — computed directly."""
    best: dict[str, tuple[datetime, str, int, str]] = {}
    for data in batches:
        for index, item in enumerate(data.iter_rows(named=True)):
            rank = (item["received_at"], item["batch_id"], index, item["batch_id"])
            if item["event_id"] not in best or rank < best[item["event_id"]]:
                best[item["event_id"]] = rank
    return {(event_id, rank[3]) for event_id, rank in best.items()}


def test_duplicates_across_batches_and_days_keep_the_first_receipt(tmp_path: Path) -> None:
    # Given a batch on day 3, and a retry of 10 of its events on day 12 in another batch
    first = batch(50, START + timedelta(days=2), seed=1)
    retried = first.head(10).get_column("event_id").to_list()
    second = batch(
        30,
        START + timedelta(days=11),
        seed=2,
        event_ids=retried + [f"10000000-0000-4000-8000-{i:012d}" for i in range(20)],
    )

    # When the month is deduplicated
    result, written = run(tmp_path, [second, first])

    # Then every id appears once, the first copy is kept, and the count says 10 removed
    assert result.rows_in == 80 and result.duplicates_removed == 10 and result.events == 70
    assert written.get_column("event_id").is_unique().all()
    kept = written.filter(pl.col("event_id").is_in(retried))
    assert kept.get_column("batch_id").unique().to_list() == [first.item(0, "batch_id")]
    assert [(p.day, p.rows) for p in result.parts] == [(3, 50), (12, 20)]
    assert [p.name for p in result.parts] == [
        "data/events/day=03/part-00000.parquet",
        "data/events/day=12/part-00000.parquet",
    ]


def test_duplicates_inside_one_batch(tmp_path: Path) -> None:
    data = batch(6, START + timedelta(days=4), seed=3)
    doubled = pl.concat([data, data.head(2), data.head(1)])
    result, written = run(tmp_path, [doubled])
    assert result.duplicates_removed == 3 and written.height == 6
    assert written.get_column("event_id").is_unique().all()


def test_a_day_of_only_later_copies_leaves_no_empty_part(tmp_path: Path) -> None:
    first = batch(5, START + timedelta(days=1), seed=4)
    again = first.with_columns(
        pl.lit(START + timedelta(days=6)).alias("received_at"),
        pl.lit(batch_id_at(START + timedelta(days=6))).alias("batch_id"),
    )
    result, _ = run(tmp_path, [first, again])
    assert [p.day for p in result.parts] == [2]
    assert not list((tmp_path / "out").glob("day=07/*.parquet"))


def test_the_output_is_the_contract_schema(tmp_path: Path) -> None:
    # A writer that dropped the time zone, kept a partition column and reordered columns
    data = batch(8, START + timedelta(days=1), seed=5)
    odd = data.with_columns(
        pl.col("received_at").dt.replace_time_zone(None),
        pl.col("occurred_at").dt.replace_time_zone(None),
        pl.lit("acme").alias("partner"),
    ).select(["partner", *reversed(data.columns)])
    _, written = run(tmp_path, [odd])
    assert written.schema == ANALYTICS_SCHEMA
    assert written.sort("event_id").equals(data.sort("event_id"))


def test_a_file_without_a_contract_column_fails(tmp_path: Path) -> None:
    data = batch(3, START, seed=6).drop("ttft_ms")
    with pytest.raises(AnalyticsSchemaError, match="ttft_ms"):
        run(tmp_path, [data])


def test_empty_month(tmp_path: Path) -> None:
    result, written = run(tmp_path, [])
    assert result.parts == [] and result.events == 0 and written.height == 0


def test_bucket_count_grows_with_the_month() -> None:
    tuning = DedupTuning(bucket_rows=1000)
    assert bucket_count(0, tuning) == 1
    assert bucket_count(20_000, tuning) == 1
    assert bucket_count(20_020, tuning) == 2
    assert bucket_count(10**15, tuning) == 4096


@st.composite
def months(draw: st.DrawFn) -> list[pl.DataFrame]:
    """A few batches over a few days whose ids come from a small pool: many duplicates."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    pool = [f"20000000-0000-4000-8000-{i:012d}" for i in range(draw(st.integers(1, 40)))]
    batches = []
    for index in range(draw(st.integers(1, 6))):
        received = START + timedelta(
            days=draw(st.integers(0, 4)), seconds=draw(st.integers(0, 3)) + index
        )
        # Two batches may share a receipt time: the batch key then decides.
        batch_id = batch_id_at(received)
        rows = [
            row(received_at=received, batch_id=batch_id, event_id=rng.choice(pool), rng=rng)
            for _ in range(draw(st.integers(0, 25)))
        ]
        if rows:
            batches.append(frame(rows))
    return batches


@given(batches=months(), tiny=st.booleans())
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_property_same_survivors_as_a_direct_computation(
    tmp_path_factory: pytest.TempPathFactory, batches: list[pl.DataFrame], tiny: bool
) -> None:
    tmp_path = tmp_path_factory.mktemp("dedup")
    result, written = run(tmp_path, batches, TINY if tiny else None)
    survivors = set(written.select("event_id", "batch_id").iter_rows())
    assert survivors == expected_survivors(batches)
    assert written.height == len(survivors) == result.events
    assert result.rows_in == sum(data.height for data in batches)

    # each kept row is the whole row of its copy, not a mix of copies
    def encoded(data: pl.DataFrame) -> set[str]:
        return set(data.select(pl.struct(pl.all()).struct.json_encode()).to_series().to_list())

    originals = set().union(*(encoded(data) for data in batches))
    assert encoded(written) <= originals


def test_through_s3_with_tiny_buckets(stack: BundleStack) -> None:
    first = batch(30, START + timedelta(days=5), seed=7)
    second = batch(
        30,
        START + timedelta(days=6),
        seed=8,
        event_ids=first.get_column("event_id").to_list()[:15]
        + [f"30000000-0000-4000-8000-{i:012d}" for i in range(15)],
    )
    third = batch(10, START + timedelta(days=5, hours=3), seed=9)
    for data in (first, second, third):
        stack.put_batch(data)

    report = stack.build(tuning=stack.tuning(dedup=TINY))
    assert report.events == 55 and report.duplicates_removed == 15
    archive = stack.bundle_zip()
    parts = [n for n in archive.namelist() if n.startswith("data/events/")]
    # part_rows=20 cuts day 6 (two batches) into two parts, at the file boundary
    assert parts == [
        "data/events/day=06/part-00000.parquet",
        "data/events/day=06/part-00001.parquet",
        "data/events/day=07/part-00000.parquet",
    ]
    events = pl.concat([pl.read_parquet(io.BytesIO(archive.read(name))) for name in parts])
    assert events.height == 55 and events.get_column("event_id").is_unique().all()
