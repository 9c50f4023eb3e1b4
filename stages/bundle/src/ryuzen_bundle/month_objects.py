"""What one partner-month holds in S3: its ANALYTICS Parquet and its zero-PII certificates.

Objects are listed, then copied to the build's local work directory a chunk at a time
(never whole in memory), several at once: a month is thousands of objects of one ingest
batch each, so per-request latency, not bandwidth, is what a serial copy would pay for.
Downloads are handed back in key order — the order the deduplication numbers rows in.
The defaults (6 ANALYTICS + 4 certificate downloads, run side by side) stay within
botocore's default pool of 10 connections per client.

A key under the month's ANALYTICS prefix that is not an ANALYTICS key fails the build:
a signed bundle claims to hold the whole month, so nothing in it may be skipped silently.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ryuzen_contracts.attestation import ZERO_PII_PREDICATE, Envelope, Statement
from ryuzen_contracts.key_layout import (
    InvalidKeyPart,
    analytics_key,
    analytics_prefix,
    parse_sanitized_key,
    sanitized_prefix,
)

_CHUNK = 1 << 20


class MonthObjectsError(RuntimeError):
    """The month's objects are not what the contracts say they must be."""


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


def read_certificate_facts(data: bytes, partner: str, month: str, key: str) -> int:
    """Check a stored certificate is a zero-PII Statement of this partner-month; its quarantine.

    The signature is not checked here: certificates are copied into the bundle byte for
    byte, and the partner verifies them (and the manifest naming their digests) offline.
    """
    try:
        envelope = Envelope.model_validate_json(data)
        stmt = Statement.model_validate_json(base64.b64decode(envelope.payload, validate=True))
        predicate = stmt.predicate
        quarantined = predicate["counts"]["quarantined"]
    except (ValueError, KeyError, TypeError):
        raise MonthObjectsError(f"{key[:160]}: not a zero-PII certificate") from None
    if stmt.predicate_type != ZERO_PII_PREDICATE:
        raise MonthObjectsError(f"{key[:160]}: predicateType is not zero-PII")
    if predicate.get("partner") != partner or predicate.get("month") != month:
        raise MonthObjectsError(f"{key[:160]}: certificate is for another partner-month")
    if not isinstance(quarantined, int) or isinstance(quarantined, bool) or quarantined < 0:
        raise MonthObjectsError(f"{key[:160]}: counts.quarantined is not a count")
    return quarantined


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
        quarantined = read_certificate_facts(path.read_bytes(), partner, month, key)
        return Certificate(key, batch_id, path, quarantined)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="bundle-cert") as pool:
        return list(pool.map(fetch, keys))
