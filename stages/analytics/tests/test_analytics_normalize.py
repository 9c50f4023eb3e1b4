"""normalize(): the ANALYTICS frame of a SANITIZED frame — types, derived columns, dedup."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest
from analytics_fixtures import RECEIVED_AT, sanitized_frame, sanitized_row
from ryuzen_analytics.frame_schemas import ANALYTICS_SCHEMA, SchemaMismatchError
from ryuzen_analytics.normalize import normalize
from ryuzen_contracts.analytics_schema import ANALYTICS_COLUMNS
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.sanitized_schema import COLUMN_NAMES as SANITIZED_NAMES

BATCH = new_ulid(RECEIVED_AT)

# The contract's Hive type -> the polars dtype it must be written as, spelled out here
# independently of frame_schemas.HIVE_TO_POLARS so a wrong mapping there fails here.
EXPECTED_DTYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "double": pl.Float64(),
    "bigint": pl.Int64(),
    "int": pl.Int32(),
    "boolean": pl.Boolean(),
    "timestamp": pl.Datetime("us", "UTC"),
    "date": pl.Date(),
    "array<struct<key:string,value:string,type:string>>": pl.List(
        pl.Struct({"key": pl.String, "value": pl.String, "type": pl.String})
    ),
}


def one(**overrides: Any) -> dict[str, Any]:
    """The single ANALYTICS row of a one-row SANITIZED frame."""
    frame = normalize(sanitized_frame([sanitized_row(BATCH, **overrides)]))
    assert frame.height == 1
    return frame.row(0, named=True)


# --- types: every column, in contract order ---------------------------------------------------


def test_columns_are_the_contract_in_order() -> None:
    frame = normalize(sanitized_frame([sanitized_row(BATCH)]))

    assert frame.columns == [name for name, _, _ in ANALYTICS_COLUMNS]
    assert frame.schema == ANALYTICS_SCHEMA


@pytest.mark.parametrize(
    ("name", "hive_type"),
    [pytest.param(name, hive, id=name) for name, hive, _ in ANALYTICS_COLUMNS],
)
def test_each_column_has_the_contract_dtype(name: str, hive_type: str) -> None:
    frame = normalize(sanitized_frame([sanitized_row(BATCH)]))

    assert frame.schema[name] == EXPECTED_DTYPES[hive_type]


def test_an_empty_frame_keeps_the_contract_schema() -> None:
    assert normalize(sanitized_frame([])).schema == ANALYTICS_SCHEMA


@pytest.mark.parametrize("dropped", ["client_id", "partner", "schema_version"])
def test_columns_outside_the_contract_are_dropped(dropped: str) -> None:
    assert dropped in SANITIZED_NAMES
    assert dropped not in normalize(sanitized_frame([sanitized_row(BATCH)])).columns


def test_flat_columns_pass_through_unchanged() -> None:
    row = sanitized_row(BATCH, status="error", http_status=503, error_code="upstream_timeout")

    out = normalize(sanitized_frame([row])).row(0, named=True)

    for name in (set(SANITIZED_NAMES) & set(out)) - {"attributes"}:
        assert out[name] == row[name], name
    assert out["attributes"] == row["attributes"]


# --- derived columns on hand-computed examples ------------------------------------------------


@pytest.mark.parametrize(
    ("latency_ms", "ttft_ms", "output_tokens", "expected"),
    [
        pytest.param(812.5, 120.0, 128, 128 / 0.6925, id="typical"),
        pytest.param(1000.0, None, 50, 50.0, id="no-ttft-counts-as-zero"),
        pytest.param(2500.0, 500.0, 0, 0.0, id="zero-tokens"),
        pytest.param(100.0, 100.0, 10, None, id="ttft-equals-latency"),
        pytest.param(100.0, 150.0, 10, None, id="ttft-after-latency"),
        pytest.param(0.0, None, 10, None, id="zero-latency"),
        pytest.param(1000.0, 200.0, None, None, id="no-output-tokens"),
        pytest.param(None, 200.0, 10, None, id="no-latency"),
        pytest.param(None, None, None, None, id="no-metrics"),
    ],
)
def test_tokens_per_second(
    latency_ms: float | None, ttft_ms: float | None, output_tokens: int | None, expected: float
) -> None:
    row = one(latency_ms=latency_ms, ttft_ms=ttft_ms, output_tokens=output_tokens)

    if expected is None:
        assert row["tokens_per_second"] is None
    else:
        assert row["tokens_per_second"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        pytest.param(datetime(2026, 11, 27, 23, 59, 59, 999999, tzinfo=UTC), date(2026, 11, 27)),
        pytest.param(datetime(2026, 11, 28, 0, 0, tzinfo=UTC), date(2026, 11, 28)),
        pytest.param(datetime(2026, 10, 31, 22, 0, tzinfo=UTC), date(2026, 10, 31)),
    ],
    ids=["last-microsecond", "midnight", "previous-month"],
)
def test_occurred_date_is_the_utc_date(occurred_at: datetime, expected: date) -> None:
    assert one(occurred_at=occurred_at)["occurred_date"] == expected


@pytest.mark.parametrize(
    ("received_at", "occurred_at", "late"),
    [
        pytest.param(
            datetime(2026, 11, 1, 0, 0, 0, 1000, tzinfo=UTC),
            datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=UTC),
            True,
            id="a-microsecond-before-the-month",
        ),
        pytest.param(
            datetime(2026, 11, 1, 0, 0, 5, tzinfo=UTC),
            datetime(2026, 11, 1, 0, 0, 0, tzinfo=UTC),
            False,
            id="at-the-first-instant",
        ),
        pytest.param(
            datetime(2026, 11, 28, 5, 30, tzinfo=UTC),
            datetime(2026, 11, 21, 5, 30, tzinfo=UTC),
            False,
            id="a-week-old-same-month",
        ),
        pytest.param(
            datetime(2026, 11, 3, 9, 0, tzinfo=UTC),
            datetime(2026, 10, 28, 9, 0, tzinfo=UTC),
            True,
            id="days-before-the-month",
        ),
        pytest.param(
            datetime(2027, 1, 1, 0, 0, 2, tzinfo=UTC),
            datetime(2026, 12, 31, 23, 59, 58, tzinfo=UTC),
            True,
            id="across-the-year",
        ),
        pytest.param(
            datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC),
            datetime(2026, 12, 1, 0, 3, tzinfo=UTC),
            False,
            id="client-clock-ahead",
        ),
    ],
)
def test_late_is_occurred_before_the_receipt_month(
    received_at: datetime, occurred_at: datetime, late: bool
) -> None:
    row = one(received_at=received_at, occurred_at=occurred_at)

    assert row["late"] is late
    assert row["received_at"] == received_at


# --- dedup ---------------------------------------------------------------------------------------


def test_duplicate_event_ids_keep_the_first_row() -> None:
    # Given a batch in which two events were sent twice, with different latencies
    a, b, c = (sanitized_row(BATCH) for _ in range(3))
    rows = [
        a,
        {**b, "latency_ms": 100.0},
        {**a, "latency_ms": 999.0},
        c,
        {**b, "latency_ms": 200.0},
    ]

    # When it is normalized
    frame = normalize(sanitized_frame(rows))

    # Then each event id appears once, first occurrence kept, in input order
    assert frame.get_column("event_id").to_list() == [a["event_id"], b["event_id"], c["event_id"]]
    assert frame.get_column("latency_ms").to_list() == [812.5, 100.0, 812.5]


# --- refusal -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda f: f.drop("client_id"), id="missing-column"),
        pytest.param(lambda f: f.with_columns(pl.lit(1).alias("prompt")), id="extra-column"),
        pytest.param(lambda f: f.with_columns(pl.col("http_status").cast(pl.Int64)), id="retyped"),
        pytest.param(lambda f: f.select(reversed(f.columns)), id="reordered"),
    ],
)
def test_a_frame_without_the_sanitized_schema_is_refused(mutate: Any) -> None:
    frame = mutate(sanitized_frame([sanitized_row(BATCH)]))

    with pytest.raises(SchemaMismatchError, match="not the SANITIZED schema"):
        normalize(frame)
