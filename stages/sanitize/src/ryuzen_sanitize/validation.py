"""Fail-closed validation of parsed RAW lines against TelemetryEvent v1.

Every line ends as exactly one of: an ``Accepted`` event, or a ``Rejection`` with a
reason code and (where there is one) a field path. Field paths and event ids are only
recorded when they cannot carry user data: a path part that is not a plain lowercase
name is replaced by ``*``, an event id only when it matches the id pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from ryuzen_contracts.ids import EVENT_ID_PATTERN
from ryuzen_contracts.stack_config import Partner, StackConfig
from ryuzen_contracts.telemetry_event import TelemetryEvent

from ryuzen_sanitize.raw_lines import RawLine, Receipt

MAX_PAST = timedelta(days=7)
MAX_FUTURE = timedelta(minutes=5)
_EVENT_ID_RE = re.compile(EVENT_ID_PATTERN)
# A path part is kept only when it is a plain name: "prompt", "outcome", "latency_ms".
_SAFE_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,31}$")


class Reason(StrEnum):
    """Why an event went to quarantine."""

    INVALID_JSON = "invalid_json"
    DUPLICATE_KEY = "duplicate_key"
    SCHEMA_VIOLATION = "schema_violation"
    UNKNOWN_FIELD = "unknown_field"
    UNKNOWN_MODEL = "unknown_model"
    CLOCK_SKEW = "clock_skew"
    DUPLICATE_EVENT_ID = "duplicate_event_id"
    PII_IN_IDENTIFIER = "pii_in_identifier"
    PII_IN_TEXT = "pii_in_text"  # only with stack config onPii: quarantine


@dataclass(frozen=True)
class Accepted:
    """A valid event, its receipt and its partner."""

    line: int
    event: TelemetryEvent
    receipt: Receipt


@dataclass(frozen=True)
class Rejection:
    """An event bound for quarantine. ``value`` is only ever hashed, never stored."""

    line: int
    reason: Reason
    partner: str | None
    event_id: str | None = None
    field: str | None = None
    rule: str | None = None
    value: str | None = None


def safe_path(parts: tuple[Any, ...] | list[Any]) -> str:
    """A dotted field path in which anything that is not a plain name becomes ``*``."""
    rendered = []
    for part in parts:
        if isinstance(part, int):
            rendered.append(str(part))
        elif isinstance(part, str) and _SAFE_NAME_RE.match(part):
            rendered.append(part)
        else:
            rendered.append("*")
    return ".".join(rendered) or "*"


def safe_event_id(event: dict[str, Any] | None) -> str | None:
    """The event's id when it is a well-formed UUID/ULID (so it cannot be user data)."""
    value = event.get("event_id") if isinstance(event, dict) else None
    return value if isinstance(value, str) and _EVENT_ID_RE.match(value) else None


def validate_lines(
    lines: list[RawLine], config: StackConfig
) -> tuple[list[Accepted], list[Rejection]]:
    """Split parsed lines into accepted events and rejections, in line order."""
    accepted: list[Accepted] = []
    rejected: list[Rejection] = []
    seen_ids: set[str] = set()
    # A batch names a handful of models thousands of times: look each owner up once.
    owners: dict[str, Partner | None] = {}
    for line in lines:
        partner = line.receipt.partner if line.receipt else None
        if line.error is not None or line.event is None or line.receipt is None:
            reason = Reason.DUPLICATE_KEY if line.error == "duplicate_key" else Reason.INVALID_JSON
            field = safe_path([line.error_field]) if line.error_field else None
            rejected.append(
                Rejection(line.number, reason, partner, safe_event_id(line.event), field)
            )
            continue
        outcome = _validate_event(line, config, owners)
        if isinstance(outcome, Rejection):
            rejected.append(outcome)
        elif outcome.event.event_id in seen_ids:
            rejected.append(
                Rejection(
                    line.number,
                    Reason.DUPLICATE_EVENT_ID,
                    partner,
                    outcome.event.event_id,
                    "event_id",
                )
            )
        else:
            seen_ids.add(outcome.event.event_id)
            accepted.append(outcome)
    return accepted, rejected


def _validate_event(
    line: RawLine, config: StackConfig, owners: dict[str, Partner | None]
) -> Accepted | Rejection:
    assert line.receipt is not None and line.event is not None
    receipt = line.receipt
    event_id = safe_event_id(line.event)
    try:
        event = TelemetryEvent.model_validate(line.event)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False, include_context=False)
        unknown = next((p for p in problems if p["type"] == "extra_forbidden"), None)
        if unknown is not None:
            return Rejection(
                line.number,
                Reason.UNKNOWN_FIELD,
                receipt.partner,
                event_id,
                safe_path(unknown["loc"]),
            )
        return Rejection(
            line.number,
            Reason.SCHEMA_VIOLATION,
            receipt.partner,
            event_id,
            safe_path(problems[0]["loc"]),
        )
    if event.model.id not in owners:
        owners[event.model.id] = config.partner_for_model(event.model.id)
    owner = owners[event.model.id]
    if owner is None or owner.id != receipt.partner:
        # Either no partner owns the model any more, or the config moved it to another
        # partner since receipt: never guess, the receipt's partner must still own it.
        return Rejection(
            line.number, Reason.UNKNOWN_MODEL, receipt.partner, event.event_id, "model.id"
        )
    if not receipt.received_at - MAX_PAST <= event.occurred_at <= receipt.received_at + MAX_FUTURE:
        return Rejection(
            line.number, Reason.CLOCK_SKEW, receipt.partner, event.event_id, "occurred_at"
        )
    return Accepted(line.number, event, receipt)
