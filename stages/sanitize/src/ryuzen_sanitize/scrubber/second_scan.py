"""The independent second scan over the scrubbed output.

A different implementation from the first pass on purpose: Python's backtracking ``re``
engine instead of polars' Rust automata, one text at a time instead of whole-series
expressions, every rule over the whole final text instead of an ordered, rewriting
pass. It shares only the rule table and the validators. A bug in the vectorized engine
(a replacement that did not apply, a sentinel that leaked, a row scattered back to the
wrong place) therefore shows up here instead of hiding itself. A wrong *pattern* would
be wrong in both: the per-rule tables of positives and decoys are the guard for that.

Speed without changing a single verdict:

- Per text, a rule's full pattern and validator run only where its prefilter (see
  :mod:`ryuzen_sanitize.scrubber.prefilters`) holds: conditions every match of the
  pattern satisfies (traits of the text, then a cheap gate regex every match contains).
  Where one fails the rule cannot match, so skipping it changes nothing.
- Within one call, a text seen before gets the verdict computed for it then (the scan
  is a pure function of the text; telemetry repeats its strings a lot).

:func:`_rules_found_reference` is the plain scan without either (the definition the
fast path must equal; the tests compare the two).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from ryuzen_sanitize.scrubber.prefilters import (
    ALL_TRAITS,
    TRAITS,
    Subject,
    compile_gate,
    current_prefilters,
    shape,
    trait_mask,
)
from ryuzen_sanitize.scrubber.rules import RULES
from ryuzen_sanitize.scrubber.validators import validate

# A compiled gate's ``search`` (over ``str`` or, for shape gates, ``bytes``).
_Search = Callable[[Any], object]
_TEXT, _FOLDED, _SHAPE = 0, 1, 2
_SUBJECTS: dict[Subject, int] = {"text": _TEXT, "folded": _FOLDED, "shape": _SHAPE}


class _Step(NamedTuple):
    """One rule as the fast scan runs it: its gates in order (``(subject, search)``),
    then its pattern and validator."""

    rule_id: str
    gates: tuple[tuple[int, _Search], ...]
    finditer: Callable[[str], Iterator[re.Match[str]]]
    validator: str | None


def _plans() -> tuple[tuple[_Step, ...], ...]:
    """For each combination of traits (bit ``i`` set: ``TRAITS[i]`` present), the rules
    in rule-set order whose prefilter needs no absent trait. A rule without a current
    prefilter needs nothing and has no gate: it runs on every text."""
    prefilters = current_prefilters()
    steps: list[tuple[frozenset[str], _Step]] = []
    for rule in RULES:
        prefilter = prefilters.get(rule.key)
        needs: frozenset[str] = frozenset()
        gates: tuple[tuple[int, _Search], ...] = ()
        if prefilter is not None:
            needs = prefilter.needs
            gates = tuple((_SUBJECTS[gate.on], compile_gate(gate)) for gate in prefilter.gates)
        steps.append((needs, _Step(rule.id, gates, rule.python_regex.finditer, rule.validator)))
    plans = []
    for mask in range(ALL_TRAITS + 1):
        present = {name for bit, name in enumerate(TRAITS) if mask >> bit & 1}
        plans.append(tuple(step for needs, step in steps if needs <= present))
    return tuple(plans)


_PLANS = _plans()


def _rules_found(text: str) -> list[str]:
    """The rule ids that find valid PII in ``text``, in rule-set order (fast path)."""
    found: list[str] = []
    text_shape = shape(text)
    folded: str | None = None
    for rule_id, gates, finditer, validator in _PLANS[trait_mask(text_shape)]:
        if rule_id in found:
            continue
        for subject, search in gates:
            if subject == _SHAPE:
                if search(text_shape) is None:
                    break
            elif subject == _TEXT:
                if search(text) is None:
                    break
            else:
                if folded is None:
                    folded = text.lower()
                if search(folded) is None:
                    break
        else:  # every gate found something: the rule may match, so run it
            for match in finditer(text):
                if validate(validator, match) is not None:
                    found.append(rule_id)
                    break
    return found


def _rules_found_reference(text: str) -> list[str]:
    """The same as :func:`_rules_found` without prefilters: every rule, every text."""
    found: list[str] = []
    for rule in RULES:
        if rule.id in found:
            continue
        for match in rule.python_regex.finditer(text):
            if validate(rule.validator, match) is not None:
                found.append(rule.id)
                break
    return found


def second_scan(texts: Iterable[str | None]) -> list[tuple[int, str]]:
    """``(index, rule id)`` for every text that still holds PII, one pair per rule.

    Returns ``[]`` for every output of ``scrub``. Nulls and empty strings are skipped.
    """
    violations: list[tuple[int, str]] = []
    seen: dict[str, list[str]] = {}
    for index, text in enumerate(texts):
        if text:
            found = seen.get(text)
            if found is None:
                found = seen[text] = _rules_found(text)
            if found:
                violations.extend((index, rule_id) for rule_id in found)
    return violations


def _second_scan_reference(texts: Iterable[str | None]) -> list[tuple[int, str]]:
    """:func:`second_scan` as it was defined: no prefilter, no reuse of verdicts."""
    violations: list[tuple[int, str]] = []
    for index, text in enumerate(texts):
        if text:
            violations.extend((index, rule_id) for rule_id in _rules_found_reference(text))
    return violations
