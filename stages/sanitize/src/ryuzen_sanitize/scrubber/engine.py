"""The vectorized first pass: every rule as whole-series polars expressions.

For each rule, in order: ``str.contains`` picks the rows that hold a candidate; on those
rows only,

- a rule without a validator is one ``str.replace_all`` (``${ctx}[REDACTED:X]${post}``
  keeps the context words) and ``str.count_matches`` counts it;
- a rule with a validator extracts its candidates (``str.extract_all``), validates the
  *unique* candidates in Python (few: a validator never sees a row, only a candidate),
  wraps every candidate in two sentinel characters with ``str.replace_all`` and swaps the
  wrapped valid ones for their redacted form with one Aho-Corasick ``str.replace_many``.
  The sentinels are Unicode noncharacters absent from those rows, so a wrapped candidate
  can only match itself: no partial hit inside a longer token and no leak from one row's
  verdict to another row's identical-looking text.

Redaction can make new text adjacent (a marker between two number groups), so the
rows a round changed are scanned again with every rule until none fires (a fixed point:
that is what makes ``scrub`` idempotent and the second scan come back empty). A row
still firing after ``MAX_ROUNDS`` is replaced whole by a marker: fail closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ryuzen_sanitize.scrubber.rules import RULE_IDS, RULES, Rule, marker
from ryuzen_sanitize.scrubber.validators import validate

MAX_ROUNDS = 4
# U+FDD0..U+FDEF are noncharacters: valid in a string, never assigned, so telemetry text
# essentially never holds them; the engine still checks and picks two that are absent.
_NONCHARACTERS = tuple(chr(code) for code in range(0xFDD0, 0xFDF0))
_NONCHARACTER_CLASS = "[\ufdd0-\ufdef]"
_FINDINGS_SCHEMA = {"row": pl.UInt32, "rule": pl.String, "count": pl.UInt32}


@dataclass(frozen=True)
class ScrubResult:
    """What :func:`scrub` returns.

    ``redacted``: the input with every finding replaced by ``[REDACTED:<RULE>]`` (same
    length, nulls kept). ``rules_hit``: ``List(String)``, the sorted unique rule ids that
    fired per row (``[]`` for none and for nulls). ``counts``: redactions per rule id.
    ``findings``: one row per (input row, rule) that redacted something — columns ``row``,
    ``rule``, ``count`` — so a caller can attribute redactions to whoever owns each row;
    its ``count`` column sums to ``counts``.
    """

    redacted: pl.Series
    rules_hit: pl.Series
    counts: dict[str, int]
    findings: pl.DataFrame


class _Verdicts:
    """Validator verdicts per (rule, candidate), kept for one call: the same candidate in
    many rows (or rounds) is validated once. Value: the redacted candidate, or None."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], str | None] = {}

    def replacement(self, rule: Rule, candidate: str) -> str | None:
        key = (rule.key, candidate)
        if key not in self._cache:
            self._cache[key] = _redact_candidate(rule, candidate)
        return self._cache[key]


def _redact_candidate(rule: Rule, candidate: str) -> str | None:
    """The candidate with its PII span replaced by the marker, or None if not PII."""
    match = rule.python_regex.fullmatch(candidate)
    if match is None:
        # The engines disagree on this candidate (should not happen with the portable
        # dialect): redact it whole rather than let it through.
        return rule.marker
    span = validate(rule.validator, match)
    if span is None:
        return None
    start, end = span
    return candidate[:start] + rule.marker + candidate[end:]


def _valid_candidates(
    rule: Rule, texts: pl.Series, verdicts: _Verdicts
) -> tuple[pl.Series, dict[str, str]]:
    """Per row, how many valid candidates it holds; and candidate -> replacement."""
    candidates = texts.str.extract_all(rule.rust_pattern)
    flat = pl.DataFrame(
        {"row": pl.int_range(0, texts.len(), eager=True, dtype=pl.UInt32), "c": candidates}
    ).explode("c")
    replacements: dict[str, str] = {}
    for candidate in flat.get_column("c").drop_nulls().unique().to_list():
        replaced = verdicts.replacement(rule, candidate)
        if replaced is not None:
            replacements[candidate] = replaced
    if not replacements:
        return pl.Series("n", [0] * texts.len(), dtype=pl.UInt32), replacements
    per_row = (
        flat.group_by("row", maintain_order=True)
        .agg(pl.col("c").is_in(list(replacements)).sum().alias("n"))
        .get_column("n")
    )
    return per_row, replacements


