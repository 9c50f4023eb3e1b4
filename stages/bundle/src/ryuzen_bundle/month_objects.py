"""What one partner-month holds in S3: its ANALYTICS Parquet and its zero-PII certificates.

Objects are listed, then copied to the build's local work directory a chunk at a time
(never whole in memory), several at once: a month is thousands of objects of one ingest
batch each, so per-request latency, not bandwidth, is what a serial copy would pay for.
Downloads are handed back in key order — the order the deduplication numbers rows in.
The defaults (6 ANALYTICS + 4 certificate downloads, run side by side) stay within
botocore's default pool of 10 connections per client.

A key under the month's ANALYTICS prefix that is not an ANALYTICS key fails the build:
a signed bundle claims to hold the whole month, so nothing in it may be skipped silently.

**Completeness.** For the same reason the month must be whole before it is signed:
cleanup deletes SANITIZED after delivery, so a batch analytics has not (fully) written
yet would be lost. Every zero-PII certificate states how many events its batch left in
SANITIZED (``counts.sanitized``); the analytics stage writes one object per batch and
receipt day and records in each object's Parquet key-value metadata what it read
(``ryuzen.sanitized_rows``) and how many in-batch duplicates it dropped
(``ryuzen.duplicates_removed``). ``check_complete`` then requires, for every certificate
with sanitized events, that the batch's objects hold exactly
``sanitized - duplicates_removed`` rows. An object written before analytics recorded
that metadata can only be held to ``0 < rows <= sanitized``: a missing day of a batch
that spans days, or a batch with in-batch duplicates cut short, then passes — no worse
than before the check existed, and such objects stop being written once analytics is
upgraded.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from ryuzen_contracts.analytics_schema import DUPLICATES_REMOVED_KEY, SANITIZED_ROWS_KEY
from ryuzen_contracts.attestation import ZERO_PII_PREDICATE, Envelope, Statement
from ryuzen_contracts.key_layout import (
    InvalidKeyPart,
    analytics_key,
    analytics_prefix,
    parse_sanitized_key,
    sanitized_prefix,
)

_CHUNK = 1 << 20
_SHOWN_PROBLEMS = 3


class MonthObjectsError(RuntimeError):
    """The month's objects are not what the contracts say they must be."""


