"""normalize_object() against moto: key layout, idempotent overwrite, refusals, S3 errors."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from analytics_fixtures import (
    MONTH,
    PARTNER,
    RECEIVED_AT,
    sanitized_batch,
    sanitized_frame,
    sanitized_row,
    to_parquet,
)
from botocore.exceptions import ClientError
from ryuzen_analytics.analytics_object import normalize_object
from ryuzen_analytics.frame_schemas import ANALYTICS_SCHEMA, SchemaMismatchError
from ryuzen_analytics.sanitized_parquet import SanitizedObjectError
from ryuzen_contracts.analytics_schema import DUPLICATES_REMOVED_KEY, SANITIZED_ROWS_KEY
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import InvalidKeyPart, analytics_key, certificate_key

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def test_a_batch_lands_at_its_receipt_day(stack) -> None:
    # Given a SANITIZED batch received on 2026-11-28
    batch, frame = sanitized_batch(3)
    key = stack.put_sanitized(frame, batch)

    # When it is normalized
    report = normalize_object(stack.s3, stack.target, key)

    # Then one ANALYTICS object sits in the hive partition of the receipt day
    expected = f"analytics/events/partner=acme/month=2026-11/day=28/{batch}.parquet"
    assert expected == analytics_key(PARTNER, MONTH, 28, batch)
    assert stack.keys("analytics") == [expected]
    assert report.written_keys == [expected]
    assert (report.rows_in, report.rows_out, report.duplicates, report.late) == (3, 3, 0, 0)
    written = stack.analytics(expected)
    assert written.schema == ANALYTICS_SCHEMA
    assert written.get_column("event_id").to_list() == frame.get_column("event_id").to_list()
    # and SANITIZED is left alone (cleanup deletes it after delivery)
    assert stack.keys("sanitized") == [key]


def test_the_day_is_the_receipt_day_not_the_occurrence_day(stack) -> None:
    # Given events received just after midnight on the 1st that occurred the previous month
    received = datetime(2026, 12, 1, 0, 0, 3, tzinfo=UTC)
    batch = new_ulid(received)
    rows = [sanitized_row(batch, received, occurred_at=received - timedelta(seconds=10))]
    key = stack.put_sanitized(sanitized_frame(rows), batch, month="2026-12")

    report = normalize_object(stack.s3, stack.target, key)

    assert report.written_keys == [analytics_key(PARTNER, "2026-12", 1, batch)]
    assert report.late == 1
    assert stack.analytics(report.written_keys[0]).get_column("late").to_list() == [True]


def test_written_objects_are_zstd_parquet_with_a_verified_checksum(stack) -> None:
    batch, frame = sanitized_batch(2)
    (written,) = normalize_object(
        stack.s3, stack.target, stack.put_sanitized(frame, batch)
    ).written_keys

    head = stack.s3.head_object(Bucket="analytics", Key=written, ChecksumMode="ENABLED")
    body = stack.read("analytics", written)
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert head["ContentType"] == "application/vnd.apache.parquet"
    # Every zstd frame starts with this magic number; pages of an uncompressed or snappy
    # file never carry it (no pyarrow here to read the codec from the footer).
    assert ZSTD_MAGIC in body
    assert body.startswith(b"PAR1") and body.endswith(b"PAR1")


def test_duplicates_are_dropped_and_counted(stack) -> None:
    batch, frame = sanitized_batch(3)
    with_duplicates = pl.concat([frame, frame.head(2)])

    report = normalize_object(stack.s3, stack.target, stack.put_sanitized(with_duplicates, batch))

    assert (report.rows_in, report.rows_out, report.duplicates) == (5, 3, 2)
    written = stack.analytics(report.written_keys[0])
    assert written.get_column("event_id").to_list() == frame.get_column("event_id").to_list()


def test_rows_of_several_receipt_days_are_written_one_object_per_day(stack) -> None:
    # Given (against what ingest does) one batch whose rows were received on two days
    batch = new_ulid(RECEIVED_AT)
    day_27 = RECEIVED_AT - timedelta(days=1)
    rows = [
        sanitized_row(batch, RECEIVED_AT),
        sanitized_row(batch, day_27),
        sanitized_row(batch, RECEIVED_AT),
    ]
    key = stack.put_sanitized(sanitized_frame(rows), batch)

    report = normalize_object(stack.s3, stack.target, key)

    # Then each day holds its own rows, under the same batch id, in input order
    assert report.written_keys == [
        analytics_key(PARTNER, MONTH, 27, batch),
        analytics_key(PARTNER, MONTH, 28, batch),
    ]
    per_day = [stack.analytics(k).get_column("event_id").to_list() for k in report.written_keys]
    assert per_day == [[rows[1]["event_id"]], [rows[0]["event_id"], rows[2]["event_id"]]]


def metadata_counts(body: bytes) -> tuple[int, int, int]:
    """``(rows, sanitized_rows, duplicates_removed)`` from an object's Parquet footer."""
    metadata = pl.read_parquet_metadata(io.BytesIO(body))
    rows = pl.read_parquet(io.BytesIO(body)).height
    return rows, int(metadata[SANITIZED_ROWS_KEY]), int(metadata[DUPLICATES_REMOVED_KEY])


