"""The RAW object: one gzip NDJSON file per accepted request, written with a SHA-256 checksum.

Each line is ``{"receipt":{...},"event":<the event's original JSON text>}``. The event
text is never re-serialised (the sanitize stage must still see duplicate keys), and the
receipt says who sent it and when ingest accepted it, which decides the partner-month.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from isal import isal_zlib
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import raw_key
from ryuzen_contracts.pipeline_steps import step

RAW_SCHEMA = "ryuzen.raw.v1"
# ISA-L level 1 compresses RAW NDJSON better than zlib level 1 at about 5x its speed
# (bench/ingest_bench.py prints both); RAW lives minutes, so speed wins over ratio.
GZIP_LEVEL = 1
RAW_CONTENT_TYPE = "application/gzip"


@dataclass(frozen=True, slots=True)
class RawBatch:
    """A RAW object S3 has confirmed."""

    batch_id: str
    key: str
    received_at: datetime
    accepted: int
    size: int


class RawWriteError(Exception):
    """S3 did not confirm the write; ``s3_error_code`` is the error code (or exception name)."""

    def __init__(self, batch_id: str, s3_error_code: str) -> None:
        super().__init__(f"RAW write of batch {batch_id} failed: {s3_error_code}")
        self.batch_id = batch_id
        self.s3_error_code = s3_error_code


def rfc3339_millis(moment: datetime) -> str:
    """``2026-11-28T05:00:00.123Z``.

    The same spelling as ``audit_log.iso_millis``; not imported from there because that
    module pulls pydantic into the cold start of every ingest request.
    """
    at = moment.astimezone(UTC)
    return f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z"


def build_ndjson(texts: Sequence[str], partners: Sequence[str], receipt: dict[str, Any]) -> bytes:
    """The uncompressed NDJSON: one line per event, each ending in a newline.

    ``receipt`` is shared by every line; only ``partner`` varies, so each partner's line
    prefix is serialised once per batch instead of once per event.
    """
    if len(texts) != len(partners):
        raise ValueError("one partner per event is required")
    prefixes = {
        partner: '{"receipt":'
        + json.dumps({**receipt, "partner": partner, "schema": RAW_SCHEMA}, separators=(",", ":"))
        + ',"event":'
        for partner in set(partners)
    }
    lines = [prefixes[partner] + text for partner, text in zip(partners, texts, strict=True)]
    return ("}\n".join(lines) + "}\n").encode("utf-8")


def gzip_bytes(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """One standard gzip member (mtime 0, so equal input gives equal bytes); ISA-L level 0-3."""
    compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def put_raw_object(
    s3: Any, bucket: str, key: str, body: bytes, *, metadata: dict[str, str]
) -> None:
    """PUT with a SHA-256 checksum S3 verifies; RawWriteError when S3 does not confirm.

    Any failure of the call is one: an AWS error (its code), a botocore error, or anything
    else that escapes the client (its type) — none of them confirmed the write, and the
    caller must be told to retry rather than get a 500 it may not retry.
    """
    from botocore.exceptions import ClientError  # botocore is loaded by now

    checksum = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=RAW_CONTENT_TYPE,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=checksum,
            Metadata=metadata,
        )
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code") or "ClientError")
        raise RawWriteError(metadata.get("batch-id", ""), code) from None
    except Exception as error:
        raise RawWriteError(metadata.get("batch-id", ""), type(error).__name__) from None


def write_raw_batch(
    s3: Any,
    bucket: str,
    *,
    texts: Sequence[str],
    partners: Sequence[str],
    client_id: str,
    request_id: str | None,
    now: datetime | None = None,
) -> RawBatch:
    """Write one RAW object for an accepted request and return it once S3 confirmed it."""
    received_at = (now or datetime.now(UTC)).astimezone(UTC)
    batch_id = new_ulid(received_at)
    key = raw_key(received_at, batch_id)
    receipt = {
        "batch_id": batch_id,
        "received_at": rfc3339_millis(received_at),
        "client_id": client_id,
        "request_id": request_id,
    }
    body = gzip_bytes(build_ndjson(texts, partners, receipt))
    metadata = {
        "schema": RAW_SCHEMA,
        "batch-id": batch_id,
        "client-id": client_id,
        "event-count": str(len(texts)),
    }
    with step("write_raw"):
        put_raw_object(s3, bucket, key, body, metadata=metadata)
    return RawBatch(batch_id, key, received_at, len(texts), len(body))
