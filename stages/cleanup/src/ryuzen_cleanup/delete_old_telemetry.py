"""Deleting one partner-month's working telemetry once its bundle is confirmed delivered.

``clean_partner_month`` is the whole job; the Lambda handler and the tests call it with
injected clients. The order makes every crash safe to heal by redelivering the event:

1. the bundle state decides: ``CLEANED`` → nothing to do (a redelivery changes nothing);
   ``BUILT`` → NotDeliveredYet, retried (the builder emits the event just before it
   writes ``DELIVERED``); absent or ``BUILDING``, or ``DELIVERED`` without a verified
   checksum of *this* bundle → an ``ERROR`` audit event, and nothing is deleted;
2. delete the SANITIZED prefix (Parquet and certificates) and the ANALYTICS prefix of the
   partner-month — nothing else — and list both again to prove them empty;
3. write the signed deletion receipt beside the bundle (or keep the one an interrupted
   earlier run wrote, when this run found nothing left to delete);
4. audit ``TELEMETRY_DELETED`` (its key derives from the receipt, so a rerun stores it once);
5. move the state ``DELIVERED → CLEANED``: the commit point.

Each side effect runs as a named step (``pipeline_steps.step``: ``read_state``,
``audit_refusal``, ``delete_analytics``, ``delete_sanitized``, ``prove_empty``,
``read_receipt``, ``sign_receipt``, ``write_receipt``, ``audit_deleted``,
``mark_cleaned``), so the handler's ``ERROR`` audit event says where a failure happened.

RAW is not touched: its keys (``raw/{yyyy}/{mm}/{dd}/{hh}/{batch}``) name no partner,
and one RAW batch can hold several partners' events, so no RAW key is "this partner-
month's". Sanitize deletes RAW as it consumes it; the retention sweep removes stragglers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ryuzen_contracts.attestation import Signer
from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog, iso_millis
from ryuzen_contracts.bundle_state import (
    BundleState,
    BundleStateRecord,
    BundleStateStore,
)
from ryuzen_contracts.key_layout import analytics_prefix, deletion_receipt_key, sanitized_prefix
from ryuzen_contracts.pipeline_steps import step

from ryuzen_cleanup.bundle_delivered import BundleDelivered
from ryuzen_cleanup.deletion_receipt import (
    DeletionFacts,
    StoredReceipt,
    read_receipt,
    receipt,
    store_receipt,
)
from ryuzen_cleanup.prefix_deletion import (
    KeyDigest,
    Prefix,
    RetryPolicy,
    delete_prefix,
    prove_empty,
)

STAGE = "cleanup"


class Outcome(StrEnum):
    """What one ``BundleDelivered`` event led to."""

    CLEANED = "CLEANED"
    ALREADY_CLEANED = "ALREADY_CLEANED"
    REFUSED = "REFUSED"


class NotDeliveredYet(RuntimeError):  # noqa: N818 -- reads as what happened
    """The bundle is ``BUILT`` but not yet ``DELIVERED``: retry the event shortly."""


@dataclass(frozen=True)
class CleanupTarget:
    """The buckets cleanup reads and writes."""

    sanitized_bucket: str
    analytics_bucket: str
    bundles_bucket: str

    def working_prefixes(self, partner: str, month: str) -> dict[str, Prefix]:
        """The partner-month's prefixes by role, in ascending prefix order (``KeyDigest``)."""
        prefixes = {
            "analytics": Prefix(self.analytics_bucket, analytics_prefix(partner, month)),
            "sanitized": Prefix(self.sanitized_bucket, sanitized_prefix(partner, month)),
        }
        return dict(sorted(prefixes.items(), key=lambda item: item[1].prefix))


@dataclass(frozen=True)
class CleanupServices:
    """Injected clients and stores."""

    s3: Any
    audit: AuditLog
    states: BundleStateStore
    signer: Signer