def test_each_object_records_what_the_batch_read_and_dropped(stack) -> None:
    # Given a batch of 5 SANITIZED rows, 2 of them duplicates, received on two days
    batch = new_ulid(RECEIVED_AT)
    day_27 = RECEIVED_AT - timedelta(days=1)
    rows = [sanitized_row(batch, RECEIVED_AT), sanitized_row(batch, day_27)]
    rows += [sanitized_row(batch, RECEIVED_AT)]
    frame = sanitized_frame(rows)
    key = stack.put_sanitized(pl.concat([frame, frame.head(2)]), batch)

    # When it is normalized
    report = normalize_object(stack.s3, stack.target, key)

    # Then every object of the batch carries the batch's counts in its footer, and the
    # rows of its objects plus the duplicates account for every SANITIZED row
    counts = [metadata_counts(stack.read("analytics", k)) for k in report.written_keys]
    assert counts == [(1, 5, 2), (2, 5, 2)]
    assert sum(rows for rows, _, _ in counts) + 2 == 5 == report.rows_in


def test_running_the_same_object_twice_overwrites_with_the_same_content(stack) -> None:
    # Given an object already normalized once
    batch, frame = sanitized_batch(4)
    key = stack.put_sanitized(frame, batch)
    first = normalize_object(stack.s3, stack.target, key)
    before = {k: stack.read("analytics", k) for k in stack.keys("analytics")}

    # When the same notification is processed again
    second = normalize_object(stack.s3, stack.target, key)

    # Then the same keys hold the same bytes, and nothing else was added
    assert second.written_keys == first.written_keys
    assert {k: stack.read("analytics", k) for k in stack.keys("analytics")} == before


def test_an_empty_sanitized_file_writes_nothing(stack) -> None:
    batch, frame = sanitized_batch(0)

    report = normalize_object(stack.s3, stack.target, stack.put_sanitized(frame, batch))

    assert (report.rows_in, report.written_keys) == (0, [])
    assert stack.keys("analytics") == []


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [
        pytest.param(
            lambda f: to_parquet(f.drop("attributes")),
            SchemaMismatchError,
            "missing column attributes",
            id="missing-column",
        ),
        pytest.param(
            lambda f: to_parquet(f.with_columns(pl.lit("hi").alias("prompt"))),
            SchemaMismatchError,
            "unexpected column .prompt.",
            id="extra-column",
        ),
        pytest.param(
            lambda f: to_parquet(f.with_columns(pl.col("latency_ms").cast(pl.Float32))),
            SchemaMismatchError,
            "column latency_ms is Float32",
            id="retyped",
        ),
        pytest.param(
            lambda f: to_parquet(f.with_columns(pl.col("occurred_at").dt.replace_time_zone(None))),
            SchemaMismatchError,
            "column occurred_at",
            id="naive-timestamp",
        ),
        pytest.param(
            lambda f: to_parquet(f.select(sorted(f.columns))),
            SchemaMismatchError,
            "contract order",
            id="reordered",
        ),
        pytest.param(
            lambda f: b"event_id,kind\n1,inference\n",
            SanitizedObjectError,
            "not a Parquet file",
            id="csv-not-parquet",
        ),
        pytest.param(
            lambda f: to_parquet(f.with_columns(pl.lit("nimbus-ai").alias("partner"))),
            SanitizedObjectError,
            "1 rows with another or no partner",
            id="another-partner",
        ),
        pytest.param(
            lambda f: to_parquet(
                f.with_columns(pl.col("received_at") + pl.duration(days=3))  # 2026-12-01
            ),
            SanitizedObjectError,
            "another or no month",
            id="received-in-another-month",
        ),
        pytest.param(
            lambda f: to_parquet(
                f.with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias("received_at"))
            ),
            SanitizedObjectError,
            "another or no month",
            id="no-receipt-time",
        ),
        pytest.param(
            lambda f: to_parquet(f.with_columns(pl.lit(new_ulid()).alias("batch_id"))),
            SanitizedObjectError,
            "another or no batch_id",
            id="another-batch",
        ),
    ],
)
def test_a_file_that_is_not_sanitized_parquet_of_its_key_is_refused(
    stack, mutate: Any, error: type[Exception], message: str
) -> None:
    batch, frame = sanitized_batch(1)
    key = stack.put_sanitized(mutate(frame), batch)

    with pytest.raises(error, match=message):
        normalize_object(stack.s3, stack.target, key)
    assert stack.keys("analytics") == []


@pytest.mark.parametrize(
    ("key", "error"),
    [
        pytest.param(certificate_key(PARTNER, MONTH, new_ulid()), ValueError, id="certificate"),
        pytest.param(f"raw/2026/11/28/05/{new_ulid()}.ndjson.gz", InvalidKeyPart, id="raw-key"),
    ],
)
def test_only_sanitized_parquet_keys_are_accepted(stack, key: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        normalize_object(stack.s3, stack.target, key)


# --- S3 errors propagate -----------------------------------------------------------------------


def test_a_missing_object_raises(stack) -> None:
    batch = new_ulid(RECEIVED_AT)
    key = f"sanitized/partner={PARTNER}/month={MONTH}/{batch}.parquet"

    with pytest.raises(ClientError, match="NoSuchKey"):
        normalize_object(stack.s3, stack.target, key)


def test_a_failed_write_raises(stack, monkeypatch: pytest.MonkeyPatch) -> None:
    batch, frame = sanitized_batch(2)
    key = stack.put_sanitized(frame, batch)

    def refuse(**kwargs: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}},
            "PutObject",
        )

    monkeypatch.setattr(stack.s3, "put_object", refuse)
    with pytest.raises(ClientError, match="SlowDown"):
        normalize_object(stack.s3, stack.target, key)
