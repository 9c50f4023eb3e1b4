"""Refusal rules: open months, delivered or cleaned months, unknown partners, bad months.

Every refusal carries a machine-readable ``code`` beside its message; nothing is touched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bundle_build_stack import BUCKETS, BundleStack
from bundle_build_support import MONTH, NOW, batch
from ryuzen_bundle.bundle_builder import BuildFailed, BuildRefused, BuildRequest, build_bundle
from ryuzen_bundle.month_window import has_ended, next_month_start, previous_month
from ryuzen_contracts.audit_log import AuditEventType
from ryuzen_contracts.bundle_state import BundleState


def build_at(stack: BundleStack, now: datetime, month: str = MONTH, **request: bool):
    return build_bundle(
        stack.services,
        stack.target,
        BuildRequest("acme", month, **request),
        now=lambda: now,
        tuning=stack.tuning(),
    )


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(datetime(2026, 11, 1, tzinfo=UTC), "2026-10", id="first-instant"),
        pytest.param(datetime(2026, 1, 15, 12, tzinfo=UTC), "2025-12", id="january"),
        pytest.param(datetime(2026, 3, 31, 23, 59, tzinfo=UTC), "2026-02", id="end-of-march"),
    ],
)
def test_previous_month(now: datetime, expected: str) -> None:
    assert previous_month(now) == expected


def test_a_month_ends_at_the_first_instant_of_the_next() -> None:
    assert next_month_start("2026-12") == datetime(2027, 1, 1, tzinfo=UTC)
    assert not has_ended("2026-10", datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=UTC))
    assert has_ended("2026-10", datetime(2026, 11, 1, tzinfo=UTC))


def test_an_open_month_is_refused_and_nothing_is_touched(stack: BundleStack) -> None:
    stack.put_batch(batch(5, datetime(2026, 10, 3, tzinfo=UTC), seed=1))
    with pytest.raises(BuildRefused, match=r"has not ended.*--allow-open-month") as refusal:
        build_at(stack, datetime(2026, 10, 20, tzinfo=UTC))
    assert refusal.value.code == "month_open"
    assert stack.state() is None
    assert stack.audit_events() == []
    assert stack.bundle_keys() == []


def test_an_open_month_is_built_when_allowed(stack: BundleStack) -> None:
    stack.put_batch(batch(5, datetime(2026, 10, 3, tzinfo=UTC), seed=1))
    report = build_at(stack, datetime(2026, 10, 20, tzinfo=UTC), allow_open_month=True)
    assert report.events == 5
    state = stack.state()
    assert state is not None and state.state is BundleState.DELIVERED


def test_a_month_that_has_not_started_is_refused_even_when_open_months_are_allowed(
    stack: BundleStack,
) -> None:
    with pytest.raises(BuildRefused, match="not started") as refusal:
        build_at(stack, NOW, month="2026-12", allow_open_month=True)
    assert refusal.value.code == "month_not_started"


@pytest.mark.parametrize("month", ["2026-13", "26-10", "2026-1", "../x"])
def test_a_malformed_month_is_refused(stack: BundleStack, month: str) -> None:
    with pytest.raises(BuildRefused, match="invalid month") as refusal:
        build_at(stack, NOW, month=month)
    assert refusal.value.code == "invalid_request"


def test_an_unknown_partner_is_refused(stack: BundleStack) -> None:
    with pytest.raises(BuildRefused, match="unknown partner") as refusal:
        build_bundle(stack.services, stack.target, BuildRequest("nobody", MONTH), now=lambda: NOW)
    assert refusal.value.code == "unknown_partner"
    with pytest.raises(BuildRefused, match="invalid partner"):
        build_bundle(stack.services, stack.target, BuildRequest("../a", MONTH), now=lambda: NOW)


def test_a_delivered_month_is_refused_unless_forced(stack: BundleStack) -> None:
    stack.put_batch(batch(5, datetime(2026, 10, 3, tzinfo=UTC), seed=1))
    first = stack.build()
    delivered = stack.state()
    assert delivered is not None and delivered.state is BundleState.DELIVERED

    with pytest.raises(BuildRefused, match=r"already DELIVERED.*--force-rebuild") as refusal:
        stack.build()
    assert refusal.value.code == "already_delivered"
    assert stack.state() == delivered

    second = stack.build(force_rebuild=True)
    rebuilt = stack.state()
    assert rebuilt is not None and rebuilt.state is BundleState.DELIVERED
    assert rebuilt.version == delivered.version + 3  # BUILDING, BUILT, DELIVERED again
    assert second.events == first.events
    created = [e for e in stack.audit_events() if e.event_type is AuditEventType.BUNDLE_CREATED]
    assert len(created) == 2


def clean(stack: BundleStack, *, keep: tuple[str, ...] = ()) -> None:
    """What cleanup does after delivery: delete the month's telemetry (all but the buckets
    ``keep`` names), then mark the month CLEANED."""
    for bucket in ("analytics", "sanitized"):
        if bucket in keep:
            continue
        listing = stack.s3.list_objects_v2(Bucket=BUCKETS[bucket]).get("Contents", [])
        for item in listing:
            stack.s3.delete_object(Bucket=BUCKETS[bucket], Key=item["Key"])
    stack.states.transition("acme", MONTH, BundleState.CLEANED)


def test_a_cleaned_month_is_refused_unless_forced(stack: BundleStack) -> None:
    batch_id = stack.put_batch(batch(5, datetime(2026, 10, 3, tzinfo=UTC), seed=1))
    stack.put_certificate(batch_id, 0)
    stack.build()
    clean(stack, keep=("analytics", "sanitized"))  # say cleanup is late
    with pytest.raises(BuildRefused, match="already CLEANED") as refusal:
        stack.build()
    assert refusal.value.code == "already_cleaned"
    report = stack.build(force_rebuild=True)
    assert report.events == 5
    state = stack.state()
    assert state is not None and state.state is BundleState.DELIVERED


def test_a_cleaned_month_whose_telemetry_is_gone_is_refused_even_when_forced(
    stack: BundleStack,
) -> None:
    # Given a delivered month whose telemetry cleanup has deleted
    batch_id = stack.put_batch(batch(5, datetime(2026, 10, 3, tzinfo=UTC), seed=1))
    stack.put_certificate(batch_id, 0)
    stack.build()
    clean(stack)
    cleaned = stack.state()
    delivered = stack.bundle_bytes()
    events = stack.audit_events()

    # When it is forced to rebuild
    with pytest.raises(BuildRefused, match=r"CLEANED and its telemetry is gone") as refusal:
        stack.build(force_rebuild=True)

    # Then it is refused, and the partner's bundle, the state and the audit are untouched
    assert refusal.value.code == "cleaned_month_has_no_data"
    assert stack.state() == cleaned
    assert stack.bundle_bytes() == delivered
    assert stack.audit_events() == events


@pytest.mark.parametrize("left", ["analytics", "sanitized"])
def test_a_cleaned_month_with_telemetry_left_passes_the_refusals_when_forced(
    stack: BundleStack, left: str
) -> None:
    batch_id = stack.put_batch(batch(5, datetime(2026, 10, 3, tzinfo=UTC), seed=1))
    stack.put_certificate(batch_id, 0)
    stack.build()
    clean(stack, keep=(left,))
    # Not refused; but with one half gone the month no longer matches its certificates
    with pytest.raises(BuildFailed) as failure:
        stack.build(force_rebuild=True)
    assert failure.value.step == "check_complete"
    assert failure.value.reason is not None
    if left == "analytics":  # events no certificate covers never reach a partner
        assert failure.value.reason.endswith(f"without a certificate: {batch_id}: 5 rows")
    else:  # certificates whose events are gone
        assert failure.value.reason.endswith(f"{batch_id}: no object (5 sanitized)")


def test_a_month_left_built_by_a_failed_delivery_is_rebuilt_without_force(
    stack: BundleStack,
) -> None:
    stack.states.transition("acme", MONTH, BundleState.BUILDING)
    stack.states.transition("acme", MONTH, BundleState.BUILT)
    report = stack.build()
    assert report.events == 0
    state = stack.state()
    assert state is not None and state.state is BundleState.DELIVERED


def test_force_on_a_month_never_built_is_a_plain_build(stack: BundleStack) -> None:
    stack.build(force_rebuild=True)
    state = stack.state()
    assert state is not None and state.version == 3


def test_the_build_time_is_the_clock_given(stack: BundleStack) -> None:
    later = NOW + timedelta(days=40)
    build_at(stack, later)
    state = stack.state()
    assert state is not None and state.updated_at.startswith("2026-12-12T03:00:00")
