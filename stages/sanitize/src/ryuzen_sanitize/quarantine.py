"""PII-safe quarantine records.

A record says which line failed, why, in which field and by which rule, and carries the
SHA-256 of the offending value — never the value itself, so quarantine can be read by
operators without exposing what it guards. The raw lines are kept only when the stack
asks for it (``quarantineRawLines``), under their own key and the quarantine bucket's
own KMS key.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from ryuzen_sanitize.validation import Rejection


def record(rejection: Rejection, batch_id: str) -> dict[str, Any]:
    """The quarantine record of one rejected event."""
    value_hash = (
        hashlib.sha256(rejection.value.encode("utf-8")).hexdigest() if rejection.value else None
    )
    return {
        "batch_id": batch_id,
        "line": rejection.line,
        "event_id": rejection.event_id,
        "partner": rejection.partner,
        "reason": rejection.reason.value,
        "field": rejection.field,
        "rule": rejection.rule,
        "value_sha256": value_hash,
    }


def _gzip_ndjson(documents: list[dict[str, Any]]) -> bytes:
    text = "".join(
        json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n" for doc in documents
    )
    # mtime=0: the same rejections always give the same bytes, so a redelivery rewrites
    # an identical object.
    return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)


def records_object(rejections: list[Rejection], batch_id: str) -> bytes:
    """The gzip NDJSON quarantine object of one RAW batch."""
    return _gzip_ndjson([record(rejection, batch_id) for rejection in rejections])


def raw_lines_object(rejections: list[Rejection], lines: Mapping[int, str]) -> bytes:
    """The gzip NDJSON of the rejected raw lines themselves ``{line, raw}``."""
    return _gzip_ndjson(
        [{"line": r.line, "raw": lines[r.line]} for r in rejections if r.line in lines]
    )


def counts_by_reason(rejections: list[Rejection], partner: str | None = None) -> dict[str, int]:
    """How many rejections per reason code (for one partner, or all)."""
    chosen = [r for r in rejections if partner is None or r.partner == partner]
    return dict(sorted(Counter(r.reason.value for r in chosen).items()))


def counts_by_rule(rejections: list[Rejection], partner: str | None = None) -> dict[str, int]:
    """How many PII-driven rejections per scrubber rule id."""
    chosen = [r for r in rejections if r.rule and (partner is None or r.partner == partner)]
    return dict(sorted(Counter(r.rule for r in chosen if r.rule).items()))
