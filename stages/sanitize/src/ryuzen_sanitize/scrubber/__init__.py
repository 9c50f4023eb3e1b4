"""The PII scrubber of the sanitize stage.

A versioned rule set (``RULES``, digest ``ruleset_digest()``), a vectorized polars
first pass (``scrub``, ``detect``), an independent Python second scan
(``second_scan``) and per-string offsets for the dry-run tool (``find_spans``).
"""

from __future__ import annotations

from importlib.metadata import version

from ryuzen_sanitize.scrubber.engine import ScrubResult, detect, scrub
from ryuzen_sanitize.scrubber.rules import (
    RULE_IDS,
    RULES,
    RULESET_VERSION,
    Rule,
    marker,
    ruleset_digest,
)
from ryuzen_sanitize.scrubber.second_scan import second_scan
from ryuzen_sanitize.scrubber.spans import Finding, find_spans

# The scrubber ships inside ryuzen-sanitize: its version is the package's.
SCRUBBER_VERSION: str = version("ryuzen-sanitize")

__all__ = [
    "RULES",
    "RULESET_VERSION",
    "RULE_IDS",
    "SCRUBBER_VERSION",
    "Finding",
    "Rule",
    "ScrubResult",
    "detect",
    "find_spans",
    "marker",
    "ruleset_digest",
    "scrub",
    "second_scan",
]
