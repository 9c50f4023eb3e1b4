"""The demo's cleanup round: every delivered partner-month cleaned, proven and audited.

Each delivery's ``BundleDelivered`` event reaches the cleanup stage through the stack's
EventBridge rule and its queue. For every partner whose bundle was delivered, this round
checks the end state from the outside, trusting no counter of the stage:

1. it waits until the month's bundle state is ``CLEANED`` (cleanup's commit point);
2. the month's audit trail (``audit_trail.read_trail``) must be ``complete``:
   ``BUNDLE_CREATED``, ``BUNDLE_DELIVERED`` and ``TELEMETRY_DELETED`` all recorded;
3. the deletion receipt beside the bundle (``key_layout.deletion_receipt_key``) is
   obtained as the partner obtains it — ``GET /v1/bundles/{month}`` with the partner's
   key must offer it (``receipt``), for that very key, and its presigned URL must serve
   it through the verifying proxy with the announced size and SHA-256 — then verified
   offline with the published key, for that partner, month and the bundle that was
   delivered (``receipt_verify.py``); its SHA-256 must be the one the ``CLEANED`` state
   records;
4. the month's SANITIZED and ANALYTICS prefixes are listed: both must hold no object.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from ryuzen_contracts.audit_log import AuditLog
from ryuzen_contracts.bundle_state import BundleState, BundleStateStore
from ryuzen_contracts.key_layout import analytics_prefix, deletion_receipt_key, sanitized_prefix

from ryuzen_tools.audit_trail import Trail, read_trail
from ryuzen_tools.bundle_fetch import RECEIPT_SUFFIX, FetchError, download_receipt, request_bundle
from ryuzen_tools.local_stack.aws import LocalClients
from ryuzen_tools.local_stack.status import count_objects
from ryuzen_tools.receipt_verify import VerificationError, verify_receipt


@dataclass
class PartnerCleanup:
    """What the stack shows about one delivered partner-month after cleanup."""

    partner: str
    month: str
    bundle_sha256: str
    state: str | None = None
    cleaned_after_s: float | None = None
    trail: Trail | None = None
    receipt: dict[str, Any] | None = None
    receipt_path: Path | None = None
    # Objects left under the month's prefix, by working bucket role (all must be 0).
    remaining_objects: dict[str, int] = field(default_factory=dict)
    prefixes_listed: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def fail(self, reason: str) -> None:
        """Record ``reason`` unless an earlier check already failed (the first one says why)."""
        if self.error is None:
            self.error = reason

    def to_dict(self, out_dir: Path | None) -> dict[str, Any]:
        """The summary's entry (``receipt.path`` relative to ``out_dir`` when it was kept)."""
        receipt = None
        if self.receipt is not None:
            path = None
            if self.receipt_path is not None and out_dir is not None:
                path = str(self.receipt_path.relative_to(out_dir))
            receipt = {**self.receipt, "path": path}
        return {
            "ok": self.error is None,
            "month": self.month,
            "bundle_sha256": self.bundle_sha256,
            "state": self.state,
            "cleaned_after_s": (
                None if self.cleaned_after_s is None else round(self.cleaned_after_s, 2)
            ),
            "trail": None if self.trail is None else self.trail.to_dict(),
            "trail_verdict": None if self.trail is None else self.trail.verdict,
            "receipt": receipt,
            "remaining_objects": self.remaining_objects,
            "prefixes_listed": self.prefixes_listed,
            "error": self.error,
        }


@dataclass(frozen=True)
class CleanupRound:
    """Every delivered partner-month's cleanup, and how long waiting and checking took."""

    month: str
    partners: dict[str, PartnerCleanup]
    waiting_s: float
    checking_s: float

    @property
    def problems(self) -> list[str]:
        """One line per partner-month whose cleanup is not proven."""
        return [
            f"cleanup of {entry.partner} {entry.month}: {entry.error}"
            for entry in self.partners.values()
            if entry.error is not None
        ]

    def trails(self) -> list[Trail]:
        """The audit trails read, by partner."""
        return [entry.trail for _, entry in sorted(self.partners.items()) if entry.trail]

    def to_dict(self, out_dir: Path | None) -> dict[str, Any]:
        """The demo summary's ``cleanup`` section."""
        return {
            "month": self.month,
            "waiting_s": round(self.waiting_s, 2),
            "checking_s": round(self.checking_s, 2),
            "partners": {
                partner: entry.to_dict(out_dir) for partner, entry in sorted(self.partners.items())
            },
            "cleaned": sum(1 for entry in self.partners.values() if entry.error is None),
        }


