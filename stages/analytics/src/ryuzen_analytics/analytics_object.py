"""Normalizing one SANITIZED object in S3: read, check, normalize, write per receipt day.

Every output key is a function of the SANITIZED key and the rows' receipt day
(``analytics_key(partner, month, day, batch_id)``), and the Parquet bytes are a function
of the input bytes, so a redelivered notification overwrites the same objects with the
same content. Nothing is deleted: SANITIZED stays until the month is delivered (cleanup).
Each side effect runs as a named step (``pipeline_steps.step``), so a failure's ``ERROR``
audit event says where it happened; a crash between two day objects is healed by the
redelivery rewriting both.

The day partition is the *receipt* day, like the month: ingest stamps one ``received_at``
on a whole batch, so a batch is one object. Should a SANITIZED file ever hold rows of
several receipt days, they are grouped and written as one object per day, each under its
own ``day=`` partition with the same batch id — a row always sits in its receipt day.

Each object records, in its Parquet key-value metadata, what the stage read for the whole
batch: ``ryuzen.sanitized_rows`` (the SANITIZED rows, which the batch's certificate
states as ``counts.sanitized``) and ``ryuzen.duplicates_removed`` (rows dropped by the
``event_id`` dedup). The bundle builder sums the rows of a batch's objects and refuses to
sign a month where ``rows + duplicates_removed`` falls short of the certificate: cleanup
deletes SANITIZED after delivery, so a batch missing here would be lost for good.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from ryuzen_contracts.analytics_schema import DUPLICATES_REMOVED_KEY, SANITIZED_ROWS_KEY
from ryuzen_contracts.key_layout import analytics_key, parse_sanitized_key
from ryuzen_contracts.pipeline_steps import step

from ryuzen_analytics.normalize import normalize
from ryuzen_analytics.sanitized_parquet import check_matches_key, read_sanitized

STAGE = "analytics"
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"


@dataclass(frozen=True)
class AnalyticsTarget:
    """Where the stage reads and writes."""

    sanitized_bucket: str
    analytics_bucket: str


@dataclass
class ObjectReport:
    """What normalizing one SANITIZED object did (counts and keys only)."""

    partner: str
    month: str
    batch_id: str
    rows_in: int = 0
    rows_out: int = 0
    late: int = 0
    written_keys: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """Rows dropped because an earlier row had the same ``event_id``."""
        return self.rows_in - self.rows_out


def by_receipt_day(frame: pl.DataFrame) -> list[tuple[int, pl.DataFrame]]:
    """``(day of month, rows)`` per UTC receipt day, days ascending, row order kept."""
    days = frame.get_column("received_at").dt.day()
    parts = frame.with_columns(days.alias("__day")).partition_by(
        "__day", maintain_order=True, as_dict=True
    )
    return sorted((int(day), rows.drop("__day")) for (day,), rows in parts.items())


def batch_metadata(report: ObjectReport) -> dict[str, str]:
    """The key-value metadata every object of the batch carries (counts of the whole batch)."""
    return {
        SANITIZED_ROWS_KEY: str(report.rows_in),
        DUPLICATES_REMOVED_KEY: str(report.duplicates),
    }


def to_parquet(frame: pl.DataFrame, metadata: dict[str, str] | None = None) -> bytes:
    """zstd Parquet with statistics (Athena prunes row groups on them) and ``metadata``."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True, metadata=metadata)
    return buffer.getvalue()


def put_with_checksum(s3: Any, bucket: str, key: str, body: bytes) -> None:
    """PutObject with a SHA-256 checksum S3 verifies before it acknowledges the write."""
    digest = hashlib.sha256(body).digest()
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=PARQUET_CONTENT_TYPE,
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
    )


def normalize_object(s3: Any, target: AnalyticsTarget, key: str) -> ObjectReport:
    """Write the ANALYTICS objects of the SANITIZED Parquet at ``key``; raise on any failure.

    ``key`` must be a SANITIZED Parquet key (``parse_sanitized_key``, not a certificate).
    An empty SANITIZED file writes nothing. S3 errors (including a missing object, which
    retrying cannot fix but an operator must see) propagate, so the message is redelivered
    and ends in the DLQ.
    """
    with step("parse_key"):
        parsed = parse_sanitized_key(key)
        if parsed.is_certificate:
            raise ValueError("a certificate is not SANITIZED Parquet")
    report = ObjectReport(parsed.partner, parsed.month, parsed.batch_id)
    with step("read_sanitized"):
        body = s3.get_object(Bucket=target.sanitized_bucket, Key=key)["Body"].read()
    with step("check_sanitized"):
        sanitized = read_sanitized(body)
        report.rows_in = sanitized.height
        if sanitized.is_empty():
            return report
        check_matches_key(sanitized, parsed)
    with step("normalize"):
        analytics = normalize(sanitized)
        report.rows_out = analytics.height
        report.late = int(analytics.get_column("late").sum())
        days = by_receipt_day(analytics)
    metadata = batch_metadata(report)
    for day, rows in days:
        output_key = analytics_key(parsed.partner, parsed.month, day, parsed.batch_id)
        with step("write_analytics"):
            body = to_parquet(rows, metadata)
            put_with_checksum(s3, target.analytics_bucket, output_key, body)
        report.written_keys.append(output_key)
    return report
