"""One month's events, deduplicated on ``event_id`` across every batch, in bounded memory.

A month can be any size, so neither the events nor even the set of their ids may be held
in memory at once. The approach is external hash partitioning of the *keys only*, then
one streaming pass over the wide rows:

1. **Number the rows.** ANALYTICS files are taken in key order (day, then batch id); row
   ``g`` of the month is row ``r`` of its file plus the rows of every file before it.
2. **Partition the keys.** Each file's narrow key rows — ``event_id``, ``received_at``,
   ``g``: about 70 bytes a row — are buffered and, every ``flush_rows`` rows, split by a
   hash of ``event_id`` into ``N`` buckets and spilled to local Parquet. ``N`` comes from
   the month's size in bytes, so a bucket holds about ``bucket_rows`` keys; a bucket that
   still comes out larger is split again, by a second hash, when it is read.
3. **Find the duplicates.** One bucket at a time, the ids seen more than once are sorted
   by (``event_id``, ``received_at``, ``g``): the first row of each id is kept, every other
   row is a *loser*. The copy received first is kept (ties: the earlier batch key, then the
   earlier row), so a rebuild keeps the same copy. Only the losers' row numbers (8 bytes a
   duplicate) outlive their bucket.
4. **Write the days.** Each receipt day's files are scanned by polars' streaming engine
   with the same numbering (``row_index_offset``), losers filtered out, every column cast
   onto the contract schema, and sunk to ``day=DD/part-NNNNN.parquet`` (zstd). Its memory
   is the streaming engine's, whatever the day's size; a day with more than ``part_rows``
   rows is cut into several parts at file boundaries.

Each written part's row count is checked against what the numbering predicts, so a
numbering that drifted between steps 1 and 4 fails the build instead of dropping events.
The wide columns are read once (step 4) and written once; local disk holds the month's
ANALYTICS copy, the spilled keys and the output parts. Row numbers are polars row
indexes, so a month holds at most 2**32 - 1 rows (polars' default index type).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ryuzen_bundle.analytics_frame import (
    column_expr,
    contract_columns,
    schema_fingerprint,
)
from ryuzen_bundle.month_objects import AnalyticsObject

_BUCKET_SEED = 0x5EED_0001
_SPLIT_SEED = 0x5EED_0002
# A lower bound on the compressed bytes of one ANALYTICS row (the event id alone is 16
# random bytes): it over-estimates the rows a month holds, so buckets err small.
_MIN_BYTES_PER_ROW = 20
_MAX_BUCKETS = 4096


class DedupConsistencyError(RuntimeError):
    """A written part does not hold the rows the numbering says it must."""


@dataclass(frozen=True)
class DedupTuning:
    """Memory knobs. The defaults keep the builder well under 300 MB of RSS."""

    bucket_rows: int = 250_000  # keys in memory while a bucket's duplicates are found
    flush_rows: int = 200_000  # keys buffered before they are spilled to buckets
    slice_rows: int = 100_000  # keys read by one collect
    chunk_bytes: int = 4 << 20  # ANALYTICS bytes whose keys one scan reads
    part_rows: int = 4_000_000  # rows of one output part (cut at file boundaries)
    row_group_rows: int = 65_536  # rows of one Parquet row group in the output


@dataclass(frozen=True)
class EventPart:
    """One written Parquet part of ``data/events``."""

    day: int
    name: str  # the path inside the ZIP
    path: Path
    rows: int


@dataclass(frozen=True)
class _LocalFile:
    item: AnalyticsObject
    path: Path
    offset: int  # ``g`` of its first row
    rows: int
    schema: pl.Schema


@dataclass
class MonthEvents:
    """The deduplicated month: its parts, and how many rows went in and were removed."""

    parts: list[EventPart] = field(default_factory=list)
    rows_in: int = 0
    duplicates_removed: int = 0

    @property
    def events(self) -> int:
        """Events in the bundle (after deduplication)."""
        return self.rows_in - self.duplicates_removed


def bucket_count(total_bytes: int, tuning: DedupTuning) -> int:
    """How many key buckets a month of ``total_bytes`` of ANALYTICS Parquet needs."""
    estimated_rows = total_bytes // _MIN_BYTES_PER_ROW
    return max(1, min(_MAX_BUCKETS, math.ceil(estimated_rows / tuning.bucket_rows)))


class _KeySpill:
    """Buffers key rows and spills them, bucketed by a hash of ``event_id``, to disk."""

    def __init__(self, directory: Path, buckets: int, flush_rows: int) -> None:
        self.directory = directory
        self.buckets = buckets
        self.flush_rows = flush_rows
        self.rows_per_bucket = [0] * buckets
        self._buffer: list[pl.DataFrame] = []
        self._buffered = 0
        self._flushes = 0

    def add(self, keys: pl.DataFrame) -> None:
        self._buffer.append(keys)
        self._buffered += keys.height
        if self._buffered >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        frame = pl.concat(self._buffer, rechunk=False).with_columns(
            (pl.col("event_id").hash(_BUCKET_SEED) % self.buckets).cast(pl.UInt32).alias("b")
        )
        self._buffer, self._buffered = [], 0
        for (bucket,), part in frame.partition_by("b", as_dict=True).items():
            index = int(bucket)
            target = self.directory / f"b{index:05d}" / f"{self._flushes:06d}.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            # lz4 and no statistics: these files are read once, a few seconds later.
            part.drop("b").write_parquet(target, compression="lz4", statistics=False)
            self.rows_per_bucket[index] += part.height
        self._flushes += 1

    def bucket_files(self, bucket: int) -> list[Path]:
        return sorted((self.directory / f"b{bucket:05d}").glob("*.parquet"))


def _spill_chunk(
    chunk: list[tuple[AnalyticsObject, Path, pl.Schema]],
    offset: int,
    spill: _KeySpill,
    tuning: DedupTuning,
) -> list[_LocalFile]:
    """Number and spill the keys of consecutive same-schema files: one scan, sliced."""
    paths = [str(path) for _, path, _ in chunk]
    schema = chunk[0][2]
    scan = pl.scan_parquet(
        paths,
        hive_partitioning=False,
        include_file_paths="__file",
        row_index_name="g",
        row_index_offset=offset,
    ).select(
        column_expr("event_id", schema["event_id"]),
        column_expr("received_at", schema["received_at"]).dt.epoch("us").alias("received_us"),
        pl.col("g").cast(pl.UInt64),
        # Which file each row came from, as a small integer: the per-file row counts
        # that step 4 needs to cut days into parts at file boundaries.
        pl.col("__file").cast(pl.Enum(paths)).to_physical().alias("file"),
    )
    rows_per_file = [0] * len(paths)
    start = 0
    while True:
        keys = scan.slice(start, tuning.slice_rows).collect()
        if keys.get_column("event_id").null_count():
            raise ValueError(f"{chunk[0][0].key[:160]}...: a row has no event_id")
        for index, count in keys.get_column("file").value_counts().iter_rows():
            rows_per_file[int(index)] += int(count)
        if keys.height:
            spill.add(keys.drop("file"))
        start += keys.height
        if keys.height < tuning.slice_rows:
            break
    files = []
    for (item, path, file_schema), rows in zip(chunk, rows_per_file, strict=True):
        files.append(_LocalFile(item, path, offset, rows, file_schema))
        offset += rows
    return files


def _losers(keys: pl.DataFrame) -> pl.Series:
    """Row numbers of every copy of an id except the first received."""
    duplicated = keys.filter(pl.col("event_id").is_duplicated())
    if duplicated.is_empty():
        return pl.Series("g", [], dtype=pl.UInt64)
    ordered = duplicated.sort(["event_id", "received_us", "g"], nulls_last=True)
    return ordered.filter(pl.col("event_id") == pl.col("event_id").shift(1)).get_column("g")


def _bucket_losers(spill: _KeySpill, bucket: int, tuning: DedupTuning) -> list[pl.Series]:
    files = spill.bucket_files(bucket)
    rows = spill.rows_per_bucket[bucket]
    if not files:
        return []
    splits = max(1, math.ceil(rows / tuning.bucket_rows))
    if splits == 1:
        return [_losers(pl.read_parquet(files))]
    # More keys than one bucket should hold (a skewed month): split it again, by an
    # independent hash, reading the bucket's spill once per split.
    scan = pl.scan_parquet(files)
    return [
        _losers(scan.filter(pl.col("event_id").hash(_SPLIT_SEED) % splits == index).collect())
        for index in range(splits)
    ]


def _parts_of_day(files: list[_LocalFile], part_rows: int) -> list[list[_LocalFile]]:
    parts: list[list[_LocalFile]] = [[]]
    rows = 0
    for local in files:
        if parts[-1] and rows + local.rows > part_rows:
            parts.append([])
            rows = 0
        parts[-1].append(local)
        rows += local.rows
    return [part for part in parts if part]


def _runs(files: list[_LocalFile]) -> list[list[_LocalFile]]:
    """Consecutive files sharing one schema: each run is one multi-file scan."""
    runs: list[list[_LocalFile]] = []
    for local in files:
        if runs and runs[-1][-1].schema is local.schema:  # interned: one object per schema
            runs[-1].append(local)
        else:
            runs.append([local])
    return runs


def _losers_between(losers: pl.Series, start: int, end: int) -> pl.Series:
    low = int(losers.search_sorted(start, side="left"))
    high = int(losers.search_sorted(end, side="left"))
    return losers.slice(low, high - low)


def _write_part(
    files: list[_LocalFile], losers: pl.Series, target: Path, row_group_rows: int
) -> int:
    """Sink one part (its files minus losers, on the contract schema); return rows written."""
    scans = []
    removed = 0
    for run in _runs(files):
        first = run[0]
        end = run[-1].offset + run[-1].rows
        columns = contract_columns(first.schema, where=first.item.key)
        dropped = _losers_between(losers, first.offset, end)
        removed += dropped.len()
        paths = [local.path for local in run]
        if dropped.is_empty():
            scans.append(pl.scan_parquet(paths, hive_partitioning=False).select(columns))
        else:
            scans.append(
                pl.scan_parquet(
                    paths,
                    hive_partitioning=False,
                    row_index_name="__g",
                    row_index_offset=first.offset,
                )
                .filter(~pl.col("__g").is_in(dropped.implode()))
                .select(columns)
            )
    frame = scans[0] if len(scans) == 1 else pl.concat(scans, how="vertical")
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.sink_parquet(target, compression="zstd", statistics=True, row_group_size=row_group_rows)
    expected = sum(local.rows for local in files) - removed
    written = int(pl.scan_parquet(target).select(pl.len()).collect().item())
    if written != expected:
        raise DedupConsistencyError(f"{target.name}: wrote {written} rows, expected {expected}")
    return written


def deduplicate_month(
    downloads: Iterable[tuple[AnalyticsObject, Path]],
    total_bytes: int,
    work_dir: Path,
    output_dir: Path,
    tuning: DedupTuning | None = None,
) -> MonthEvents:
    """Deduplicate the month's files (given in key order) into ``output_dir/day=DD/``.

    Returns the parts written, each named by its path inside the bundle ZIP
    (``data/events/day=DD/part-NNNNN.parquet``).
    """
    tuning = tuning or DedupTuning()
    spill = _KeySpill(work_dir / "keys", bucket_count(total_bytes, tuning), tuning.flush_rows)
    files: list[_LocalFile] = []
    chunk: list[tuple[AnalyticsObject, Path, pl.Schema]] = []
    chunk_bytes = 0
    offset = 0
    # One schema object per distinct schema: a month is thousands of files that share one.
    schemas: dict[tuple[tuple[str, str], ...], pl.Schema] = {}
    for item, path in downloads:
        found = pl.scan_parquet(path, hive_partitioning=False).collect_schema()
        fingerprint = schema_fingerprint(found)
        if fingerprint not in schemas:
            contract_columns(found, where=item.key)  # every contract column, before any work
            schemas[fingerprint] = found
        schema = schemas[fingerprint]
        if chunk and (chunk_bytes + item.size > tuning.chunk_bytes or schema is not chunk[0][2]):
            files += _spill_chunk(chunk, offset, spill, tuning)
            offset = files[-1].offset + files[-1].rows
            chunk, chunk_bytes = [], 0
        chunk.append((item, path, schema))
        chunk_bytes += item.size
    if chunk:
        files += _spill_chunk(chunk, offset, spill, tuning)
        offset = files[-1].offset + files[-1].rows
    spill.flush()

    loser_chunks = [
        chunk
        for bucket in range(spill.buckets)
        for chunk in _bucket_losers(spill, bucket, tuning)
        if chunk.len()
    ]
    losers = pl.concat(loser_chunks).sort() if loser_chunks else pl.Series("g", [], dtype=pl.UInt64)

    result = MonthEvents(rows_in=offset, duplicates_removed=losers.len())
    by_day: dict[int, list[_LocalFile]] = {}
    for local in files:
        by_day.setdefault(local.item.day, []).append(local)
    for day in sorted(by_day):
        for index, part in enumerate(_parts_of_day(by_day[day], tuning.part_rows)):
            name = f"data/events/day={day:02d}/part-{index:05d}.parquet"
            target = output_dir / f"day={day:02d}" / f"part-{index:05d}.parquet"
            rows = _write_part(part, losers, target, tuning.row_group_rows)
            if rows:
                result.parts.append(EventPart(day, name, target, rows))
            else:
                target.unlink()  # every row of the part was a later copy of another
    return result
