"""``BundleStateStore.transition(expected_version=...)``: a decision made on an earlier read.

The builder reads the month's state, applies its refusal rules, and only then writes
``BUILDING``. Without an expected version, a rival that wrote ``BUILDING`` in between
would be invisible: ``BUILDING → BUILDING`` is a legal retry, so the second builder would
carry on over the first one's work.
"""

from __future__ import annotations

from typing import Any

import pytest
from ryuzen_contracts.bundle_state import (
    NO_VERSION,
    BundleState,
    BundleStateRecord,
    BundleStateStore,
    ConcurrentTransition,
    IllegalTransition,
)

TABLE = "TelemetryAudit"
PARTNER, MONTH = "acme", "2026-11"
B, BT, D = BundleState.BUILDING, BundleState.BUILT, BundleState.DELIVERED


@pytest.fixture
def store(ddb: Any) -> BundleStateStore:
    return BundleStateStore(ddb, TABLE)


def test_a_new_month_is_created_when_no_version_is_expected(store: BundleStateStore) -> None:
    record = store.transition(PARTNER, MONTH, B, expected_version=NO_VERSION)
    assert (record.state, record.version) == (B, 1)


def test_a_matching_version_moves_the_state(store: BundleStateStore) -> None:
    building = store.transition(PARTNER, MONTH, B)
    built = store.transition(PARTNER, MONTH, BT, expected_version=building.version)
    assert (built.state, built.version) == (BT, 2)
    assert store.get(PARTNER, MONTH) == built


@pytest.mark.parametrize(
    ("expected", "found"),
    [
        pytest.param(NO_VERSION, "BUILDING v1", id="expected-new-found-building"),
        pytest.param(2, "BUILDING v1", id="expected-a-later-version"),
    ],
)
def test_a_stale_version_loses_and_writes_nothing(
    store: BundleStateStore, expected: int, found: str
) -> None:
    # Given a rival has written BUILDING since our read
    rival = store.transition(PARTNER, MONTH, B, attributes={"task_id": "rival"})

    # When we retry BUILDING (a legal transition) on the strength of our older read
    with pytest.raises(ConcurrentTransition, match=f"expected version {expected}, found {found}"):
        store.transition(
            PARTNER, MONTH, B, attributes={"task_id": "ours"}, expected_version=expected
        )

    # Then the rival's record stands untouched
    assert store.get(PARTNER, MONTH) == rival


def test_a_stale_version_wins_over_an_illegal_transition(store: BundleStateStore) -> None:
    # The caller's view is out of date: that is the reason to report, not the state machine.
    store.transition(PARTNER, MONTH, B)
    with pytest.raises(ConcurrentTransition):
        store.transition(PARTNER, MONTH, D, expected_version=NO_VERSION)


def test_a_matching_version_still_obeys_the_state_machine(store: BundleStateStore) -> None:
    building = store.transition(PARTNER, MONTH, B)
    with pytest.raises(IllegalTransition):
        store.transition(PARTNER, MONTH, D, expected_version=building.version)


def test_a_write_between_the_check_and_the_put_still_loses(ddb: Any) -> None:
    # Given our store reads the expected version, then a rival writes before our put
    store, rival = BundleStateStore(ddb, TABLE), BundleStateStore(ddb, TABLE)
    first = store.transition(PARTNER, MONTH, B)
    read = store.get

    def read_then_let_the_rival_write(partner: str, month: str) -> BundleStateRecord | None:
        record = read(partner, month)
        rival.transition(partner, month, B, attributes={"task_id": "rival"})
        return record

    store.get = read_then_let_the_rival_write  # type: ignore[method-assign]

    # When we write, expecting the version we (still) saw
    with pytest.raises(ConcurrentTransition):
        store.transition(PARTNER, MONTH, BT, expected_version=first.version)

    # Then the conditional put refused it: the rival's retry is what is stored
    stored = rival.get(PARTNER, MONTH)
    assert stored is not None
    assert (stored.state, stored.version, stored.attributes) == (B, 2, {"task_id": "rival"})


def test_a_negative_expected_version_is_a_caller_bug(store: BundleStateStore) -> None:
    with pytest.raises(ValueError, match="expected_version"):
        store.transition(PARTNER, MONTH, B, expected_version=-1)
    assert store.get(PARTNER, MONTH) is None