@dataclass(frozen=True)
class CleanupReport:
    """What happened, in counts and digests (safe to log)."""

    partner: str
    month: str
    outcome: Outcome
    objects_deleted: dict[str, int] = field(default_factory=dict)  # by role, this run
    receipt_sha256: str | None = None
    kept_existing_receipt: bool = False
    refusal: str | None = None

    def log_fields(self) -> dict[str, Any]:
        """The report as structured log fields."""
        return {
            "partner": self.partner,
            "month": self.month,
            "outcome": self.outcome.value,
            "objects_deleted": self.objects_deleted,
            "receipt_sha256": self.receipt_sha256,
            "kept_existing_receipt": self.kept_existing_receipt,
            "refusal": self.refusal,
        }


def clean_partner_month(
    services: CleanupServices,
    target: CleanupTarget,
    event: BundleDelivered,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    policy: RetryPolicy | None = None,
) -> CleanupReport:
    """Delete the partner-month's working telemetry if, and only if, its bundle is delivered."""
    partner, month = event.partner, event.month
    with step("read_state"):
        record = services.states.get(partner, month)
        if record is not None and record.state is BundleState.CLEANED:
            return CleanupReport(partner, month, Outcome.ALREADY_CLEANED)
        if record is not None and record.state is BundleState.BUILT:
            raise NotDeliveredYet(f"bundle {partner} {month} is BUILT, not yet DELIVERED")
    refusal = _refusal(record, event)
    if refusal is not None:
        with step("audit_refusal"):
            services.audit.write(
                AuditEvent(
                    event_type=AuditEventType.ERROR,
                    stage=STAGE,
                    partner=partner,
                    month=month,
                    occurred_at=now(),
                    detail={
                        "step": "read_state",
                        "error": refusal,
                        "state": record.state.value if record else "NONE",
                        "bundle_key": event.bundle_key,
                    },
                )
            )
        return CleanupReport(partner, month, Outcome.REFUSED, refusal=refusal)
    assert record is not None  # a month without state is refused above

    prefixes = target.working_prefixes(partner, month)
    digest = KeyDigest()
    deleted: dict[str, int] = {}
    for role, prefix in prefixes.items():
        with step(f"delete_{role}"):
            deleted[role] = delete_prefix(services.s3, prefix, digest, policy or RetryPolicy())
    with step("prove_empty"):
        prove_empty(services.s3, prefixes.values())

    stored, kept = _receipt(services, target, event, prefixes, deleted, digest, now())
    with step("audit_deleted"):
        _audit_deleted(services.audit, target, event, prefixes, stored)
    with step("mark_cleaned"):
        try:
            services.states.transition(
                partner,
                month,
                BundleState.CLEANED,
                attributes={"receipt_sha256": stored.sha256, "cleaned_at": iso_millis(now())},
                now=now(),
                # On the version the delete decision read: a forced rebuild delivered since
                # must not be marked CLEANED with this (older) bundle's receipt.
                expected_version=record.version,
            )
        except Exception:
            # Two deliveries of the event ran at once and the other committed first, or
            # this run's own write landed and only its answer was lost (a timeout or a 5xx
            # after the commit; botocore's retry then fails the condition, or fails again):
            # the month is cleaned either way. Anything else is a real failure: retry.
            if not _is_cleaned(services.states, partner, month):
                raise
    return CleanupReport(
        partner,
        month,
        Outcome.CLEANED,
        objects_deleted=deleted,
        receipt_sha256=stored.sha256,
        kept_existing_receipt=kept,
    )


def _is_cleaned(states: BundleStateStore, partner: str, month: str) -> bool:
    """Whether the month reads CLEANED now (False when even the read-back fails)."""
    try:
        current = states.get(partner, month)
    except Exception:
        return False
    return current is not None and current.state is BundleState.CLEANED


def _refusal(record: BundleStateRecord | None, event: BundleDelivered) -> str | None:
    """Why this month must not be cleaned, or None when it may."""
    if record is None:
        return "no_bundle_state"
    if record.state is not BundleState.DELIVERED:
        return "not_delivered"
    # The store already refuses DELIVERED without these; checked again because this is
    # the last gate before an irreversible delete.
    if record.attributes.get("checksum_verified") is not True:
        return "checksum_not_verified"
    if record.attributes.get("sha256") != event.sha256:
        # An event of an earlier delivery (the month was rebuilt since): the current
        # delivery's own event cleans the month.
        return "bundle_mismatch"
    return None


