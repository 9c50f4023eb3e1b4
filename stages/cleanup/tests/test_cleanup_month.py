"""Cleaning one partner-month: scope, refusals, the state machine, idempotence, crash healing."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from cleanup_fixtures import (
    AUDIT_TABLE,
    BUCKETS,
    MONTH,
    NOW,
    PARTNER,
    CleanupStack,
    FailingPut,
    FailingTransition,
    RacedTransition,
    bundle_sha256,
    delivered,
)
from ryuzen_cleanup.delete_old_telemetry import NotDeliveredYet, Outcome
from ryuzen_contracts.attestation import DELETION_PREDICATE, verify
from ryuzen_contracts.audit_log import AuditEventType, partner_month_pk
from ryuzen_contracts.bundle_state import (
    STATE_SK,
    BundleState,
    BundleStateStore,
    ConcurrentTransition,
)
from ryuzen_contracts.key_layout import (
    analytics_prefix,
    deletion_receipt_key,
    sanitized_prefix,
)


def predicate_of(envelope: bytes, public_pem: bytes) -> dict:
    return verify(envelope, public_pem, predicate_type=DELETION_PREDICATE).predicate


def test_a_delivered_month_is_deleted_and_nothing_else(stack: CleanupStack, signer) -> None:
    # Given a delivered month, its working objects and bystanders around it...
    stack.move_to(BundleState.DELIVERED)
    month_keys = stack.put_month(batches=3)
    bystanders = stack.put_bystanders()

    # ...when its BundleDelivered event is handled...
    report = stack.clean()

    # ...exactly the month's SANITIZED (Parquet + certificates) and ANALYTICS objects go.
    assert report.outcome is Outcome.CLEANED
    assert report.objects_deleted == {"analytics": 3, "sanitized": 6}
    assert stack.keys("sanitized") == bystanders["sanitized"]
    assert stack.keys("analytics") == bystanders["analytics"]
    assert stack.keys("raw") == bystanders["raw"]
    assert stack.keys("quarantine") == bystanders["quarantine"]
    assert stack.keys("bundles") == bystanders["bundles"] | {deletion_receipt_key(PARTNER, MONTH)}

    # The receipt states what went, signed.
    predicate = predicate_of(stack.receipt_bytes(), signer.public_key_pem())
    assert predicate["objects_deleted"] == {BUCKETS["analytics"]: 3, BUCKETS["sanitized"]: 6}
    assert predicate["objects_deleted_total"] == 9
    assert (
        predicate["deleted_keys_sha256"]
        == hashlib.sha256("\n".join(sorted(month_keys)).encode()).hexdigest()
    )
    assert predicate["prefixes_proven_empty"] == [
        {"bucket": BUCKETS["analytics"], "prefix": analytics_prefix(PARTNER, MONTH)},
        {"bucket": BUCKETS["sanitized"], "prefix": sanitized_prefix(PARTNER, MONTH)},
    ]
    assert predicate["already_empty"] is False
    assert predicate["bundle"]["sha256"] == bundle_sha256(PARTNER, MONTH)

    # The state is CLEANED and the audit trail says so, with the receipt's digest.
    record = stack.states.get(PARTNER, MONTH)
    assert record is not None and record.state is BundleState.CLEANED
    receipt_sha = hashlib.sha256(stack.receipt_bytes()).hexdigest()
    assert record.attributes["receipt_sha256"] == receipt_sha == report.receipt_sha256
    deleted = [e for e in stack.events() if e.event_type is AuditEventType.TELEMETRY_DELETED]
    assert len(deleted) == 1
    assert deleted[0].detail["objects_deleted"] == {"analytics": 3, "sanitized": 6}
    assert deleted[0].detail["receipt_sha256"] == receipt_sha
    assert deleted[0].detail["deleted_keys_sha256"] == predicate["deleted_keys_sha256"]


@pytest.mark.parametrize(
    ("state", "refusal"),
    [
        pytest.param(None, "no_bundle_state", id="no-state"),
        pytest.param(BundleState.BUILDING, "not_delivered", id="building"),
    ],
)
def test_a_month_that_is_not_delivered_is_refused(
    stack: CleanupStack, state: BundleState | None, refusal: str
) -> None:
    # Given a month whose bundle was never delivered...
    if state is not None:
        stack.move_to(state)
    month_keys = stack.put_month()

    report = stack.clean()

    # ...nothing is deleted, no receipt is written, and an ERROR says why.
    assert report.outcome is Outcome.REFUSED
    assert report.refusal == refusal
    assert month_keys <= stack.keys("sanitized") | stack.keys("analytics")
    assert stack.keys("bundles") == set()
    errors = [e for e in stack.events() if e.event_type is AuditEventType.ERROR]
    assert [e.detail["error"] for e in errors] == [refusal]
    assert not any(e.event_type is AuditEventType.TELEMETRY_DELETED for e in stack.events())
    record = stack.states.get(PARTNER, MONTH)
    assert (record.state if record else None) == state


def test_an_event_of_another_delivery_of_the_month_is_refused(stack: CleanupStack) -> None:
    # The month was rebuilt since: the state holds another bundle's digest.
    stack.move_to(BundleState.DELIVERED, sha256="b" * 64)
    month_keys = stack.put_month()

    report = stack.clean(delivered(sha256="a" * 64))

    assert report.refusal == "bundle_mismatch"
    assert month_keys <= stack.keys("sanitized") | stack.keys("analytics")
    assert stack.keys("bundles") == set()
    assert stack.states.get(PARTNER, MONTH).state is BundleState.DELIVERED
    errors = [e for e in stack.events() if e.event_type is AuditEventType.ERROR]
    assert [(e.detail["error"], e.detail["state"]) for e in errors] == [
        ("bundle_mismatch", "DELIVERED")
    ]


def test_delivered_without_a_verified_checksum_is_refused(stack: CleanupStack) -> None:
    # The store never writes this; a hand-edited item must still not unlock deletion.
    stack.move_to(BundleState.DELIVERED)
    stack.ddb.update_item(
        TableName=AUDIT_TABLE,
        Key={"pk": {"S": partner_month_pk(PARTNER, MONTH)}, "sk": {"S": STATE_SK}},
        UpdateExpression="SET attributes.checksum_verified = :no",
        ExpressionAttributeValues={":no": {"BOOL": False}},
    )
    month_keys = stack.put_month()

    report = stack.clean()

    assert report.refusal == "checksum_not_verified"
    assert month_keys <= stack.keys("sanitized") | stack.keys("analytics")
    assert stack.keys("bundles") == set()
    errors = [e for e in stack.events() if e.event_type is AuditEventType.ERROR]
    assert [e.detail["error"] for e in errors] == ["checksum_not_verified"]
    assert not any(e.event_type is AuditEventType.TELEMETRY_DELETED for e in stack.events())


def test_a_built_month_is_retried_not_refused(stack: CleanupStack) -> None:
    # The builder emits the event just before it writes DELIVERED.
    stack.move_to(BundleState.BUILT)
    month_keys = stack.put_month()

    with pytest.raises(NotDeliveredYet):
        stack.clean()

    assert month_keys <= stack.keys("sanitized") | stack.keys("analytics")
    assert stack.events() == []  # an expected, transient state: no ERROR

    # Once the state reaches DELIVERED, the retried event cleans the month.
    stack.states.transition(
        PARTNER,
        MONTH,
        BundleState.DELIVERED,
        attributes={"sha256": bundle_sha256(PARTNER, MONTH), "checksum_verified": True},
    )
    assert stack.clean().outcome is Outcome.CLEANED
    assert stack.keys("sanitized") == stack.keys("analytics") == set()


def test_a_redelivered_event_changes_nothing(stack: CleanupStack) -> None:
    stack.move_to(BundleState.DELIVERED)
    stack.put_month()
    stack.clean()
    receipt = stack.receipt_bytes()
    events = stack.events()
    record = stack.states.get(PARTNER, MONTH)
    # Even an object that (wrongly) appeared since is left for an operator to see.
    late = stack.put_month(batches=1)

    report = stack.clean()

    assert report.outcome is Outcome.ALREADY_CLEANED
    assert stack.receipt_bytes() == receipt
    assert stack.events() == events
    assert stack.states.get(PARTNER, MONTH) == record
    assert late <= stack.keys("sanitized") | stack.keys("analytics")


def test_a_crash_before_the_receipt_is_healed_by_redelivery(stack: CleanupStack, signer) -> None:
    # Given a run that deleted everything and then died before writing the receipt...
    stack.move_to(BundleState.DELIVERED)
    stack.put_month()
    crashing = FailingPut(stack.s3, deletion_receipt_key(PARTNER, MONTH))
    with pytest.raises(ConnectionError):
        stack.clean(s3=crashing)
    assert stack.keys("sanitized") == stack.keys("analytics") == set()
    assert stack.states.get(PARTNER, MONTH).state is BundleState.DELIVERED

    # ...the redelivered event finds the prefixes empty and still writes a receipt, which
    # says it found them empty rather than claim it deleted nothing that ever existed.
    report = stack.clean()

    assert report.outcome is Outcome.CLEANED
    predicate = predicate_of(stack.receipt_bytes(), signer.public_key_pem())
    assert predicate["already_empty"] is True
    assert predicate["objects_deleted_total"] == 0
    assert predicate["deleted_keys_sha256"] == hashlib.sha256(b"").hexdigest()
    assert stack.states.get(PARTNER, MONTH).state is BundleState.CLEANED


def test_a_crash_before_the_state_write_keeps_the_first_receipt(stack: CleanupStack) -> None:
    # Given a run that wrote its receipt and audit event, then died before CLEANED...
    stack.move_to(BundleState.DELIVERED)
    stack.put_month(batches=2)
    with pytest.raises(ConnectionError):
        stack.clean(states=FailingTransition(stack.states))
    first = stack.receipt_bytes()

    # ...the redelivered event keeps that receipt (it counted the objects), records the
    # deletion once, and commits.
    report = stack.clean()

    assert report.outcome is Outcome.CLEANED
    assert report.kept_existing_receipt is True
    assert report.objects_deleted == {"analytics": 0, "sanitized": 0}
    assert stack.receipt_bytes() == first
    deleted = [e for e in stack.events() if e.event_type is AuditEventType.TELEMETRY_DELETED]
    assert len(deleted) == 1
    assert deleted[0].detail["objects_deleted"] == {"analytics": 2, "sanitized": 4}
    assert report.receipt_sha256 == hashlib.sha256(first).hexdigest()
    assert stack.states.get(PARTNER, MONTH).state is BundleState.CLEANED


def test_objects_deleted_after_an_earlier_receipt_supersede_it(stack: CleanupStack, signer) -> None:
    stack.move_to(BundleState.DELIVERED)
    stack.put_month(batches=1)
    with pytest.raises(ConnectionError):
        stack.clean(states=FailingTransition(stack.states))
    first = stack.receipt_bytes()
    stack.put_month(batches=1)  # appeared between the crash and the redelivery

    stack.clean()

    predicate = predicate_of(stack.receipt_bytes(), signer.public_key_pem())
    assert predicate["objects_deleted_total"] == 3
    assert predicate["supersedes"]["receipt_sha256"] == hashlib.sha256(first).hexdigest()
    assert predicate["supersedes"]["objects_deleted"] == {
        BUCKETS["analytics"]: 1,
        BUCKETS["sanitized"]: 2,
    }


def test_the_audit_detail_holds_no_url_and_names_no_content(stack: CleanupStack) -> None:
    stack.move_to(BundleState.DELIVERED)
    stack.put_month()
    stack.clean()

    (deleted,) = [e for e in stack.events() if e.event_type is AuditEventType.TELEMETRY_DELETED]
    text = json.dumps(deleted.detail)
    assert "://" not in text
    assert deleted.occurred_at == NOW
    assert set(deleted.detail) == {
        "objects_deleted",
        "objects_deleted_total",
        "deleted_keys_sha256",
        "already_empty",
        "receipt_key",
        "receipt_sha256",
        "bundle_sha256",
    }


def test_two_runs_racing_to_commit_both_end_cleaned(stack: CleanupStack) -> None:
    # SQS delivers at least once: a duplicate ran alongside and committed first.
    stack.move_to(BundleState.DELIVERED)
    stack.put_month()

    report = stack.clean(states=RacedTransition(stack.states))

    assert report.outcome is Outcome.CLEANED
    assert stack.states.get(PARTNER, MONTH).state is BundleState.CLEANED


class RebuiltBeforeCommit:
    """A state store where a forced rebuild delivers a new bundle just before CLEANED."""

    def __init__(self, states: BundleStateStore) -> None:
        self._states = states

    def get(self, partner: str, month: str) -> Any:
        return self._states.get(partner, month)

    def transition(self, partner: str, month: str, to: BundleState, **kwargs: Any) -> Any:
        self._states.transition(partner, month, BundleState.BUILDING, force=True, now=NOW)
        self._states.transition(partner, month, BundleState.BUILT, now=NOW)
        self._states.transition(
            partner,
            month,
            BundleState.DELIVERED,
            attributes={"sha256": "c" * 64, "checksum_verified": True},
            now=NOW,
        )
        return self._states.transition(partner, month, to, **kwargs)


def test_a_month_rebuilt_during_cleanup_is_not_marked_cleaned(stack: CleanupStack) -> None:
    # Given a delivered month whose bundle is rebuilt and delivered again while cleanup
    # deletes (the rebuild's own BundleDelivered event follows)...
    stack.move_to(BundleState.DELIVERED)
    stack.put_month()

    # ...this run's CLEANED write, made on the version it decided on, loses...
    with pytest.raises(ConcurrentTransition):
        stack.clean(states=RebuiltBeforeCommit(stack.states))

    # ...so the new delivery stays DELIVERED, to be cleaned by its own event.
    record = stack.states.get(PARTNER, MONTH)
    assert record is not None and record.state is BundleState.DELIVERED
    assert record.attributes["sha256"] == "c" * 64