def _sentinels(texts: pl.Series) -> tuple[str, str] | None:
    """Two noncharacters that occur in none of ``texts``, or None if there are not two."""
    if not texts.str.contains(_NONCHARACTER_CLASS).any():
        return _NONCHARACTERS[0], _NONCHARACTERS[1]
    free = [c for c in _NONCHARACTERS if not texts.str.contains(c, literal=True).any()]
    return (free[0], free[1]) if len(free) >= 2 else None


def _swap_valid(texts: pl.Series, rule: Rule, replacements: dict[str, str]) -> pl.Series:
    """Replace exactly the valid candidates, wherever the rule's regex found them."""
    sentinels = _sentinels(texts)
    if sentinels is None:
        # Rows holding (nearly) every noncharacter: no safe sentinel, so fail closed and
        # redact the whole value. Nothing legitimate looks like that.
        return pl.Series(texts.name, [rule.marker] * texts.len(), dtype=pl.String)
    open_, close = sentinels
    wrapped = texts.str.replace_all(rule.rust_pattern, open_ + "${0}" + close)
    replaced = wrapped.str.replace_many(
        [open_ + candidate + close for candidate in replacements],
        list(replacements.values()),
    )
    # Invalid candidates are still wrapped: drop the sentinels to restore them verbatim.
    return replaced.str.replace_many([open_, close], ["", ""])


def _apply_validated(
    rule: Rule, texts: pl.Series, verdicts: _Verdicts
) -> tuple[pl.Series, pl.Series]:
    per_row, replacements = _valid_candidates(rule, texts, verdicts)
    if not replacements:
        return texts, per_row
    rows = (per_row > 0).arg_true()
    subset = texts.gather(rows)
    # Rows that already hold a noncharacter (never in real telemetry) get their own
    # sentinel choice, so one odd row cannot push every other row into failing closed.
    odd = subset.str.contains(_NONCHARACTER_CLASS).fill_null(False)
    if odd.any():
        plain_rows, odd_rows = (~odd).arg_true(), odd.arg_true()
        new = subset.clone()
        new.scatter(plain_rows, _swap_valid(subset.gather(plain_rows), rule, replacements))
        new.scatter(odd_rows, _swap_valid(subset.gather(odd_rows), rule, replacements))
    else:
        new = _swap_valid(subset, rule, replacements)
    return texts.clone().scatter(rows, new), per_row


def _apply_plain(rule: Rule, texts: pl.Series) -> tuple[pl.Series, pl.Series]:
    per_row = texts.str.count_matches(rule.rust_pattern)
    if "pii" in rule.groups:
        replacement = (
            ("${ctx}" if "ctx" in rule.groups else "")
            + rule.marker
            + ("${post}" if "post" in rule.groups else "")
        )
    else:
        replacement = rule.marker
    return texts.str.replace_all(rule.rust_pattern, replacement), per_row


