"""Refusal rules: open months, delivered or cleaned months, unknown partners, bad months."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bundle_build_stack import BundleStack
from bundle_build_support import MONTH, NOW, batch
from ryuzen_bundle.bundle_builder import BuildRefused, BuildRequest, build_bundle
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
    with pytest.raises(BuildRefused, match=r"has not ended.*--allow-open-month"):
        build_at(stack, datetime(2026, 10, 20, tzinfo=UTC))
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
    with pytest.raises(BuildRefused, match="not started"):
        build_at(stack, NOW, month="2026-12", allow_open_month=True)


@pytest.mark.parametrize("month", ["2026-13", "26-10", "2026-1", "../x"])
def test_a_malformed_month_is_refused(stack: BundleStack, month: str) -> None:
    with pytest.raises(BuildRefused, match="invalid month"):
        build_at(stack, NOW, month=month)


def test_an_unknown_partner_is_refused(stack: BundleStack) -> None:
    with pytest.raises(BuildRefused, match="unknown partner"):
        build_bundle(stack.services, stack.target, BuildRequest("nobody", MONTH), now=lambda: NOW)
    with pytest.raises(BuildRefused, match="invalid partner"):
        build_bundle(stack.services, stack.target, BuildRequest("../a", MONTH), now=lambda: NOW)


def test_a_delivered_month_is_refused_unless_forced(stack: BundleStack) -> None:
    stack.put_batch(batch(5, datetime(2026, 10, 3, tzinfo=UTC), seed=1))
    first = stack.build()
    delivered = stack.state()
    assert delivered is not None and delivered.state is BundleState.DELIVERED

    with pytest.raises(BuildRefused, match=r"already DELIVERED.*--force-rebuild"):
        stack.build()
    assert stack.state() == delivered

    second = stack.build(force_rebuild=True)
    rebuilt = stack.state()
    assert rebuilt is not None and rebuilt.state is BundleState.DELIVERED
    assert rebuilt.version == delivered.version + 3  # BUILDING, BUILT, DELIVERED again
    assert second.events == first.events
    created = [e for e in stack.audit_events() if e.event_type is AuditEventType.BUNDLE_CREATED]
    assert len(created) == 2


def test_a_cleaned_month_is_refused_unless_forced(stack: BundleStack) -> None:
    stack.build()
    stack.states.transition("acme", MONTH, BundleState.CLEANED)
    with pytest.raises(BuildRefused, match="already CLEANED"):
        stack.build()
    stack.build(force_rebuild=True)
    state = stack.state()
    assert state is not None and state.state is BundleState.DELIVERED


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
