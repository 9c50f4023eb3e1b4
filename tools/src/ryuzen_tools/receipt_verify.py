"""Offline verification of a deletion receipt, with only the public key.

Once a partner-month's bundle is delivered, cleanup deletes the month's working telemetry,
lists the prefixes again to prove them empty, and writes
``{partner}/{yyyy-mm}/deletion-receipt.dsse.json`` beside the bundle: a DSSE envelope
around an in-toto Statement (predicate ``DELETION_PREDICATE``) whose one subject is the
delivered bundle. Checked, in this order, each failure a ``VerificationError`` naming the
check:

1. the signature, key id, statement type and predicate type (``verify_attestation``);
2. the predicate names a valid partner and month — the expected ones, when given;
3. its one subject is that partner-month's bundle key, with the SHA-256 the predicate's
   ``bundle`` states;
4. the prefixes it proves empty are exactly that partner-month's SANITIZED and ANALYTICS
   prefixes (a receipt for other prefixes says nothing about this month), and its counts
   add up;
5. given the bundle (the ZIP, or its SHA-256), that it is the bundle the receipt follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ryuzen_contracts.attestation import DELETION_PREDICATE, VerificationError, sha256_hex
from ryuzen_contracts.key_layout import (
    InvalidKeyPart,
    analytics_prefix,
    bundle_key,
    sanitized_prefix,
    validate_month,
    validate_partner_id,
)

from ryuzen_tools.verify_attestation import (
    check_subject_digest,
    file_sha256,
    read_input,
    verify_attestation,
)

__all__ = ["ReceiptVerification", "VerificationError", "verify_receipt", "verify_receipt_file"]


@dataclass(frozen=True)
class ReceiptVerification:
    """What a verified deletion receipt states."""

    partner: str
    month: str
    key_id: str
    receipt_sha256: str
    bundle_key: str
    bundle_sha256: str
    # The file (or "sha256") the bundle was checked against; None when it was not given.
    bundle_checked: str | None
    prefixes_proven_empty: list[dict[str, str]]
    objects_deleted: dict[str, int]
    objects_deleted_total: int
    deleted_keys_sha256: Any
    already_empty: bool
    deleted_at: Any
    supersedes: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready facts, ``ok: true``."""
        return {
            "ok": True,
            "partner": self.partner,
            "month": self.month,
            "key_id": self.key_id,
            "receipt_sha256": self.receipt_sha256,
            "bundle": {"key": self.bundle_key, "sha256": self.bundle_sha256},
            "bundle_checked": self.bundle_checked,
            "prefixes_proven_empty": self.prefixes_proven_empty,
            "objects_deleted": self.objects_deleted,
            "objects_deleted_total": self.objects_deleted_total,
            "deleted_keys_sha256": self.deleted_keys_sha256,
            "already_empty": self.already_empty,
            "deleted_at": self.deleted_at,
            "supersedes": self.supersedes,
        }


def verify_receipt_file(
    receipt_path: Path,
    public_key_path: Path,
    *,
    partner: str | None = None,
    month: str | None = None,
    bundle_path: Path | None = None,
) -> ReceiptVerification:
    """``verify_receipt`` on files: the receipt, the PEM public key and, optionally, the ZIP."""
    envelope = read_input(receipt_path, "receipt")
    public_key = read_input(public_key_path, "public key")
    bundle_sha256 = None if bundle_path is None else file_sha256(bundle_path)
    return verify_receipt(
        envelope,
        public_key,
        partner=partner,
        month=month,
        bundle_sha256=bundle_sha256,
        bundle_label=None if bundle_path is None else str(bundle_path),
    )


