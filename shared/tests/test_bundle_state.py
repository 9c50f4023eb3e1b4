"""Bundle state per partner-month: BUILDING → BUILT → DELIVERED → CLEANED, conditionally."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from ryuzen_contracts.bundle_state import (
    STATE_SK,
    BundleState,
    BundleStateRecord,
    BundleStateStore,
    ConcurrentTransition,
    IllegalTransition,
)
from ryuzen_contracts.key_layout import InvalidKeyPart

TABLE = "TelemetryAudit"
PARTNER, MONTH = "acme", "2026-11"
SHA = "0123456789abcdef" * 4
VERIFIED: dict[str, str | int | bool] = {"sha256": SHA, "checksum_verified": True}
T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)

B, BT, D, C = BundleState.BUILDING, BundleState.BUILT, BundleState.DELIVERED, BundleState.CLEANED

# The legal path from NEW to each state, so a test can start from any of them.
PATH_TO: dict[BundleState | None, list[BundleState]] = {
    None: [],
    B: [B],
    BT: [B, BT],
    D: [B, BT, D],
    C: [B, BT, D, C],
}


@pytest.fixture
def store(ddb: Any) -> BundleStateStore:
    return BundleStateStore(ddb, TABLE)


def advance(store: BundleStateStore, to: BundleState | None) -> BundleStateRecord | None:
    """Walk the legal path from NEW to ``to``; return the final record."""
    record = None
    for state in PATH_TO[to]:
        record = store.transition(
            PARTNER, MONTH, state, attributes=VERIFIED if state is D else None, now=T0
        )
    return record


def state_items(ddb: Any) -> list[dict[str, Any]]:
    items = ddb.scan(TableName=TABLE)["Items"]
    return [item for item in items if item["sk"]["S"] == STATE_SK]


# --- the happy path -----------------------------------------------------------------------


def test_full_lifecycle(store: BundleStateStore, ddb: Any) -> None:
    assert store.get(PARTNER, MONTH) is None

    building = store.transition(PARTNER, MONTH, B, attributes={"task_id": "t-1"}, now=T0)
    built = store.transition(PARTNER, MONTH, BT, attributes={"files": 31, "bytes": 4096})
    delivered = store.transition(PARTNER, MONTH, D, attributes=VERIFIED)
    cleaned = store.transition(PARTNER, MONTH, C, attributes={"deleted_objects": 62})

    assert [r.state for r in (building, built, delivered, cleaned)] == [B, BT, D, C]
    assert [r.version for r in (building, built, delivered, cleaned)] == [1, 2, 3, 4]
    assert building.updated_at == "2026-12-01T03:00:00.000Z"
    current = store.get(PARTNER, MONTH)
    assert current == cleaned
    # Attributes accumulate across the path (types preserved through DynamoDB).
    assert current is not None
    assert current.attributes == {
        "task_id": "t-1",
        "files": 31,
        "bytes": 4096,
        "sha256": SHA,
        "checksum_verified": True,
        "deleted_objects": 62,
    }
    # One item per partner-month, in the audit table, under the partner-month partition.
    (item,) = state_items(ddb)
    assert item["pk"] == {"S": "PARTNER#acme#MONTH#2026-11"}
    assert item["state"] == {"S": "CLEANED"}
    assert "event_type" not in item


def test_months_and_partners_are_independent(store: BundleStateStore, ddb: Any) -> None:
    store.transition("acme", "2026-11", B)
    store.transition("acme", "2026-12", B)
    store.transition("nimbus-ai", "2026-11", B)
    store.transition("acme", "2026-11", BT)

    assert store.get("acme", "2026-11").state is BT  # type: ignore[union-attr]
    assert store.get("acme", "2026-12").state is B  # type: ignore[union-attr]
    assert store.get("nimbus-ai", "2026-11").state is B  # type: ignore[union-attr]
    assert len(state_items(ddb)) == 3


@pytest.mark.parametrize(
    ("start", "to"),
    [
        pytest.param(B, B, id="BUILDING-retry"),
        pytest.param(BT, B, id="BUILT-rebuild"),
    ],
)
def test_retries_are_allowed(store: BundleStateStore, start: BundleState, to: BundleState) -> None:
    before = advance(store, start)
    assert before is not None

    after = store.transition(PARTNER, MONTH, to, attributes={"attempt": 2})

    assert after.state is to
    assert after.version == before.version + 1
    # A (re)build starts from a clean slate: earlier attributes are dropped.
    assert after.attributes == {"attempt": 2}


# --- illegal transitions --------------------------------------------------------------------

ILLEGAL = [
    pytest.param(None, BT, id="NEW-to-BUILT"),
    pytest.param(None, D, id="NEW-to-DELIVERED"),
    pytest.param(None, C, id="NEW-to-CLEANED"),
    pytest.param(B, D, id="BUILDING-to-DELIVERED"),
    pytest.param(B, C, id="BUILDING-to-CLEANED"),
    pytest.param(BT, BT, id="BUILT-to-BUILT"),
    pytest.param(BT, C, id="BUILT-to-CLEANED"),
    pytest.param(D, B, id="DELIVERED-to-BUILDING-without-force"),
    pytest.param(D, BT, id="DELIVERED-to-BUILT"),
    pytest.param(D, D, id="DELIVERED-to-DELIVERED"),
    pytest.param(C, B, id="CLEANED-to-BUILDING-without-force"),
    pytest.param(C, BT, id="CLEANED-to-BUILT"),
    pytest.param(C, D, id="CLEANED-to-DELIVERED"),
    pytest.param(C, C, id="CLEANED-to-CLEANED"),
]


@pytest.mark.parametrize(("start", "to"), ILLEGAL)
def test_illegal_transitions_are_refused(
    store: BundleStateStore, ddb: Any, start: BundleState | None, to: BundleState
) -> None:
    before = advance(store, start)

    with pytest.raises(IllegalTransition) as caught:
        # Given every attribute DELIVERED could want, only the state machine can refuse.
        store.transition(PARTNER, MONTH, to, attributes=VERIFIED)

    message = str(caught.value)
    assert f"{start.value if start else 'NEW'} → {to.value} is not allowed" in message
    assert f"{PARTNER} {MONTH}" in message
    # Nothing was written.
    assert store.get(PARTNER, MONTH) == before
    assert len(state_items(ddb)) == (0 if start is None else 1)


@pytest.mark.parametrize("start", [D, C])
def test_rebuilding_a_finished_month_suggests_force(
    store: BundleStateStore, start: BundleState
) -> None:
    advance(store, start)

    with pytest.raises(IllegalTransition, match="use force to rebuild"):
        store.transition(PARTNER, MONTH, B)


@pytest.mark.parametrize("start", [D, C])
def test_forced_rebuild(store: BundleStateStore, start: BundleState) -> None:
    before = advance(store, start)
    assert before is not None

    rebuilt = store.transition(PARTNER, MONTH, B, force=True, attributes={"reason": "re-run"})

    assert rebuilt.state is B
    assert rebuilt.version == before.version + 1
    assert rebuilt.attributes == {"reason": "re-run"}
    # And the month can go round again.
    store.transition(PARTNER, MONTH, BT)
    assert store.transition(PARTNER, MONTH, D, attributes=VERIFIED).state is D


@pytest.mark.parametrize(
    ("start", "to"),
    [
        pytest.param(None, BT, id="NEW-to-BUILT"),
        pytest.param(B, D, id="BUILDING-to-DELIVERED"),
        pytest.param(D, BT, id="DELIVERED-to-BUILT"),
        pytest.param(C, D, id="CLEANED-to-DELIVERED"),
    ],
)
def test_force_only_allows_a_rebuild(
    store: BundleStateStore, start: BundleState | None, to: BundleState
) -> None:
    advance(store, start)

    with pytest.raises(IllegalTransition):
        store.transition(PARTNER, MONTH, to, force=True, attributes=VERIFIED)


# --- DELIVERED needs a verified checksum -------------------------------------------------------


@pytest.mark.parametrize(
    "attributes",
    [
        pytest.param(None, id="nothing"),
        pytest.param({"sha256": SHA}, id="not-verified"),
        pytest.param({"sha256": SHA, "checksum_verified": False}, id="verified-false"),
        pytest.param({"sha256": SHA, "checksum_verified": "true"}, id="verified-string"),
        pytest.param({"sha256": SHA, "checksum_verified": 1}, id="verified-int"),
        pytest.param({"checksum_verified": True}, id="no-sha"),
        pytest.param({"sha256": SHA.upper(), "checksum_verified": True}, id="sha-upper"),
        pytest.param({"sha256": SHA[:-1], "checksum_verified": True}, id="sha-63"),
        pytest.param({"sha256": SHA + "0", "checksum_verified": True}, id="sha-65"),
        pytest.param({"sha256": SHA + "\n", "checksum_verified": True}, id="sha-newline"),
        pytest.param({"sha256": "z" * 64, "checksum_verified": True}, id="sha-not-hex"),
    ],
)
def test_delivered_needs_a_verified_sha256(
    store: BundleStateStore, attributes: dict[str, Any] | None
) -> None:
    advance(store, BT)

    with pytest.raises(IllegalTransition, match="verified SHA-256"):
        store.transition(PARTNER, MONTH, D, attributes=attributes)

    assert store.get(PARTNER, MONTH).state is BT  # type: ignore[union-attr]


def test_delivered_given_as_a_plain_string_still_needs_the_checksum(
    store: BundleStateStore,
) -> None:
    advance(store, BT)

    with pytest.raises(IllegalTransition, match="verified SHA-256"):
        store.transition(PARTNER, MONTH, "DELIVERED")  # type: ignore[arg-type]

    delivered = store.transition(PARTNER, MONTH, "DELIVERED", attributes=VERIFIED)  # type: ignore[arg-type]
    assert delivered.state is D


# --- races: the conditional write lets exactly one writer win -----------------------------------


def test_second_writer_from_the_same_read_loses(ddb: Any) -> None:
    first, second = BundleStateStore(ddb, TABLE), BundleStateStore(ddb, TABLE)
    first.transition(PARTNER, MONTH, B)
    first.transition(PARTNER, MONTH, BT)
    # Given both writers read the same version...
    stale = second.get(PARTNER, MONTH)
    assert stale == first.get(PARTNER, MONTH)

    # ...when the first one moves on...
    first.transition(PARTNER, MONTH, D, attributes=VERIFIED)
    # ...then the second, still holding that read, must lose rather than overwrite.
    second.get = lambda partner, month: stale  # type: ignore[method-assign]
    with pytest.raises(ConcurrentTransition, match="state changed while moving BUILT → BUILDING"):
        second.transition(PARTNER, MONTH, B)

    assert first.get(PARTNER, MONTH).state is D  # type: ignore[union-attr]


def test_a_same_state_retry_race_is_caught_by_the_version(ddb: Any) -> None:
    # Two builders both retry BUILDING → BUILDING from version 1: the state alone would
    # let both succeed; the version makes the second one lose.
    first, second = BundleStateStore(ddb, TABLE), BundleStateStore(ddb, TABLE)
    first.transition(PARTNER, MONTH, B)
    stale = second.get(PARTNER, MONTH)
    first.transition(PARTNER, MONTH, B, attributes={"task_id": "first"})

    second.get = lambda partner, month: stale  # type: ignore[method-assign]
    with pytest.raises(ConcurrentTransition):
        second.transition(PARTNER, MONTH, B, attributes={"task_id": "second"})

    assert first.get(PARTNER, MONTH).attributes == {"task_id": "first"}  # type: ignore[union-attr]


def test_a_write_between_read_and_write_is_detected(ddb: Any) -> None:
    store, rival = BundleStateStore(ddb, TABLE), BundleStateStore(ddb, TABLE)
    read = store.get

    def read_then_let_the_rival_win(partner: str, month: str) -> BundleStateRecord | None:
        record = read(partner, month)
        rival.transition(partner, month, B, attributes={"task_id": "rival"})
        return record

    store.get = read_then_let_the_rival_win  # type: ignore[method-assign]

    # Both start from NEW: the rival's create lands first, ours must not overwrite it.
    with pytest.raises(ConcurrentTransition, match="NEW → BUILDING"):
        store.transition(PARTNER, MONTH, B, attributes={"task_id": "ours"})

    assert rival.get(PARTNER, MONTH).attributes == {"task_id": "rival"}  # type: ignore[union-attr]


# --- hostile input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("partner", "month"),
    [("../x", MONTH), ("Acme", MONTH), ("", MONTH), (PARTNER, "2026-13"), (PARTNER, "26-11")],
)
def test_invalid_partner_or_month_is_refused(
    store: BundleStateStore, ddb: Any, partner: str, month: str
) -> None:
    with pytest.raises(InvalidKeyPart):
        store.transition(partner, month, B)
    with pytest.raises(InvalidKeyPart):
        store.get(partner, month)

    assert state_items(ddb) == []