class IncompleteMonth(MonthObjectsError):  # noqa: N818 -- reads as what it found
    """ANALYTICS does not (yet) hold every certified batch whole.

    ``reason`` is short and audit-safe: a count, batch ids and row counts, nothing else.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AnalyticsObject:
    """One ANALYTICS Parquet object of the month (one ingest batch on one receipt day)."""

    key: str
    day: int
    batch_id: str
    size: int


@dataclass(frozen=True)
class Certificate:
    """One zero-PII certificate covering the partner-month, copied to local disk."""

    key: str
    batch_id: str
    path: Path
    quarantined: int
    sanitized: int = 0  # events the batch left in SANITIZED for this partner-month


@dataclass(frozen=True)
class AnalyticsFacts:
    """What one ANALYTICS file says of itself, from its Parquet footer."""

    rows: int
    sanitized_rows: int | None = None  # None: written before analytics recorded it
    duplicates_removed: int | None = None


def _list(s3: Any, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"], int(item["Size"])


def list_analytics(s3: Any, bucket: str, partner: str, month: str) -> list[AnalyticsObject]:
    """Every ANALYTICS object of the partner-month, in key order (day, then batch)."""
    prefix = analytics_prefix(partner, month)
    found = []
    for key, size in _list(s3, bucket, prefix):
        day_part, _, file_name = key[len(prefix) :].partition("/")
        batch_id = file_name.removesuffix(".parquet")
        try:
            day = int(day_part.removeprefix("day="))
            # Parsed loosely, then confirmed by the one module that formats keys.
            if analytics_key(partner, month, day, batch_id) != key:
                raise InvalidKeyPart(key)
        except (ValueError, InvalidKeyPart):
            raise MonthObjectsError(
                f"unexpected object under the month's ANALYTICS prefix: {key[:160]!r}"
            ) from None
        found.append(AnalyticsObject(key, day, batch_id, size))
    return sorted(found, key=lambda item: item.key)


def download(s3: Any, bucket: str, key: str, path: Path) -> int:
    """Copy one object to ``path`` a chunk at a time; return its size (checked)."""
    response = s3.get_object(Bucket=bucket, Key=key)
    expected = int(response["ContentLength"])
    written = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        for chunk in response["Body"].iter_chunks(_CHUNK):
            handle.write(chunk)
            written += len(chunk)
    if written != expected:
        raise MonthObjectsError(f"{key[:160]}: read {written} of {expected} bytes")
    return written


def download_in_order(
    s3: Any,
    bucket: str,
    objects: list[AnalyticsObject],
    directory: Path,
    *,
    workers: int = 6,
    lookahead: int = 64,
) -> Iterator[tuple[AnalyticsObject, Path]]:
    """Download ``objects`` concurrently; yield each with its local path, in list order.

    At most ``lookahead`` downloads are queued ahead of the consumer, so the bookkeeping
    stays flat however many objects the month holds.
    """

    def fetch(item: AnalyticsObject) -> tuple[AnalyticsObject, Path]:
        path = directory / f"day={item.day:02d}" / f"{item.batch_id}.parquet"
        download(s3, bucket, item.key, path)
        return item, path

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="bundle-get")
    pending: deque[Future[tuple[AnalyticsObject, Path]]] = deque()
    remaining = iter(objects)
    try:
        for item in remaining:
            pending.append(pool.submit(fetch, item))
            if len(pending) >= max(1, lookahead):
                break
        while pending:
            done = pending.popleft().result()
            for item in remaining:
                pending.append(pool.submit(fetch, item))
                break
            yield done
    finally:
        # A build that stops early (a failure downstream) does not wait for the rest.
        pool.shutdown(wait=True, cancel_futures=True)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_certificate_facts(data: bytes, partner: str, month: str, key: str) -> tuple[int, int]:
    """Check a stored certificate is a zero-PII Statement of this partner-month.

    Returns its ``(quarantined, sanitized)`` counts. The signature is not checked here:
    certificates are copied into the bundle byte for byte, and the partner verifies them
    (and the manifest naming their digests) offline.
    """
    try:
        envelope = Envelope.model_validate_json(data)
        stmt = Statement.model_validate_json(base64.b64decode(envelope.payload, validate=True))
        predicate = stmt.predicate
        quarantined = predicate["counts"]["quarantined"]
        sanitized = predicate["counts"]["sanitized"]
    except (ValueError, KeyError, TypeError):
        raise MonthObjectsError(f"{key[:160]}: not a zero-PII certificate") from None
    if stmt.predicate_type != ZERO_PII_PREDICATE:
        raise MonthObjectsError(f"{key[:160]}: predicateType is not zero-PII")
    if predicate.get("partner") != partner or predicate.get("month") != month:
        raise MonthObjectsError(f"{key[:160]}: certificate is for another partner-month")
    if not _is_count(quarantined):
        raise MonthObjectsError(f"{key[:160]}: counts.quarantined is not a count")
    if not _is_count(sanitized):
        raise MonthObjectsError(f"{key[:160]}: counts.sanitized is not a count")
    return quarantined, sanitized


def fetch_certificates(
    s3: Any, bucket: str, partner: str, month: str, directory: Path, *, workers: int = 4
) -> list[Certificate]:
    """Download and check every certificate beside the month's SANITIZED objects."""
    keys = []
    for key, _ in _list(s3, bucket, sanitized_prefix(partner, month)):
        try:
            parsed = parse_sanitized_key(key)
        except InvalidKeyPart:
            continue  # not a certificate: the sanitize stage owns this prefix
        if parsed.is_certificate:
            keys.append((key, parsed.batch_id))
    keys.sort()

    def fetch(entry: tuple[str, str]) -> Certificate:
        key, batch_id = entry
        path = directory / f"{batch_id}.dsse.json"
        download(s3, bucket, key, path)
        quarantined, sanitized = read_certificate_facts(path.read_bytes(), partner, month, key)
        return Certificate(key, batch_id, path, quarantined, sanitized)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="bundle-cert") as pool:
        return list(pool.map(fetch, keys))


