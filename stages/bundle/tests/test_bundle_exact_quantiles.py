"""Bounded-memory percentiles give exactly what polars' in-memory quantile gives."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from bundle_build_support import frame
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from ryuzen_bundle import daily_summary
from ryuzen_bundle.exact_quantiles import grouped_quantiles
from test_bundle_build_summary import mixed_rows

QUANTILES = (0.0, 0.01, 0.5, 0.9, 0.99, 1.0)


def polars_quantiles(values: pl.DataFrame) -> tuple[dict[str, list], list]:
    """The reference: polars' own quantile, per group and overall."""
    wanted = [pl.col("v").quantile(q, interpolation="linear").alias(str(q)) for q in QUANTILES]
    per_group = {
        row["g"]: [row[str(q)] for q in QUANTILES]
        for row in values.group_by("g").agg(wanted).iter_rows(named=True)
    }
    overall = values.select(wanted).row(0)
    return per_group, list(overall)


def same(got: float | None, want: float | None) -> bool:
    if got is None or want is None:
        return got is None and want is None
    if math.isnan(want):
        return math.isnan(got)
    return got == pytest.approx(want, rel=1e-12, abs=1e-12)


def check(values: pl.DataFrame, *, buckets: int, collect_at_most: int) -> None:
    got_groups, got_all = grouped_quantiles(
        values.lazy(), "g", "v", QUANTILES, buckets=buckets, collect_at_most=collect_at_most
    )
    want_groups, want_all = polars_quantiles(values)
    assert set(got_groups) == set(want_groups)
    for group, want in want_groups.items():
        assert all(map(same, got_groups[group], want)), (group, got_groups[group], want)
    assert all(map(same, got_all, want_all)), (got_all, want_all)


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
# Few distinct values make ties and whole buckets of equal values likely.
bunched = st.sampled_from([0.0, 1.5, 1.5000001, 2.0, 250.0, 1e6])


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.one_of(st.none(), finite, bunched)),
        min_size=0,
        max_size=120,
    ),
    buckets=st.integers(min_value=2, max_value=8),
    collect_at_most=st.integers(min_value=1, max_value=10),
)
def test_any_values_give_polars_quantiles(
    rows: list[tuple[str, float | None]], buckets: int, collect_at_most: int
) -> None:
    # Tiny buckets and collection limits force several narrowing rounds per rank.
    values = pl.DataFrame(rows, schema={"g": pl.String(), "v": pl.Float64()}, orient="row")
    check(values, buckets=buckets, collect_at_most=collect_at_most)


def test_non_finite_values_are_ordered_as_polars_orders_them() -> None:
    values = pl.DataFrame(
        {
            "g": ["a"] * 8 + ["b"] * 4,
            "v": [
                *(-math.inf, 1.0, 2.0, math.inf, math.nan, 3.0, None, 4.0),
                *(math.nan, math.nan, 5.0, -math.inf),
            ],
        }
    )
    check(values, buckets=2, collect_at_most=1)


def test_a_large_skewed_group_is_exact(tmp_path: Path) -> None:
    # A long-tailed latency and a metric of one repeated value, from Parquet on disk.
    n = 200_000
    data = pl.DataFrame({"g": ["x", "y"] * (n // 2)}).with_columns(
        v=pl.int_range(n).hash(7).cast(pl.Float64).log() ** 3,
    )
    data = data.with_columns(pl.when(pl.col("g") == "y").then(42.0).otherwise("v").alias("v"))
    path = tmp_path / "day.parquet"
    data.write_parquet(path)

    got_groups, got_all = grouped_quantiles(
        pl.scan_parquet(path), "g", "v", QUANTILES, collect_at_most=1_000
    )

    want_groups, want_all = polars_quantiles(data)
    for group, want in want_groups.items():
        assert all(map(same, got_groups[group], want)), group
    assert all(map(same, got_all, want_all))


@pytest.mark.parametrize("seed", [3, 8])
def test_a_large_day_is_summarized_exactly_as_a_small_one(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = mixed_rows(seed)
    days: list[tuple[date, list[Path]]] = []
    dated = frame(rows).with_columns(pl.col("received_at").dt.date().alias("d"))
    for (day,), part in dated.group_by("d"):
        path = tmp_path / f"{day}.parquet"
        part.drop("d").write_parquet(path)
        days.append((day, [path]))
    in_memory = daily_summary.summarize(sorted(days))

    # Every day counts as large: the narrowing path computes every percentile.
    monkeypatch.setattr(daily_summary, "IN_MEMORY_ROWS", 0)
    narrowed = daily_summary.summarize(sorted(days))

    # The same figures, to the last few ulps (polars' grouped quantile and the narrowing
    # interpolate the same neighbours, with rounding that may differ in the last bit).
    assert_frame_equal(narrowed.summary, in_memory.summary, rel_tol=1e-12, abs_tol=0)
    assert_frame_equal(narrowed.day_totals, in_memory.day_totals, rel_tol=1e-12, abs_tol=0)