def _receipt(
    services: CleanupServices,
    target: CleanupTarget,
    event: BundleDelivered,
    prefixes: dict[str, Prefix],
    deleted: dict[str, int],
    digest: KeyDigest,
    deleted_at: datetime,
) -> tuple[StoredReceipt, bool]:
    """The receipt to record, and whether it is one an earlier run already wrote.

    A rerun that found nothing to delete keeps an earlier receipt of the same bundle: that
    one counted the objects, a new one would say zero. A run that did delete something
    writes a new receipt, naming the one it replaces (and its counts) under ``supersedes``.
    """
    with step("read_receipt"):
        existing = read_receipt(services.s3, target.bundles_bucket, event.partner, event.month)
    earlier = existing.predicate if existing is not None else None
    same_bundle = earlier is not None and _bundle_sha256(earlier) == event.sha256
    if existing is not None and same_bundle and digest.count == 0:
        return existing, True
    by_bucket: dict[str, int] = {}
    for role, prefix in prefixes.items():
        by_bucket[prefix.bucket] = by_bucket.get(prefix.bucket, 0) + deleted[role]
    facts = DeletionFacts(
        partner=event.partner,
        month=event.month,
        bundle_key=event.bundle_key,
        bundle_sha256=event.sha256,
        proven_empty=tuple(prefixes.values()),
        objects_deleted=by_bucket,
        deleted_keys_sha256=digest.hexdigest(),
        deleted_at=deleted_at,
        supersedes=(
            None
            if existing is None or earlier is None
            else {
                "receipt_sha256": existing.sha256,
                "bundle_sha256": _bundle_sha256(earlier),
                "objects_deleted": earlier.get("objects_deleted"),
                "deleted_keys_sha256": earlier.get("deleted_keys_sha256"),
                "deleted_at": earlier.get("deleted_at"),
            }
        ),
    )
    with step("sign_receipt"):
        envelope = receipt(facts, services.signer)
    with step("write_receipt"):
        stored = store_receipt(
            services.s3,
            target.bundles_bucket,
            event.partner,
            event.month,
            envelope,
            replacing=existing,
        )
    return stored, False


def _audit_deleted(
    audit: AuditLog,
    target: CleanupTarget,
    event: BundleDelivered,
    prefixes: dict[str, Prefix],
    stored: StoredReceipt,
) -> None:
    """``TELEMETRY_DELETED``, a pure function of the receipt: a rerun writes the same item."""
    predicate = stored.predicate
    if predicate is None:
        raise RuntimeError("the receipt to audit is not a deletion receipt of this month")
    by_bucket = predicate.get("objects_deleted") or {}
    deleted_at = datetime.fromisoformat(str(predicate["deleted_at"]).replace("Z", "+00:00"))
    audit.write(
        AuditEvent(
            event_type=AuditEventType.TELEMETRY_DELETED,
            stage=STAGE,
            partner=event.partner,
            month=event.month,
            occurred_at=deleted_at,
            event_id=stored.sha256,
            detail={
                # Bucket names are not valid detail keys; roles are (one bucket each).
                "objects_deleted": {
                    role: int(by_bucket.get(prefix.bucket, 0)) for role, prefix in prefixes.items()
                },
                "objects_deleted_total": int(predicate.get("objects_deleted_total", 0)),
                "deleted_keys_sha256": str(predicate.get("deleted_keys_sha256")),
                "already_empty": bool(predicate.get("already_empty")),
                "receipt_key": deletion_receipt_key(event.partner, event.month),
                "receipt_sha256": stored.sha256,
                "bundle_sha256": event.sha256,
            },
        )
    )


def _bundle_sha256(predicate: dict[str, Any]) -> str | None:
    bundle = predicate.get("bundle")
    return str(bundle.get("sha256")) if isinstance(bundle, dict) else None
