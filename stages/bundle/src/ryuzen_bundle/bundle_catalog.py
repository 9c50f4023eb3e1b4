"""What a partner may download: its delivered bundles, per the bundle state and S3.

A bundle is available for a partner-month when

* the month's bundle state is ``DELIVERED`` or ``CLEANED`` (cleanup deletes the month's
  working telemetry, never the bundle). A month still ``BUILDING`` or ``BUILT`` is not
  offered: its object may be a half-written rebuild, or one whose checksum has not been
  verified yet; and an object with no state at all was not delivered by the builder;
* and the object ``bundle_key(partner, month)`` exists and carries the whole-object
  SHA-256 the builder stores in its user metadata ``sha256`` (the builder adds it only
  after the upload completed).

Its ``created_at`` is the state's ``delivered_at`` (the builder's commit time), which no
later write changes; the S3 ``LastModified`` of the bundle (its metadata self-copy) only
stands in for a state that does not record it.

A ``CLEANED`` month also has a deletion receipt beside the bundle
(``deletion_receipt_key``): it is offered when the object exists and the ``CLEANED``
state records its SHA-256 (cleanup's ``receipt_sha256``, the digest of the bytes it
stored, written only after the receipt). The digest comes from the state rather than S3's
own checksum because reading an SSE-KMS object's checksum (``ChecksumMode``) takes
``kms:Decrypt``, which the pull function does not hold; a plain ``HeadObject`` does not.

Every key is formed from the caller's own partner id, so no input can address another
partner's objects — and a month of another partner is simply a key that does not exist
under this partner's prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from ryuzen_contracts.bundle_state import BundleState, BundleStateRecord, BundleStateStore
from ryuzen_contracts.key_layout import (
    bundle_key,
    deletion_receipt_key,
    validate_month,
    validate_partner_id,
)

SHA256_METADATA = "sha256"
# Attributes of the bundle state: the builder's delivery time, cleanup's receipt digest.
DELIVERED_AT_ATTRIBUTE = "delivered_at"
RECEIPT_SHA256_ATTRIBUTE = "receipt_sha256"
AVAILABLE_STATES = frozenset({BundleState.DELIVERED, BundleState.CLEANED})
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class BundleInfo:
    """One available bundle."""

    partner: str
    month: str
    key: str
    bytes: int
    sha256: str
    created_at: datetime
    cleaned: bool = False
    # The CLEANED state's digest of the deletion receipt; None before cleanup.
    receipt_sha256: str | None = None

    def listing(self) -> dict[str, Any]:
        """The entry of ``GET /v1/bundles``."""
        return {
            "month": self.month,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "created_at": self.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cleaned": self.cleaned,
        }


@dataclass(frozen=True)
class ReceiptInfo:
    """The deletion receipt of one cleaned bundle."""

    key: str
    bytes: int
    sha256: str


def partner_bundles_prefix(partner: str) -> str:
    """``{p}/``: every month of one partner (key_layout has per-month prefixes only)."""
    return f"{validate_partner_id(partner)}/"


def find_bundle(
    s3: Any, states: BundleStateStore, bucket: str, partner: str, month: str
) -> BundleInfo | None:
    """The partner's bundle for ``month``, or None when none is available (see above).

    ``month`` must be valid (``validate_month``); DynamoDB and other S3 errors propagate.
    """
    key = bundle_key(partner, validate_month(month))
    record = states.get(partner, month)
    if record is None or record.state not in AVAILABLE_STATES:
        return None
    head = _head_or_none(s3, bucket, key)
    if head is None:
        return None
    sha256 = str((head.get("Metadata") or {}).get(SHA256_METADATA, "")).lower()
    if not _SHA256_RE.fullmatch(sha256):
        return None
    cleaned = record.state is BundleState.CLEANED
    return BundleInfo(
        partner=partner,
        month=month,
        key=key,
        bytes=int(head["ContentLength"]),
        sha256=sha256,
        created_at=_delivered_at(record) or head["LastModified"],
        cleaned=cleaned,
        receipt_sha256=_receipt_sha256(record) if cleaned else None,
    )


def find_receipt(s3: Any, bucket: str, bundle: BundleInfo) -> ReceiptInfo | None:
    """The deletion receipt beside ``bundle``, or None when none is offered (see above).

    S3 errors other than a missing object propagate.
    """
    if not bundle.cleaned or bundle.receipt_sha256 is None:
        return None
    key = deletion_receipt_key(bundle.partner, bundle.month)
    head = _head_or_none(s3, bucket, key)
    if head is None:
        return None
    return ReceiptInfo(key=key, bytes=int(head["ContentLength"]), sha256=bundle.receipt_sha256)


def list_bundles(s3: Any, states: BundleStateStore, bucket: str, partner: str) -> list[BundleInfo]:
    """Every available bundle of ``partner``, oldest month first."""
    prefix = partner_bundles_prefix(partner)
    months = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            month = _month_of_bundle_key(item["Key"], partner)
            if month is not None:
                months.append(month)
    # The bucket says which months might have a bundle, the state which of them are offered.
    found = (find_bundle(s3, states, bucket, partner, month) for month in sorted(set(months)))
    return [bundle for bundle in found if bundle is not None]


def _head_or_none(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """HeadObject's answer, or None when the object does not exist (other errors raise)."""
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) in _NOT_FOUND_CODES:
            return None
        raise


def _delivered_at(record: BundleStateRecord) -> datetime | None:
    value = record.attributes.get(DELIVERED_AT_ATTRIBUTE)
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)  # iso_millis: "...T05:00:00.123Z"
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _receipt_sha256(record: BundleStateRecord) -> str | None:
    value = record.attributes.get(RECEIPT_SHA256_ATTRIBUTE)
    return value if isinstance(value, str) and _SHA256_RE.fullmatch(value) else None


def _month_of_bundle_key(key: str, partner: str) -> str | None:
    # Only the exact key the layout gives for some month counts (not a stray object).
    parts = key.split("/")
    if len(parts) != 3:
        return None
    try:
        month = validate_month(parts[1])
    except ValueError:
        return None
    return month if bundle_key(partner, month) == key else None
