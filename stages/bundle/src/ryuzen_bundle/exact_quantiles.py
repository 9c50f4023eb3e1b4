"""Exact percentiles of one metric in bounded memory, for days too large to hold at once.

polars' ``quantile`` needs every value of a group in memory. For a day past
``IN_MEMORY_ROWS`` the daily summary asks this module instead: a histogram pass over the
day's Parquet parts (polars' streaming engine, constant memory) finds which of
``BUCKETS`` equal-width buckets holds the wanted rank, and only that bucket's values are
then read and sorted. A bucket still too large (values bunched together) is split again
over its own range; one whose values are all equal is the answer outright.

The result is what ``pl.col(c).quantile(q, interpolation="linear")`` gives on the same
values (numpy's default): nulls are ignored; for ``n`` values sorted ascending and
``h = (n - 1) * q``, it is ``v[floor h] + (h - floor h) * (v[ceil h] - v[floor h])``, or
``v[floor h]`` when the two neighbours are equal.
Non-finite values (which analytics never writes: it nulls a rate it cannot compute) are
ordered as polars orders them: -inf, the finite values, +inf, then NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

# A day with more values than this is summarized here rather than in memory (polars'
# quantile holds the values and a sorted copy: ~30 MB for 2M float64s and their groups).
IN_MEMORY_ROWS = 2_000_000
BUCKETS = 1 << 16
# The most values read at once for one rank (2 MiB of float64).
COLLECT_AT_MOST = 1 << 18
_G, _V = "__group", "__value"


@dataclass(frozen=True)
class GroupCounts:
    """One group's values by kind, and the range of its finite ones."""

    neg_inf: int
    finite: int
    pos_inf: int
    nan: int
    low: float | None
    high: float | None

    @property
    def total(self) -> int:
        return self.neg_inf + self.finite + self.pos_inf + self.nan


def grouped_quantiles(
    frame: pl.LazyFrame,
    group: str,
    column: str,
    quantiles: Sequence[float],
    *,
    buckets: int | None = None,
    collect_at_most: int | None = None,
) -> tuple[dict[Any, list[float | None]], list[float | None]]:
    """Each ``group``'s quantiles of ``column``, and those of every group together.

    Returns ``({group value: [one value per quantile]}, [one value per quantile])``;
    a group (or the whole) without a non-null value gets None for each quantile.
    """
    pairs = frame.select(pl.col(group).alias(_G), pl.col(column).cast(pl.Float64).alias(_V))
    counts = _counts(pairs)  # every group, even one whose values are all null
    values = pairs.filter(pl.col(_V).is_not_null())
    selector = _RankSelector(values, buckets or BUCKETS, collect_at_most or COLLECT_AT_MOST)
    per_group = {
        key: [selector.quantile(key, counted, q) for q in quantiles]
        for key, counted in counts.items()
    }
    everything = _together(list(counts.values()))
    total = [selector.quantile(None, everything, q) for q in quantiles]
    return per_group, total


def _counts(values: pl.LazyFrame) -> dict[Any, GroupCounts]:
    value = pl.col(_V)
    finite = value.is_finite()
    rows = (
        values.group_by(_G)
        .agg(
            neg_inf=(value == -math.inf).sum(),
            finite=finite.sum(),
            pos_inf=(value == math.inf).sum(),
            nan=value.is_nan().sum(),
            low=value.filter(finite).min(),
            high=value.filter(finite).max(),
        )
        .collect(engine="streaming")
    )
    return {
        row[_G]: GroupCounts(
            int(row["neg_inf"]),
            int(row["finite"]),
            int(row["pos_inf"]),
            int(row["nan"]),
            row["low"],
            row["high"],
        )
        for row in rows.iter_rows(named=True)
    }


def _together(groups: list[GroupCounts]) -> GroupCounts:
    lows = [g.low for g in groups if g.low is not None]
    highs = [g.high for g in groups if g.high is not None]
    return GroupCounts(
        neg_inf=sum(g.neg_inf for g in groups),
        finite=sum(g.finite for g in groups),
        pos_inf=sum(g.pos_inf for g in groups),
        nan=sum(g.nan for g in groups),
        low=min(lows) if lows else None,
        high=max(highs) if highs else None,
    )


class _RankSelector:
    """Finds the value at a rank of one group (or of all: key None) by narrowing."""

    def __init__(self, values: pl.LazyFrame, buckets: int, collect_at_most: int) -> None:
        self.values = values
        self.buckets = buckets
        self.collect_at_most = collect_at_most
        self._found: dict[tuple[Any, int], float] = {}

    def quantile(self, key: Any, counts: GroupCounts, q: float) -> float | None:
        if counts.total == 0:
            return None
        h = (counts.total - 1) * q
        lower_rank, upper_rank = math.floor(h), math.ceil(h)
        lower = self.at_rank(key, counts, lower_rank)
        if upper_rank == lower_rank:
            return lower
        upper = self.at_rank(key, counts, upper_rank)
        if upper == lower:  # as polars: equal neighbours (even two infinities) are the answer
            return lower
        return lower + (h - lower_rank) * (upper - lower)

    def at_rank(self, key: Any, counts: GroupCounts, rank: int) -> float:
        """The ``rank``-th smallest value (0-based) in polars' order."""
        if rank < counts.neg_inf:
            return -math.inf
        rank -= counts.neg_inf
        if rank >= counts.finite:
            rank -= counts.finite
            return math.inf if rank < counts.pos_inf else math.nan
        if (key, rank) not in self._found:
            assert counts.low is not None and counts.high is not None
            self._found[(key, rank)] = self._finite_at(
                key, rank, counts.low, counts.high, counts.finite
            )
        return self._found[(key, rank)]

    def _finite_at(self, key: Any, rank: int, low: float, high: float, count: int) -> float:
        """The ``rank``-th smallest of the ``count`` finite values in ``[low, high]``."""
        while low < high and count > self.collect_at_most:
            low, high, below, count = self._narrow(key, rank, low, high)
            rank -= below
        if low == high:
            return low
        inside = self._inside(key, low, high).select(_V).collect(engine="streaming")
        return float(inside.get_column(_V).sort()[rank])

    def _narrow(
        self, key: Any, rank: int, low: float, high: float
    ) -> tuple[float, float, int, int]:
        """The bucket of ``[low, high]`` holding ``rank``: its value range, the number of
        values below it and its own count."""
        width = high - low
        bucket = ((pl.col(_V) - low) / width * self.buckets).floor().clip(0, self.buckets - 1)
        histogram = (
            self._inside(key, low, high)
            .group_by(bucket.cast(pl.Int64).alias("bucket"))
            .agg(count=pl.len(), low=pl.col(_V).min(), high=pl.col(_V).max())
            .collect(engine="streaming")
            .sort("bucket")
        )
        below = 0
        for row in histogram.iter_rows(named=True):
            if rank < below + row["count"]:
                return float(row["low"]), float(row["high"]), below, int(row["count"])
            below += row["count"]
        raise AssertionError(f"rank {rank} is past the {below} values of [{low}, {high}]")

    def _inside(self, key: Any, low: float, high: float) -> pl.LazyFrame:
        """The finite values of the group (every group: key None) within ``[low, high]``."""
        chosen = pl.col(_V).is_finite() & pl.col(_V).is_between(low, high)
        if key is not None:
            chosen = chosen & (pl.col(_G) == key)
        return self.values.filter(chosen)
