"""Character offsets of findings in one string, for the dry-run scan tool.

The tool prints offsets and rule ids, never the values. Rules are applied in the rule
set's order and a later rule's match that overlaps an earlier finding is dropped, which
mirrors the first pass (where the earlier rule's marker has replaced that text).
"""

from __future__ import annotations

from dataclasses import dataclass

from ryuzen_sanitize.scrubber.rules import RULES
from ryuzen_sanitize.scrubber.validators import validate


@dataclass(frozen=True)
class Finding:
    """One finding: ``text[start:end]`` is PII of kind ``rule`` (a rule id)."""

    rule: str
    start: int
    end: int


def find_spans(text: str) -> list[Finding]:
    """Every finding in ``text``, sorted by offset; ``[]`` for an empty string."""
    findings: list[Finding] = []
    for rule in RULES:
        for match in rule.python_regex.finditer(text):
            span = validate(rule.validator, match)
            if span is None:
                continue
            start, end = span
            if any(start < other.end and other.start < end for other in findings):
                continue
            findings.append(Finding(start=start, end=end, rule=rule.id))
    return sorted(findings, key=lambda finding: (finding.start, finding.end))
