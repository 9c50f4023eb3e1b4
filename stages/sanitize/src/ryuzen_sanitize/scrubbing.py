"""Applying the scrubber to validated events.

Two kinds of string fields, two policies:
- identifier fields (model id and version, region, error code, SDK, attribute keys) are
  never redacted — a detector hit there quarantines the whole event
  (``pii_in_identifier``), because a rewritten identifier would be a silent lie;
- the bounded free-text fields (``outcome.error_message``, string attribute values) are
  redacted in place (``onPii: redact``) or, with ``onPii: quarantine``, send the whole
  event to quarantine (``pii_in_text``).
All detection runs vectorized over one polars series per kind, not per event.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import polars as pl

from ryuzen_sanitize.scrubber import detect, scrub
from ryuzen_sanitize.validation import Accepted, Reason, Rejection, safe_path

ERROR_MESSAGE = "outcome.error_message"


@dataclass(frozen=True)
class CleanEvent:
    """An accepted event with its free text scrubbed: ready for SANITIZED."""

    accepted: Accepted
    error_message: str | None
    attributes: dict[str, str | int | float | bool]


@dataclass(frozen=True)
class ScrubOutcome:
    """What scrubbing did to a batch of accepted events."""

    clean: list[CleanEvent]
    rejected: list[Rejection]
    redactions: dict[str, int]


def _identifier_values(events: list[Accepted]) -> tuple[list[int], list[str], list[str]]:
    owners, fields, values = [], [], []
    for index, item in enumerate(events):
        event = item.event
        candidates: list[tuple[str, str | None]] = [
            ("model.id", event.model.id),
            ("model.version", event.model.version),
            ("region", event.region),
            ("outcome.error_code", event.outcome.error_code),
        ]
        if event.client is not None:
            candidates += [
                ("client.sdk", event.client.sdk),
                ("client.sdk_version", event.client.sdk_version),
            ]
        candidates += [("attributes.*", key) for key in event.attributes]
        # Numbers are never redacted (a rewritten number is a lie) but can still spell PII
        # — a Luhn-valid 16-digit "order id" is a card number — so they are checked like
        # identifiers, in the same text form the SANITIZED attributes column stores.
        candidates += [
            ("attributes.*", str(value))
            for value in event.attributes.values()
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        for field, value in candidates:
            if value:
                owners.append(index)
                fields.append(field)
                values.append(value)
    return owners, fields, values


def _text_values(events: list[Accepted], skip: set[int]) -> tuple[list[int], list[str], list[str]]:
    owners, fields, values = [], [], []
    for index, item in enumerate(events):
        if index in skip:
            continue
        event = item.event
        if event.outcome.error_message:
            owners.append(index)
            fields.append(ERROR_MESSAGE)
            values.append(event.outcome.error_message)
        for key, value in event.attributes.items():
            if isinstance(value, str) and value:
                owners.append(index)
                fields.append(f"attributes.{key}")
                values.append(value)
    return owners, fields, values


def _detect_distinct(values: list[str]) -> dict[str, list[str]]:
    distinct = sorted(set(values))
    if not distinct:
        return {}
    hits = detect(pl.Series(distinct, dtype=pl.String)).to_list()
    return dict(zip(distinct, hits, strict=True))


def scrub_events(events: list[Accepted], on_pii: Literal["redact", "quarantine"]) -> ScrubOutcome:
    """Check identifiers, then redact (or quarantine on) PII in the free-text fields."""
    rejected: dict[int, Rejection] = {}

    owners, fields, values = _identifier_values(events)
    # Identifiers repeat heavily (a few models, regions and SDKs): detect each distinct
    # value once.
    hits_by_value = _detect_distinct(values)
    for owner, field, value in zip(owners, fields, values, strict=True):
        rules = hits_by_value[value]
        if rules and owner not in rejected:
            item = events[owner]
            rejected[owner] = Rejection(
                item.line,
                Reason.PII_IN_IDENTIFIER,
                item.receipt.partner,
                item.event.event_id,
                field,
                rules[0],
                value,
            )

    owners, fields, values = _text_values(events, set(rejected))
    redacted_texts: dict[tuple[int, str], str] = {}
    redactions: Counter[str] = Counter()
    if values:
        result = scrub(pl.Series(values, dtype=pl.String))
        hits = result.rules_hit.to_list()
        redacted = result.redacted.to_list()
        for owner, field, value, rules, new_value in zip(
            owners, fields, values, hits, redacted, strict=True
        ):
            if not rules:
                continue
            if on_pii == "quarantine":
                if owner not in rejected:
                    item = events[owner]
                    path = (
                        ERROR_MESSAGE if field == ERROR_MESSAGE else safe_path(field.split(".", 1))
                    )
                    rejected[owner] = Rejection(
                        item.line,
                        Reason.PII_IN_TEXT,
                        item.receipt.partner,
                        item.event.event_id,
                        path,
                        rules[0],
                        value,
                    )
            else:
                redacted_texts[(owner, field)] = new_value
        if on_pii == "redact":
            redactions.update(result.counts)

    clean = []
    for index, item in enumerate(events):
        if index in rejected:
            continue
        event = item.event
        message = redacted_texts.get((index, ERROR_MESSAGE), event.outcome.error_message)
        attributes = {
            key: redacted_texts.get((index, f"attributes.{key}"), value)
            for key, value in event.attributes.items()
        }
        clean.append(CleanEvent(item, message, attributes))
    ordered_rejections = sorted(rejected.values(), key=lambda r: r.line)
    return ScrubOutcome(clean, ordered_rejections, dict(redactions))