class _Pass:
    """The mutable state of one ``scrub`` call: current values, hits and counts."""

    def __init__(self, texts: pl.Series) -> None:
        self.values = texts.clone()
        # (row, rule id) pairs, one frame per rule that fired; few rows, so cheap to keep.
        self.hits: list[pl.DataFrame] = []
        self.counts: dict[str, int] = dict.fromkeys(RULE_IDS, 0)
        self.verdicts = _Verdicts()

    def _record(self, rule_id: str, rows: pl.Series, per_row: pl.Series | None = None) -> None:
        if per_row is not None:
            per_row = per_row.fill_null(0).cast(pl.UInt32)
            self.counts[rule_id] += int(per_row.sum())
            rows, per_row = rows.filter(per_row > 0), per_row.filter(per_row > 0)
        else:
            self.counts[rule_id] += rows.len()
            per_row = pl.Series([1] * rows.len(), dtype=pl.UInt32)
        if rows.len():
            self.hits.append(
                pl.DataFrame(
                    {"row": rows.cast(pl.UInt32), "rule": [rule_id] * rows.len(), "count": per_row}
                )
            )

    def findings(self) -> pl.DataFrame:
        """(row, rule, count) for every row a rule redacted something in."""
        if not self.hits:
            return pl.DataFrame(schema=_FINDINGS_SCHEMA)
        return (
            pl.concat(self.hits)
            .group_by("row", "rule", maintain_order=True)
            .agg(pl.col("count").sum())
        )

    def redact(self, rows: pl.Series) -> pl.Series:
        """Apply every rule in order to ``rows``; return the rows whose text changed."""
        current = self.values.gather(rows)
        before = current.clone()  # Series.scatter works in place
        for rule in RULES:
            mask = current.str.contains(rule.rust_pattern).fill_null(False)
            if not mask.any():
                continue
            local = mask.arg_true()
            subset = current.gather(local)
            if rule.validator is None:
                new, per_row = _apply_plain(rule, subset)
            else:
                new, per_row = _apply_validated(rule, subset, self.verdicts)
            self._record(rule.id, rows.gather(local), per_row)
            current = current.scatter(local, new)
        changed = (current != before).fill_null(False)
        self.values = self.values.scatter(rows, current)
        return rows.filter(changed)

    def _firing_per_rule(self, rows: pl.Series) -> list[tuple[Rule, pl.Series]]:
        """For each rule, the rows (of ``rows``) where it finds valid PII right now."""
        current = self.values.gather(rows)
        found: list[tuple[Rule, pl.Series]] = []
        for rule in RULES:
            mask = current.str.contains(rule.rust_pattern).fill_null(False)
            if not mask.any():
                continue
            local = mask.arg_true()
            if rule.validator is not None:
                per_row, _ = _valid_candidates(rule, current.gather(local), self.verdicts)
                local = local.filter(per_row > 0)
            if local.len():
                found.append((rule, rows.gather(local)))
        return found

    def still_firing(self, rows: pl.Series) -> pl.Series:
        """Rows (of ``rows``) where some rule still finds valid PII; nothing is changed."""
        found = [hit for _, hit in self._firing_per_rule(rows)]
        return pl.concat(found).unique().sort() if found else rows.head(0)

    def fail_closed(self, rows: pl.Series) -> None:
        """Replace whole values that did not converge in ``MAX_ROUNDS`` (never seen outside
        contrived rule sets) by the marker of the first rule still firing in them."""
        done: set[int] = set()
        for rule, hit in self._firing_per_rule(rows):
            hit = hit.filter(~hit.is_in(list(done)))
            if hit.len():
                self.values = self.values.scatter(hit, rule.marker)
                self._record(rule.id, hit)
                done.update(hit.to_list())

    def rules_hit(self) -> pl.Series:
        """``List(String)`` per row: sorted unique rule ids, ``[]`` where none fired."""
        every_row = pl.DataFrame({"row": pl.int_range(0, self.values.len(), eager=True)})
        every_row = every_row.with_columns(pl.col("row").cast(pl.UInt32))
        pairs = pl.concat(self.hits) if self.hits else pl.DataFrame(schema=_FINDINGS_SCHEMA)
        per_row = pairs.group_by("row").agg(pl.col("rule").unique().sort())
        return (
            every_row.join(per_row, on="row", how="left", maintain_order="left")
            .get_column("rule")
            .fill_null(pl.lit([], dtype=pl.List(pl.String)))
            .alias("rules_hit")
        )


def _as_text_series(texts: pl.Series) -> pl.Series:
    if texts.dtype == pl.String:
        return texts
    if texts.dtype == pl.Null:
        return texts.cast(pl.String)
    raise TypeError(f"scrub expects a pl.String series, got {texts.dtype}")


def _run(texts: pl.Series) -> _Pass:
    state = _Pass(_as_text_series(texts))
    rows = pl.int_range(0, texts.len(), eager=True, dtype=pl.UInt32)
    for _ in range(MAX_ROUNDS):
        changed = state.redact(rows)
        if changed.len() == 0:
            return state
        rows = state.still_firing(changed)
        if rows.len() == 0:
            return state
    state.fail_closed(rows)
    return state


def scrub(texts: pl.Series) -> ScrubResult:
    """Redact every finding in ``texts`` (a ``pl.String`` series, nulls allowed)."""
    state = _run(texts)
    counts = {rule_id: count for rule_id, count in state.counts.items() if count}
    return ScrubResult(
        redacted=state.values.rename(texts.name),
        rules_hit=state.rules_hit().rename(texts.name),
        counts=counts,
        findings=state.findings(),
    )


def detect(texts: pl.Series) -> pl.Series:
    """The sorted unique rule ids that fire per row (``List(String)``), text unchanged.

    Runs the same ordered pass as :func:`scrub`, so ``detect(x)`` equals
    ``scrub(x).rules_hit``: a quarantine decision and a redaction never disagree.
    """
    return _run(texts).rules_hit().rename(texts.name)


__all__ = ["MAX_ROUNDS", "ScrubResult", "detect", "marker", "scrub"]
