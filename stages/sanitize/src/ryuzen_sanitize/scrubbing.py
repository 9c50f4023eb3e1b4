"""Applying the scrubber to the frame of one RAW object's validated events.

Two kinds of string fields, two policies:
- identifier fields (model id and version, region, error code, SDK, attribute keys) are
  never redacted — a detector hit there quarantines the whole event
  (``pii_in_identifier``), because a rewritten identifier would be a silent lie;
- the bounded free-text fields (``outcome.error_message``, string attribute values) are
  redacted in place (``onPii: redact``) or, with ``onPii: quarantine``, send the whole
  event to quarantine (``pii_in_text``).

Everything runs column-wise over the whole object — every partner's events at once —
so the scrubber's fixed cost per call is paid twice per object, not per partner or per
event. Candidates are gathered into one long table ``(row, order, position, field,
value)``: ``row`` is the event's row in the frame; ``order`` and ``position`` rank the
fields of one event, so when several fire the first in field order is the one reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from ryuzen_sanitize.sanitized_frame import attribute_rows, attributes_column
from ryuzen_sanitize.scrubber import detect, scrub
from ryuzen_sanitize.validation import Reason, Rejection, safe_path

ERROR_MESSAGE = "outcome.error_message"
# SANITIZED column -> the event field it holds, in the order findings are reported.
IDENTIFIER_COLUMNS = (
    ("model_id", "model.id"),
    ("model_version", "model.version"),
    ("region", "region"),
    ("error_code", "outcome.error_code"),
    ("client_sdk", "client.sdk"),
    ("client_sdk_version", "client.sdk_version"),
)
_FIXED_PATHS = frozenset({ERROR_MESSAGE, "attributes.*", *(f for _, f in IDENTIFIER_COLUMNS)})
_CANDIDATE_SCHEMA = pl.Schema(
    {
        "row": pl.UInt32,
        "order": pl.UInt32,
        "position": pl.UInt32,
        "field": pl.String,
        "value": pl.String,
    }
)


@dataclass(frozen=True)
class ScrubOutcome:
    """What scrubbing did to one object's events.

    ``frame``: the events that stay, free text redacted, in their original order.
    ``rejected``: the events that go to quarantine instead. ``redactions``: per partner,
    redactions per rule id.
    """

    frame: pl.DataFrame
    rejected: list[Rejection]
    redactions: dict[str, dict[str, int]]


def _candidates(
    row: pl.Expr, order: int, field: pl.Expr, value: pl.Expr, position: pl.Expr | None = None
) -> list[pl.Expr]:
    return [
        row.cast(pl.UInt32).alias("row"),
        pl.lit(order, dtype=pl.UInt32).alias("order"),
        (pl.lit(0, dtype=pl.UInt32) if position is None else position).alias("position"),
        field.alias("field"),
        value.alias("value"),
    ]


def _identifier_candidates(frame: pl.DataFrame, attributes: pl.DataFrame) -> pl.DataFrame:
    row = pl.int_range(pl.len(), dtype=pl.UInt32)
    parts = [
        frame.select(_candidates(row, order, pl.lit(field), pl.col(column)))
        for order, (column, field) in enumerate(IDENTIFIER_COLUMNS)
    ]
    # The model's name on its own too: in "acme/203.0.113.91" the "acme/" prefix reads as
    # a path and hides the address from the IPv4 and phone rules' context checks.
    model_name = pl.col("model_id").str.split_exact("/", 1).struct.field("field_1")
    parts.append(
        frame.select(_candidates(row, 0, pl.lit("model.id"), model_name, pl.lit(1, pl.UInt32)))
    )
    keys_order, numbers_order = len(IDENTIFIER_COLUMNS), len(IDENTIFIER_COLUMNS) + 1
    indexed = attributes.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("at"))
    any_field = pl.lit("attributes.*")
    parts.append(
        indexed.select(
            _candidates(pl.col("row"), keys_order, any_field, pl.col("key"), pl.col("at"))
        )
    )
    # Numbers are never redacted (a rewritten number is a lie) but can still spell PII —
    # a Luhn-valid 16-digit "order id" is a card number — so they are checked like
    # identifiers, in the text form the SANITIZED attributes column stores.
    parts.append(
        indexed.filter(pl.col("type").is_in(["int", "float"])).select(
            _candidates(pl.col("row"), numbers_order, any_field, pl.col("value"), pl.col("at"))
        )
    )
    return _non_empty(pl.concat(parts))


def _text_candidates(frame: pl.DataFrame, attributes: pl.DataFrame) -> pl.DataFrame:
    row = pl.int_range(pl.len(), dtype=pl.UInt32)
    messages = frame.select(_candidates(row, 0, pl.lit(ERROR_MESSAGE), pl.col("error_message")))
    # ``position`` of an attribute text is its row in ``attributes``: where it goes back.
    strings = (
        attributes.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("at"))
        .filter(pl.col("type") == "string")
        .select(
            _candidates(
                pl.col("row"),
                1,
                pl.lit("attributes.") + pl.col("key"),
                pl.col("value"),
                pl.col("at"),
            )
        )
    )
    return _non_empty(pl.concat([messages, strings]))


def _non_empty(candidates: pl.DataFrame) -> pl.DataFrame:
    return candidates.select(_CANDIDATE_SCHEMA.names()).filter(
        pl.col("value").is_not_null() & (pl.col("value") != "")
    )


def _first_per_event(hits: pl.DataFrame) -> pl.DataFrame:
    """The first firing field of each event (field order), with its first rule id."""
    return (
        hits.sort("row", "order", "position")
        .group_by("row", maintain_order=True)
        .first()
        .with_columns(pl.col("rules").list.first().alias("rule"))
    )


def _rejections(
    hits: pl.DataFrame, frame: pl.DataFrame, lines: list[int], reason: Reason
) -> list[Rejection]:
    first = _first_per_event(hits)
    partners = frame.get_column("partner").gather(first.get_column("row"))
    event_ids = frame.get_column("event_id").gather(first.get_column("row"))
    rejected = []
    for row, field, value, rule, partner, event_id in zip(
        first.get_column("row"),
        first.get_column("field"),
        first.get_column("value"),
        first.get_column("rule"),
        partners,
        event_ids,
        strict=True,
    ):
        # Identifier fields are fixed names; an attribute's key is user-chosen, so in a
        # free-text path a key that is not a plain name becomes "*".
        path = field if field in _FIXED_PATHS else safe_path(field.split(".", 1))
        rejected.append(Rejection(lines[row], reason, partner, event_id, path, rule, value))
    return rejected


def _identifier_hits(candidates: pl.DataFrame) -> pl.DataFrame:
    # Identifiers repeat heavily (a few models, regions and SDKs): each distinct value is
    # checked once.
    distinct = candidates.get_column("value").unique().sort()
    verdicts = pl.DataFrame({"value": distinct, "rules": detect(distinct)})
    return candidates.join(verdicts.filter(pl.col("rules").list.len() > 0), on="value", how="inner")


def _redact(
    frame: pl.DataFrame,
    attributes: pl.DataFrame,
    texts: pl.DataFrame,
) -> pl.DataFrame:
    """``frame`` with the redacted texts written back into their columns."""
    changed = texts.filter(pl.col("redacted") != pl.col("value"))
    messages = changed.filter(pl.col("order") == 0)
    error_message = frame.get_column("error_message").scatter(
        messages.get_column("row"), messages.get_column("redacted")
    )
    strings = changed.filter(pl.col("order") == 1)
    values = attributes.get_column("value").scatter(
        strings.get_column("position"), strings.get_column("redacted")
    )
    new_attributes = attributes.with_columns(values.alias("value"))
    return frame.with_columns(
        error_message.alias("error_message"),
        attributes_column(new_attributes, frame.height),
    )


def _redactions_per_partner(
    frame: pl.DataFrame, texts: pl.DataFrame, findings: pl.DataFrame
) -> dict[str, dict[str, int]]:
    owners = texts.get_column("row").gather(findings.get_column("row"))
    per_partner = (
        findings.with_columns(frame.get_column("partner").gather(owners).alias("partner"))
        .group_by("partner", "rule")
        .agg(pl.col("count").sum())
        .sort("partner", "rule")
    )
    redactions: dict[str, dict[str, int]] = {}
    for partner, rule, count in per_partner.iter_rows():
        redactions.setdefault(partner, {})[rule] = int(count)
    return redactions


def scrub_frame(
    frame: pl.DataFrame, lines: list[int], on_pii: Literal["redact", "quarantine"]
) -> ScrubOutcome:
    """Check identifiers, then redact (or quarantine on) PII in the free-text fields.

    ``frame`` holds one object's validated events in the SANITIZED schema; ``lines[i]``
    is the RAW line number of its row ``i`` (what a quarantine record cites).
    """
    attributes = attribute_rows(frame)
    identifier_hits = _identifier_hits(_identifier_candidates(frame, attributes))
    rejected = _rejections(identifier_hits, frame, lines, Reason.PII_IN_IDENTIFIER)
    flagged = identifier_hits.get_column("row").unique()

    texts = _text_candidates(frame, attributes).filter(~pl.col("row").is_in(flagged.implode()))
    result = scrub(texts.get_column("value"))
    texts = texts.with_columns(result.redacted.alias("redacted"), result.rules_hit.alias("rules"))
    text_hits = texts.filter(pl.col("rules").list.len() > 0)

    redactions: dict[str, dict[str, int]] = {}
    if on_pii == "quarantine":
        rejected += _rejections(text_hits, frame, lines, Reason.PII_IN_TEXT)
        flagged = pl.concat([flagged, text_hits.get_column("row").unique()])
    elif text_hits.height:
        redactions = _redactions_per_partner(frame, texts, result.findings)
        frame = _redact(frame, attributes, texts)

    keep = ~pl.int_range(frame.height, dtype=pl.UInt32, eager=True).is_in(flagged.implode())
    return ScrubOutcome(
        frame=frame.filter(keep),
        rejected=sorted(rejected, key=lambda rejection: rejection.line),
        redactions=redactions,
    )