def analytics_facts(path: Path) -> AnalyticsFacts:
    """Rows and analytics' recorded counts of the ANALYTICS file at ``path`` (footer only)."""
    rows = int(pl.scan_parquet(path, hive_partitioning=False).select(pl.len()).collect().item())
    metadata = pl.read_parquet_metadata(path)
    recorded = [metadata.get(SANITIZED_ROWS_KEY), metadata.get(DUPLICATES_REMOVED_KEY)]
    if recorded == [None, None]:
        return AnalyticsFacts(rows)
    if not all(value is not None and value.isascii() and value.isdigit() for value in recorded):
        raise MonthObjectsError(f"{path.name}: malformed ryuzen row counts in its metadata")
    read, removed = (int(value) for value in recorded if value is not None)
    return AnalyticsFacts(rows, read, removed)


def _batch_problem(certificate: Certificate, found: list[AnalyticsFacts]) -> str | None:
    """Why the batch's ANALYTICS objects do not account for its sanitized events, or None."""
    batch, expected = certificate.batch_id, certificate.sanitized
    if not found:
        return f"{batch}: no object ({expected} sanitized)"
    rows = sum(item.rows for item in found)
    recorded = {
        (item.sanitized_rows, item.duplicates_removed)
        for item in found
        if item.sanitized_rows is not None
    }
    if len(recorded) > 1:
        return f"{batch}: objects of different analytics runs"
    if recorded:
        ((read, removed),) = recorded
        assert read is not None and removed is not None
        if read != expected or rows + removed != expected:
            return f"{batch}: {rows} rows + {removed} duplicates of {expected} sanitized"
        return None
    # Written before analytics recorded its counts: the looser bound is all there is.
    if not 0 < rows <= expected:
        return f"{batch}: {rows} rows of {expected} sanitized"
    return None


def check_complete(
    certificates: list[Certificate],
    objects: list[AnalyticsObject],
    facts: dict[str, AnalyticsFacts],
) -> None:
    """Raise IncompleteMonth unless ANALYTICS holds every certified batch whole, and no
    batch without a certificate.

    ``facts`` maps each object's key to ``analytics_facts`` of its downloaded copy. A
    certificate with no sanitized events (every event quarantined) expects no object.
    """
    by_batch: dict[str, list[AnalyticsFacts]] = {}
    for item in objects:
        by_batch.setdefault(item.batch_id, []).append(facts[item.key])
    expecting = [item for item in certificates if item.sanitized > 0]
    incomplete = [
        problem
        for certificate in expecting
        if (problem := _batch_problem(certificate, by_batch.get(certificate.batch_id, [])))
    ]
    # The reverse: events no zero-PII certificate covers must never reach a partner.
    certified = {item.batch_id for item in expecting}
    uncertified = [
        f"{batch_id}: {sum(item.rows for item in found)} rows"
        for batch_id, found in sorted(by_batch.items())
        if batch_id not in certified
    ]
    reasons = []
    if incomplete:
        reasons.append(
            f"{len(incomplete)} of {len(expecting)} certified batches incomplete in "
            f"ANALYTICS: {_some(incomplete)}"
        )
    if uncertified:
        reasons.append(
            f"{len(uncertified)} batches in ANALYTICS without a certificate: {_some(uncertified)}"
        )
    if reasons:
        raise IncompleteMonth(". ".join(reasons))


def _some(problems: list[str]) -> str:
    """The first few problems, and how many more there are."""
    shown = "; ".join(problems[:_SHOWN_PROBLEMS])
    hidden = len(problems) - _SHOWN_PROBLEMS
    return f"{shown}; and {hidden} more" if hidden > 0 else shown
