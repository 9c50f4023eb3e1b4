"""`ryuzen audit trail`: a partner-month's lifecycle, its scrub totals and the verdict."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog
from ryuzen_contracts.bundle_state import BundleState, BundleStateStore
from ryuzen_tools.audit_trail import build_trail, read_trail
from tools_audit_support import (
    DEFAULT_TABLE,
    REGION,
    audit_event,
    mocked_audit_table,
    ryuzen,
    write_all,
)

E = AuditEventType


@pytest.fixture
def audit(monkeypatch: pytest.MonkeyPatch) -> Iterator[AuditLog]:
    with mocked_audit_table(monkeypatch) as log:
        yield log


def at(minutes_ago: int, event_type: AuditEventType, **fields: Any) -> AuditEvent:
    return audit_event(event_type, ago=timedelta(minutes=minutes_ago), **fields)


def scrub(minutes_ago: int, **detail: Any) -> AuditEvent:
    return at(minutes_ago, E.SCRUB_VIOLATION, stage="sanitize", **detail)


def lifecycle(*steps: AuditEventType) -> list[AuditEvent]:
    """The named steps, an hour apart in order (oldest first)."""
    return [at(60 * (len(steps) - i), step) for i, step in enumerate(steps)]


ALL_STEPS = (E.BUNDLE_CREATED, E.BUNDLE_DELIVERED, E.TELEMETRY_DELETED)


@pytest.mark.parametrize(
    ("steps", "verdict"),
    [
        pytest.param(ALL_STEPS, "complete", id="complete"),
        pytest.param((E.BUNDLE_CREATED,), "missing BUNDLE_DELIVERED", id="missing-delivery"),
        pytest.param(
            (E.BUNDLE_CREATED, E.BUNDLE_DELIVERED),
            "missing TELEMETRY_DELETED",
            id="missing-deletion",
        ),
        pytest.param((), "missing BUNDLE_CREATED", id="nothing"),
        # the first missing step in order, even when a later one is there
        pytest.param(
            (E.BUNDLE_CREATED, E.TELEMETRY_DELETED),
            "missing BUNDLE_DELIVERED",
            id="deleted-but-not-delivered",
        ),
    ],
)
def test_verdicts(steps: tuple[AuditEventType, ...], verdict: str) -> None:
    trail = build_trail("acme", "2026-11", lifecycle(*steps))

    assert trail.verdict == verdict
    assert trail.complete is (verdict == "complete")
    assert trail.to_dict()["missing"] == (None if trail.complete else verdict.split()[1])


def test_scrub_violations_are_summed_across_events() -> None:
    events = [
        scrub(
            90,
            batch_id="01JD0000000000000000000001",
            redactions_by_rule={"EMAIL": 3, "IPV4": 1},
            quarantined_by_reason={"unknown_field": 2},
        ),
        scrub(80, redactions_by_rule={"EMAIL": 4, "PHONE": 2}, quarantined=5, partial=True),
        *lifecycle(*ALL_STEPS),
    ]

    trail = build_trail("acme", "2026-11", events)

    assert trail.scrub_violations == {
        "events": 2,
        "redactions_by_rule": {"EMAIL": 7, "IPV4": 1, "PHONE": 2},
        "quarantined_by_reason": {"unknown_field": 2},
        "quarantined": 5,  # numbers add up; the batch id and the flag are not counts
    }
    assert [e.event_type for e in trail.timeline] == list(ALL_STEPS)


def test_errors_are_in_the_timeline_but_not_a_step() -> None:
    refused = at(30, E.ERROR, stage="cleanup", reason="not_delivered")
    events = [*lifecycle(E.BUNDLE_CREATED), refused, at(10, E.BATCH_SANITIZED)]

    trail = build_trail("acme", "2026-11", events)

    assert [e.event_type for e in trail.timeline] == [E.BUNDLE_CREATED, E.ERROR]
    assert trail.verdict == "missing BUNDLE_DELIVERED"


def test_read_trail_is_oldest_first_and_scoped(audit: AuditLog) -> None:
    mine = lifecycle(*ALL_STEPS)
    write_all(
        audit,
        *reversed(mine),
        at(5, E.BUNDLE_DELIVERED, partner="orbital"),
        at(5, E.BUNDLE_DELIVERED, month="2026-10"),
    )
    ddb = boto3.client("dynamodb", region_name=REGION)  # the same in-process moto
    BundleStateStore(ddb, DEFAULT_TABLE).transition("acme", "2026-11", BundleState.BUILDING)

    trail = read_trail(audit, "acme", "2026-11")

    assert trail.timeline == mine
    assert trail.complete


# --- the command -------------------------------------------------------------------------


def test_complete_trail_on_the_terminal(audit: AuditLog) -> None:
    write_all(audit, scrub(300, redactions_by_rule={"EMAIL": 2}), *lifecycle(*ALL_STEPS))

    result = ryuzen("audit", "trail", "--partner", "acme", "--month", "2026-11")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == "verdict: complete"
    shown = "\n".join(lines)
    assert "redactions_by_rule 2 (EMAIL 2)" in shown
    positions = [shown.index(step.value) for step in ALL_STEPS]
    assert positions == sorted(positions)  # a timeline: in the order they happened


@pytest.mark.parametrize(
    ("steps", "verdict"),
    [
        pytest.param((E.BUNDLE_CREATED,), "missing BUNDLE_DELIVERED", id="missing-delivery"),
        pytest.param(ALL_STEPS[:2], "missing TELEMETRY_DELETED", id="missing-deletion"),
    ],
)
def test_incomplete_trail_exits_1(
    audit: AuditLog, steps: tuple[AuditEventType, ...], verdict: str
) -> None:
    write_all(audit, *lifecycle(*steps))

    result = ryuzen("audit", "trail", "--partner", "acme", "--month", "2026-11")

    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == f"verdict: {verdict}"


def test_json_trail_for_machines(audit: AuditLog) -> None:
    events = [scrub(300, redactions_by_rule={"EMAIL": 2}), *lifecycle(*ALL_STEPS[:2])]
    write_all(audit, *events)

    result = ryuzen("audit", "trail", "--partner", "acme", "--month", "2026-11", "--format", "json")

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["partner"] == "acme"
    assert document["month"] == "2026-11"
    assert document["complete"] is False
    assert document["missing"] == "TELEMETRY_DELETED"
    assert document["verdict"] == "missing TELEMETRY_DELETED"
    assert document["scrub_violations"] == {"events": 1, "redactions_by_rule": {"EMAIL": 2}}
    assert [entry["event_id"] for entry in document["timeline"]] == [e.event_id for e in events[1:]]
    assert set(document["timeline"][0]) == {
        "occurred_at",
        "event_type",
        "stage",
        "event_id",
        "detail",
    }


def test_empty_trail_says_so(audit: AuditLog) -> None:
    result = ryuzen("audit", "trail", "--partner", "nimbus-ai", "--month", "2026-11")

    assert result.exit_code == 1
    assert "no audit events match" in result.stderr
    assert result.stdout.splitlines()[-1] == "verdict: missing BUNDLE_CREATED"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param(["--partner", "a", "--month", "2026-11"], "invalid partner id 'a'", id="p"),
        pytest.param(["--partner", "acme", "--month", "2026-00"], "'2026-00'", id="month"),
        pytest.param(
            ["--partner", "acme", "--month", "2026-11", "--format", "csv"], "csv", id="format"
        ),
    ],
)
def test_bad_values_exit_2(audit: AuditLog, args: list[str], named: str) -> None:
    result = ryuzen("audit", "trail", *args)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert named in result.stderr