def verify_receipt(
    envelope_bytes: bytes,
    public_key_pem: bytes,
    *,
    partner: str | None = None,
    month: str | None = None,
    bundle_sha256: str | None = None,
    bundle_label: str | None = None,
) -> ReceiptVerification:
    """Verify a receipt; raise VerificationError naming the first failed check.

    ``partner``/``month``: what the caller expects the receipt to be for.
    ``bundle_sha256``: the SHA-256 of the bundle it must follow (``bundle_label`` names
    that bundle in a failure, e.g. the ZIP's path).
    """
    verified = verify_attestation(envelope_bytes, public_key_pem, predicate_type=DELETION_PREDICATE)
    stmt = verified.statement
    predicate = stmt.predicate
    receipt_partner, receipt_month = _partner_and_month(predicate)
    if partner is not None and receipt_partner != partner:
        raise VerificationError(
            f"the receipt is for partner {receipt_partner!r}, expected {partner!r}"
        )
    if month is not None and receipt_month != month:
        raise VerificationError(f"the receipt is for month {receipt_month}, expected {month}")

    expected_key = bundle_key(receipt_partner, receipt_month)
    bundle = predicate.get("bundle")
    if not isinstance(bundle, dict) or bundle.get("key") != expected_key:
        raise VerificationError(
            f"the receipt's bundle is not {expected_key}, the bundle of its partner-month"
        )
    stated_sha256 = bundle.get("sha256")
    if [item.name for item in stmt.subject] != [expected_key]:
        raise VerificationError(f"the receipt's subject is not the one bundle {expected_key}")
    if not isinstance(stated_sha256, str):
        raise VerificationError("the receipt's bundle has no sha256")
    check_subject_digest(stmt, expected_key, stated_sha256, "the receipt's bundle")

    prefixes = _proven_empty(predicate, receipt_partner, receipt_month)
    objects_deleted, total = _counts(predicate)

    if bundle_sha256 is not None:
        check_subject_digest(stmt, expected_key, bundle_sha256, bundle_label or "the bundle")
    return ReceiptVerification(
        partner=receipt_partner,
        month=receipt_month,
        key_id=verified.key_id,
        receipt_sha256=sha256_hex(envelope_bytes),
        bundle_key=expected_key,
        bundle_sha256=stated_sha256,
        bundle_checked=None if bundle_sha256 is None else (bundle_label or "sha256"),
        prefixes_proven_empty=prefixes,
        objects_deleted=objects_deleted,
        objects_deleted_total=total,
        deleted_keys_sha256=predicate.get("deleted_keys_sha256"),
        already_empty=predicate.get("already_empty") is True,
        deleted_at=predicate.get("deleted_at"),
        supersedes=_mapping_or_none(predicate.get("supersedes")),
    )


def _partner_and_month(predicate: dict[str, Any]) -> tuple[str, str]:
    try:
        return (
            validate_partner_id(predicate.get("partner")),  # type: ignore[arg-type]
            validate_month(predicate.get("month")),  # type: ignore[arg-type]
        )
    except InvalidKeyPart as error:
        raise VerificationError(f"the receipt: {error}") from None


def _proven_empty(predicate: dict[str, Any], partner: str, month: str) -> list[dict[str, str]]:
    """The predicate's prefixes, which must be the partner-month's two working prefixes."""
    listed = predicate.get("prefixes_proven_empty")
    if not isinstance(listed, list) or not all(
        isinstance(item, dict)
        and isinstance(item.get("bucket"), str)
        and isinstance(item.get("prefix"), str)
        for item in listed
    ):
        raise VerificationError("the receipt's prefixes_proven_empty is not a list of prefixes")
    stated = sorted(item["prefix"] for item in listed)
    expected = sorted([sanitized_prefix(partner, month), analytics_prefix(partner, month)])
    if stated != expected:
        raise VerificationError(
            f"the receipt proves {stated} empty, not {partner} {month}'s working prefixes "
            f"{expected}"
        )
    return [{"bucket": item["bucket"], "prefix": item["prefix"]} for item in listed]


def _counts(predicate: dict[str, Any]) -> tuple[dict[str, int], int]:
    objects_deleted = predicate.get("objects_deleted")
    total = predicate.get("objects_deleted_total")
    if (
        not isinstance(objects_deleted, dict)
        or not all(_is_count(value) for value in objects_deleted.values())
        or not _is_count(total)
    ):
        raise VerificationError("the receipt's objects_deleted counts are malformed")
    if sum(objects_deleted.values()) != total:
        raise VerificationError(
            f"the receipt's objects_deleted_total {total} is not the sum of objects_deleted"
        )
    return dict(objects_deleted), int(total)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _mapping_or_none(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None
