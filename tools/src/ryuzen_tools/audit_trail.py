"""One partner-month's lifecycle from the audit table, as a timeline and a verdict.

A month is done when its bundle was created, delivered and its working telemetry deleted
(DESIGN §1); each step writes one audit event, so the first step without an event is
where the month stopped. Scrub violations are not a step — a month without PII has none —
so they are summed into totals ahead of the timeline. ``ERROR`` events of the month are
shown in the timeline because they usually say why a step is missing (cleanup refusing a
month that is not ``DELIVERED``, say), but they do not change the verdict.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog, iso_millis

LIFECYCLE = (
    AuditEventType.BUNDLE_CREATED,
    AuditEventType.BUNDLE_DELIVERED,
    AuditEventType.TELEMETRY_DELETED,
)
TIMELINE_TYPES = (*LIFECYCLE, AuditEventType.ERROR)


@dataclass(frozen=True)
class Trail:
    """What the audit table says about one partner-month."""

    partner: str
    month: str
    scrub_violations: dict[str, Any]
    timeline: list[AuditEvent]
    missing: AuditEventType | None

    @property
    def complete(self) -> bool:
        """True when every lifecycle step has an event."""
        return self.missing is None

    @property
    def verdict(self) -> str:
        """``complete``, or ``missing STEP`` naming the first step without an event."""
        return "complete" if self.missing is None else f"missing {self.missing.value}"

    def to_dict(self) -> dict[str, Any]:
        """The trail as plain JSON values (what ``--format json`` prints)."""
        return {
            "partner": self.partner,
            "month": self.month,
            "scrub_violations": self.scrub_violations,
            "timeline": [
                {
                    "occurred_at": iso_millis(event.occurred_at),
                    "event_type": event.event_type.value,
                    "stage": event.stage,
                    "event_id": event.event_id,
                    "detail": event.detail,
                }
                for event in self.timeline
            ],
            "complete": self.complete,
            "missing": None if self.missing is None else self.missing.value,
            "verdict": self.verdict,
        }


def build_trail(partner: str, month: str, events: Iterable[AuditEvent]) -> Trail:
    """Fold a partner-month's events (oldest first) into totals, a timeline and a verdict."""
    scrubs: dict[str, Any] = {"events": 0}
    timeline: list[AuditEvent] = []
    for event in events:
        if event.event_type is AuditEventType.SCRUB_VIOLATION:
            scrubs["events"] += 1
            _add_counts(scrubs, event.detail)
        elif event.event_type in TIMELINE_TYPES:
            timeline.append(event)
    seen = {event.event_type for event in timeline}
    missing = next((step for step in LIFECYCLE if step not in seen), None)
    return Trail(partner, month, scrubs, timeline, missing)


def read_trail(audit: AuditLog, partner: str, month: str) -> Trail:
    """The trail of ``partner``/``month`` from the table (validates both, raising ValueError)."""
    events = audit.query_partner_month(partner, month, newest_first=False)
    return build_trail(partner, month, events)


def _add_counts(totals: dict[str, Any], detail: dict[str, Any]) -> None:
    """Add every number of ``detail`` (and of its count maps) into ``totals``.

    Generic on purpose: sanitize's maps (``redactions_by_rule``, ``quarantined_by_reason``,
    ...) gain keys as rules are added, and a new rule must still be counted here.
    """
    for key, value in detail.items():
        if _is_count(value):
            totals[key] = totals.get(key, 0) + value
        elif isinstance(value, dict):
            counts = totals.setdefault(key, {})
            for inner, number in value.items():
                if _is_count(number):
                    counts[inner] = counts.get(inner, 0) + number


def _is_count(value: Any) -> bool:
    # bool is an int in Python; a flag summed as 1 would be a wrong count.
    return isinstance(value, int | float) and not isinstance(value, bool)


def trail_report(trail: Trail) -> Group:
    """The trail for a terminal: one table (scrub totals, then each event), then the verdict."""
    table = Table(title=f"audit trail {trail.partner} {trail.month}", show_header=True)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("step", no_wrap=True)
    table.add_column("stage")
    table.add_column("detail", overflow="fold")
    table.add_row("", "SCRUB_VIOLATION totals", "", Text(_scrub_summary(trail.scrub_violations)))
    for event in trail.timeline:
        table.add_row(
            iso_millis(event.occurred_at),
            event.event_type.value,
            event.stage,
            Text(_compact(event.detail)),  # Text: a "[" in a detail is not rich markup
        )
    style = "green" if trail.complete else "red"
    return Group(table, Text(f"verdict: {trail.verdict}", style=style))


def _scrub_summary(totals: dict[str, Any]) -> str:
    """``3 events; redactions_by_rule 8 (EMAIL 7, IPV4 1); ...``: each map with its sum."""
    parts = [f"{totals['events']} events"]
    for key, value in sorted(totals.items()):
        if isinstance(value, dict):
            counts = ", ".join(f"{name} {number}" for name, number in sorted(value.items()))
            parts.append(f"{key} {sum(value.values())} ({counts})")
        elif key != "events":
            parts.append(f"{key} {value}")
    return "; ".join(parts)


def _compact(detail: dict[str, Any]) -> str:
    return json.dumps(detail, separators=(",", ":"), sort_keys=True)
