"""The deletion receipt: a signed in-toto Statement that a partner-month's telemetry is gone.

Its one subject is the delivered bundle (key and SHA-256), so the receipt names the
delivery it follows. Its predicate (``DELETION_PREDICATE``) states the prefixes proven
empty, how many objects this run deleted per bucket, a SHA-256 over the sorted,
newline-joined list of the deleted keys, and when. It is DSSE-signed like the zero-PII
certificates and stored beside the bundle (``key_layout.deletion_receipt_key``), where
the partner checks it offline with ``ryuzen_contracts.attestation.verify``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from ryuzen_contracts.attestation import (
    DELETION_PREDICATE,
    Envelope,
    Signer,
    sha256_hex,
    sign,
    statement,
    subject,
)
from ryuzen_contracts.audit_log import iso_millis
from ryuzen_contracts.key_layout import deletion_receipt_key

from ryuzen_cleanup.prefix_deletion import Prefix

RECEIPT_CONTENT_TYPE = "application/json"
# S3's answers to a conditional put that lost: the object changed (412), or another
# conditional write to the same key was in flight (409).
_LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict"}


class ReceiptConflict(RuntimeError):  # noqa: N818 -- reads as what happened
    """Another cleanup run wrote the receipt meanwhile; retrying the event settles it."""


@dataclass(frozen=True)
class DeletionFacts:
    """Everything one receipt states."""

    partner: str
    month: str
    bundle_key: str
    bundle_sha256: str
    proven_empty: tuple[Prefix, ...]
    objects_deleted: dict[str, int]  # bucket -> objects this run deleted
    deleted_keys_sha256: str
    deleted_at: datetime
    # The previous receipt this one replaces: only when objects appeared (and were
    # deleted) after an earlier run had already written its receipt.
    supersedes: dict[str, Any] | None = None


@dataclass(frozen=True)
class StoredReceipt:
    """A receipt as found in the bundle bucket, read back without verifying it.

    Only cleanup writes that key (its role is the only one allowed to), so reading it
    back for its counts needs no signature check; ``predicate`` is None when the object
    is not a deletion receipt of this partner-month at all.
    """

    body: bytes
    etag: str
    predicate: dict[str, Any] | None

    @property
    def sha256(self) -> str:
        """SHA-256 of the stored envelope bytes: the digest the audit event records."""
        return sha256_hex(self.body)


def receipt(facts: DeletionFacts, signer: Signer) -> Envelope:
    """Build and sign the receipt."""
    predicate: dict[str, Any] = {
        "partner": facts.partner,
        "month": facts.month,
        "bundle": {"key": facts.bundle_key, "sha256": facts.bundle_sha256},
        "prefixes_proven_empty": [
            {"bucket": target.bucket, "prefix": target.prefix} for target in facts.proven_empty
        ],
        "objects_deleted": dict(sorted(facts.objects_deleted.items())),
        "objects_deleted_total": sum(facts.objects_deleted.values()),
        "deleted_keys_sha256": facts.deleted_keys_sha256,
        # True when this run found every prefix already empty: it deleted nothing, so it
        # cannot vouch for what an interrupted earlier run may have deleted (README).
        "already_empty": sum(facts.objects_deleted.values()) == 0,
        "deleted_at": iso_millis(facts.deleted_at),
    }
    if facts.supersedes is not None:
        predicate["supersedes"] = facts.supersedes
    subjects = [subject(facts.bundle_key, sha256=facts.bundle_sha256)]
    return sign(statement(subjects, DELETION_PREDICATE, predicate), signer)


def read_receipt(s3: Any, bucket: str, partner: str, month: str) -> StoredReceipt | None:
    """The receipt already stored for the partner-month, or None when there is none."""
    try:
        response = s3.get_object(Bucket=bucket, Key=deletion_receipt_key(partner, month))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return None
        raise
    body = response["Body"].read()
    return StoredReceipt(body, str(response["ETag"]), _predicate_of(body, partner, month))


def store_receipt(
    s3: Any,
    bucket: str,
    partner: str,
    month: str,
    envelope: Envelope,
    *,
    replacing: StoredReceipt | None,
) -> StoredReceipt:
    """Write the receipt: only if none exists, or only over the exact one read before.

    The conditional put means two runs racing on the same month can never silently
    overwrite each other's receipt; the loser raises ReceiptConflict and is retried.
    """
    body = envelope.to_json_bytes()
    condition = {"IfMatch": replacing.etag} if replacing else {"IfNoneMatch": "*"}
    try:
        response = s3.put_object(
            Bucket=bucket,
            Key=deletion_receipt_key(partner, month),
            Body=body,
            ContentType=RECEIPT_CONTENT_TYPE,
            ChecksumAlgorithm="SHA256",
            **condition,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _LOST_RACE:
            raise ReceiptConflict(f"the deletion receipt of {partner} {month} changed") from None
        raise
    return StoredReceipt(body, str(response["ETag"]), _predicate_of(body, partner, month))


def _predicate_of(body: bytes, partner: str, month: str) -> dict[str, Any] | None:
    try:
        envelope = Envelope.model_validate_json(body)
        document = json.loads(base64.b64decode(envelope.payload, validate=True))
    except ValueError:  # pydantic's ValidationError, bad base64 and bad JSON are all ValueErrors
        return None
    if not isinstance(document, dict) or document.get("predicateType") != DELETION_PREDICATE:
        return None
    predicate = document.get("predicate")
    if (
        not isinstance(predicate, dict)
        or predicate.get("partner") != partner
        or predicate.get("month") != month
    ):
        return None
    return predicate
