"""Properties of normalize() on any mix of duplicated events and metrics (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from analytics_fixtures import sanitized_frame, sanitized_row, to_parquet
from hypothesis import given, settings
from hypothesis import strategies as st
from ryuzen_analytics.frame_schemas import ANALYTICS_SCHEMA
from ryuzen_analytics.normalize import normalize
from ryuzen_analytics.sanitized_parquet import read_sanitized
from ryuzen_contracts.ids import new_ulid

BATCH = new_ulid(datetime(2026, 11, 1, tzinfo=UTC))
# A small pool of ids, so that most drawn batches repeat some.
EVENT_IDS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(12)]
RECEIVED = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
MS = st.none() | st.floats(min_value=0, max_value=600_000, allow_nan=False)

rows = st.builds(
    lambda event_id, received, age_s, latency, ttft, tokens: sanitized_row(
        BATCH,
        received,
        event_id=event_id,
        occurred_at=received - timedelta(seconds=age_s),
        latency_ms=latency,
        ttft_ms=ttft,
        output_tokens=tokens,
    ),
    st.sampled_from(EVENT_IDS),
    RECEIVED,
    st.integers(min_value=-300, max_value=8 * 86_400),
    MS,
    MS,
    st.none() | st.integers(min_value=0, max_value=1_000_000),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(rows, max_size=40))
def test_one_row_per_distinct_event_id_and_nothing_invented(batch: list[dict]) -> None:
    ids_in = [row["event_id"] for row in batch]

    out = normalize(sanitized_frame(batch))

    ids_out = out.get_column("event_id").to_list()
    assert out.height == len(set(ids_in))
    assert set(ids_out) <= set(ids_in)
    assert ids_out == list(dict.fromkeys(ids_in))  # first occurrences, input order
    assert out.schema == ANALYTICS_SCHEMA


@settings(max_examples=100, deadline=None)
@given(st.lists(rows, max_size=20))
def test_derived_columns_agree_with_their_definitions(batch: list[dict]) -> None:
    first = {}
    for row in batch:
        first.setdefault(row["event_id"], row)

    out = normalize(sanitized_frame(batch))

    for got in out.iter_rows(named=True):
        row = first[got["event_id"]]
        received, occurred = row["received_at"], row["occurred_at"]
        month_start = received.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        assert got["late"] is (occurred < month_start)
        assert got["occurred_date"] == occurred.date()
        seconds = (
            None
            if row["latency_ms"] is None
            else (row["latency_ms"] - (row["ttft_ms"] or 0.0)) / 1000
        )
        if seconds is None or seconds <= 0 or row["output_tokens"] is None:
            assert got["tokens_per_second"] is None
        else:
            assert got["tokens_per_second"] == pytest.approx(row["output_tokens"] / seconds)


@settings(max_examples=30, deadline=None)
@given(st.lists(rows, max_size=20))
def test_a_parquet_round_trip_changes_nothing(batch: list[dict]) -> None:
    frame = sanitized_frame(batch)

    assert normalize(read_sanitized(to_parquet(frame))).equals(normalize(frame))