def cleanup_round(
    clients: LocalClients,
    ready: Mapping[str, Any],
    delivered: Mapping[str, str],
    month: str,
    receipt_dir: Path | None,
    *,
    timeout_s: float = 120.0,
    poll_s: float = 0.5,
    on_cleaned: Callable[[int], None] | None = None,
) -> CleanupRound:
    """Wait for, then check, the cleanup of every ``{partner: delivered bundle sha256}``.

    ``receipt_dir``: where each downloaded receipt is kept (None: nowhere).
    ``on_cleaned`` is told of each month found ``CLEANED`` (a progress bar).
    """
    ddb, s3 = clients.client("dynamodb"), clients.client("s3")
    states = BundleStateStore(ddb, ready["tables"]["audit"])
    entries = {
        partner: PartnerCleanup(partner, month, sha256) for partner, sha256 in delivered.items()
    }
    started = time.monotonic()
    _wait_until_cleaned(states, entries, started + timeout_s, poll_s, on_cleaned)
    waiting_s = time.monotonic() - started
    audit = AuditLog(ddb, ready["tables"]["audit"])
    public_key = Path(ready["public_key"]).read_bytes()
    with httpx.Client(timeout=60) as client:
        for entry in entries.values():
            if entry.state != BundleState.CLEANED:
                entry.fail(f"not CLEANED within {timeout_s:.0f} s (state {entry.state or 'none'})")
            entry.trail = read_trail(audit, entry.partner, month)
            if not entry.trail.complete:
                entry.fail(f"audit trail {entry.trail.verdict}")
            _check_receipt(client, states, ready, entry, public_key, receipt_dir)
            _list_working_prefixes(s3, ready, entry)
    return CleanupRound(month, entries, waiting_s, time.monotonic() - started - waiting_s)


def _wait_until_cleaned(
    states: BundleStateStore,
    entries: Mapping[str, PartnerCleanup],
    deadline: float,
    poll_s: float,
    on_cleaned: Callable[[int], None] | None,
) -> None:
    started = time.monotonic()
    pending = set(entries)
    while pending:
        for partner in sorted(pending):
            entry = entries[partner]
            record = states.get(partner, entry.month)
            entry.state = None if record is None else record.state.value
            if entry.state == BundleState.CLEANED:
                entry.cleaned_after_s = time.monotonic() - started
                pending.discard(partner)
                if on_cleaned is not None:
                    on_cleaned(1)
        if not pending or time.monotonic() >= deadline:
            return
        time.sleep(poll_s)


def _check_receipt(
    client: httpx.Client,
    states: BundleStateStore,
    ready: Mapping[str, Any],
    entry: PartnerCleanup,
    public_key: bytes,
    receipt_dir: Path | None,
) -> None:
    key = deletion_receipt_key(entry.partner, entry.month)
    body = _pull_receipt(client, ready, entry, key)
    if body is None:
        return
    try:
        verified = verify_receipt(
            body,
            public_key,
            partner=entry.partner,
            month=entry.month,
            bundle_sha256=entry.bundle_sha256,
            bundle_label="the delivered bundle",
        )
    except VerificationError as error:
        entry.fail(f"the deletion receipt does not verify: {error}")
        return
    entry.receipt = {"key": key, "pulled_via_api": True, **verified.to_dict()}
    entry.receipt.pop("ok")
    record = states.get(entry.partner, entry.month)
    recorded = None if record is None else record.attributes.get("receipt_sha256")
    if recorded != verified.receipt_sha256:
        entry.fail("the deletion receipt is not the one the CLEANED state records")
    if receipt_dir is not None:
        receipt_dir.mkdir(parents=True, exist_ok=True)
        path = receipt_dir / f"ryuzen-telemetry-{entry.partner}-{entry.month}{RECEIPT_SUFFIX}"
        path.write_bytes(body)
        entry.receipt_path = path


def _pull_receipt(
    client: httpx.Client, ready: Mapping[str, Any], entry: PartnerCleanup, key: str
) -> bytes | None:
    """The receipt as the partner gets it: offered by the pull API, downloaded through its
    presigned URL (size and SHA-256 as announced); None with the entry failed otherwise."""
    api, api_key = ready["api"], ready["partner_keys"][entry.partner]
    try:
        offer = request_bundle(client, api, api_key, entry.month)
    except FetchError as error:
        entry.fail(f"GET /v1/bundles/{entry.month}: {error}")
        return None
    if offer.receipt is None:
        entry.fail(f"GET /v1/bundles/{entry.month} offers no deletion receipt ({key})")
        return None
    # The URL is a bearer credential: only the key it addresses is looked at, never kept.
    if not unquote(urlsplit(offer.receipt.url).path).endswith(f"/{key}"):
        entry.fail(f"the receipt URL of GET /v1/bundles/{entry.month} does not address {key}")
        return None
    # Kept in a scratch directory until it verifies; the caller decides where it goes.
    with tempfile.TemporaryDirectory(prefix="ryuzen-demo-receipt-") as scratch:
        try:
            pulled = download_receipt(client, offer.receipt, Path(scratch) / "bundle.zip")
        except FetchError as error:
            entry.fail(str(error))
            return None
        return pulled.path.read_bytes()


def _list_working_prefixes(s3: Any, ready: Mapping[str, Any], entry: PartnerCleanup) -> None:
    prefixes = {
        "sanitized": sanitized_prefix(entry.partner, entry.month),
        "analytics": analytics_prefix(entry.partner, entry.month),
    }
    for role, prefix in prefixes.items():
        bucket = ready["buckets"][role]
        entry.remaining_objects[role] = count_objects(s3, bucket, prefix)[0]
        entry.prefixes_listed[role] = f"s3://{bucket}/{prefix}"
    left = {role: count for role, count in entry.remaining_objects.items() if count}
    if left:
        entry.fail(f"objects left after cleanup: {left}")
