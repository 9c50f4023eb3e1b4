"""Safety, as a property: whatever else the buckets hold, exactly the target partner-month's
working objects disappear — never another partner's (even ``acme-eu`` beside ``acme``),
another month's, or anything in RAW, quarantine or the bundle bucket."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from cleanup_fixtures import BUCKETS, CleanupStack, delivered, fresh_stack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ryuzen_cleanup.delete_old_telemetry import Outcome
from ryuzen_contracts.attestation import DELETION_PREDICATE, verify
from ryuzen_contracts.bundle_state import BundleState
from ryuzen_contracts.key_layout import (
    analytics_key,
    analytics_prefix,
    bundle_key,
    certificate_key,
    deletion_receipt_key,
    quarantine_key,
    raw_key,
    sanitized_key,
    sanitized_prefix,
)

PARTNERS = ["acme", "acme-eu", "nimbus-ai", "orb"]
MONTHS = ["2026-10", "2026-11", "2026-12", "2027-11"]
BATCHES = [f"01JDQ3ZK9M8X7V6T5S4R3Q2P{suffix}" for suffix in ("1N", "2A", "3B", "4C")]
RECEIVED = datetime(2026, 11, 28, 5, tzinfo=UTC)


def key_of(kind: str, partner: str, month: str, batch: str, day: int) -> str:
    """A key of one kind, as the stage that writes it would spell it."""
    return {
        "sanitized": lambda: sanitized_key(partner, month, batch),
        "certificate": lambda: certificate_key(partner, month, batch),
        "analytics": lambda: analytics_key(partner, month, day, batch),
        "raw": lambda: raw_key(RECEIVED, batch),
        "quarantine": lambda: quarantine_key(RECEIVED.date(), batch),
        "bundle": lambda: bundle_key(partner, month),
        # Not a key any stage writes, but under a partner-month prefix all the same.
        "stray": lambda: f"{sanitized_prefix(partner, month)}notes/{batch}.txt",
    }[kind]()


objects = st.lists(
    st.tuples(
        st.sampled_from(sorted(BUCKETS)),  # any key may sit in any bucket
        st.builds(
            key_of,
            st.sampled_from(
                ["sanitized", "certificate", "analytics", "raw", "quarantine", "bundle", "stray"]
            ),
            st.sampled_from(PARTNERS),
            st.sampled_from(MONTHS),
            st.sampled_from(BATCHES),
            st.integers(1, 28),
        ),
    ),
    max_size=40,
    unique=True,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    placed=objects,
    partner=st.sampled_from(PARTNERS),
    month=st.sampled_from(MONTHS),
)
def test_exactly_the_target_partner_months_working_objects_disappear(
    moto_aws: tuple[Any, Any, Any],
    signer: Any,
    placed: list[tuple[str, str]],
    partner: str,
    month: str,
) -> None:
    stack: CleanupStack = fresh_stack(moto_aws, signer)
    for role, key in placed:
        stack.put(role, key)
    stack.move_to(BundleState.DELIVERED, partner, month)
    targets = {
        "sanitized": sanitized_prefix(partner, month),
        "analytics": analytics_prefix(partner, month),
    }
    doomed = {(role, key) for role, key in placed if key.startswith(targets.get(role, "\0"))}

    report = stack.clean(delivered(partner, month))

    assert report.outcome is Outcome.CLEANED
    remaining = {(role, key) for role in BUCKETS for key in stack.keys(role)}
    receipt_key = ("bundles", deletion_receipt_key(partner, month))
    assert remaining - {receipt_key} == set(placed) - doomed
    predicate = verify(
        stack.receipt_bytes(partner, month),
        signer.public_key_pem(),
        predicate_type=DELETION_PREDICATE,
    ).predicate
    assert predicate["objects_deleted_total"] == len(doomed)
    assert (
        predicate["deleted_keys_sha256"]
        == hashlib.sha256("\n".join(sorted(key for _, key in doomed)).encode()).hexdigest()
    )
