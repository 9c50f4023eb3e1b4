"""Dry-run scanner: ``python -m ryuzen_sanitize scan FILE`` (also ``ryuzen scan FILE``).

Reads an NDJSON file of v1 events and prints one NDJSON line per finding
``{"line", "event_id", "field", "rule", "start", "end"}`` — offsets within that field's
string, never the value — and a summary on stderr. Users run it over a sample before
sending; it always exits 0 on a readable file, findings or not.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import polars as pl

from ryuzen_sanitize.raw_lines import holds_lone_surrogate
from ryuzen_sanitize.scrubber import detect, find_spans
from ryuzen_sanitize.validation import safe_event_id, safe_path

# The string fields a v1 event may carry, as (path, getter); attributes are added per key.
_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("model.id", ("model", "id")),
    ("model.version", ("model", "version")),
    ("region", ("region",)),
    ("outcome.error_code", ("outcome", "error_code")),
    ("outcome.error_message", ("outcome", "error_message")),
    ("client.sdk", ("client", "sdk")),
    ("client.sdk_version", ("client", "sdk_version")),
)


def _get(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = event
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _strings(event: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for name, path in _FIELDS:
        value = _get(event, path)
        if isinstance(value, str) and value:
            yield name, value
    attributes = event.get("attributes")
    if isinstance(attributes, dict):
        for key, value in attributes.items():
            field = safe_path(["attributes", key])
            yield f"{field}#key", str(key)
            if isinstance(value, str) and value:
                yield field, value


def scan(lines: TextIO, out: TextIO) -> Counter[str]:
    """Write findings for every event in ``lines`` to ``out``; return counts by rule."""
    owners: list[tuple[int, str | None, str]] = []
    texts: list[str] = []
    unreadable = 0
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            event = json.loads(text)
        except ValueError:
            unreadable += 1
            continue
        if not isinstance(event, dict) or holds_lone_surrogate(text, event):
            unreadable += 1
            continue
        event_id = safe_event_id(event)
        for field, value in _strings(event):
            owners.append((number, event_id, field))
            texts.append(value)
    counts: Counter[str] = Counter()
    if texts:
        hits = detect(pl.Series(texts, dtype=pl.String)).to_list()
        for (number, event_id, field), value, rules in zip(owners, texts, hits, strict=True):
            if not rules:
                continue
            for finding in find_spans(value):
                counts[finding.rule] += 1
                out.write(
                    json.dumps(
                        {
                            "line": number,
                            "event_id": event_id,
                            "field": field,
                            "rule": finding.rule,
                            "start": finding.start,
                            "end": finding.end,
                        },
                        separators=(",", ":"),
                    )
                    + "\n"
                )
    if unreadable:
        counts["_unreadable_lines"] = unreadable
    return counts


def main(argv: list[str]) -> int:
    """``scan FILE [--format ndjson]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m ryuzen_sanitize", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    scan_parser = commands.add_parser(
        "scan", help="dry-run PII scan of an NDJSON file of v1 events"
    )
    scan_parser.add_argument("file", type=Path)
    scan_parser.add_argument("--format", choices=["ndjson"], default="ndjson")
    args = parser.parse_args(argv)
    try:
        with args.file.open(encoding="utf-8", errors="replace") as handle:
            counts = scan(handle, sys.stdout)
    except OSError as error:
        print(json.dumps({"error": "unreadable_file", "detail": error.strerror}), file=sys.stderr)
        return 2
    summary = {
        "findings": sum(v for k, v in counts.items() if not k.startswith("_")),
        "by_rule": dict(counts),
    }
    print(json.dumps(summary, sort_keys=True), file=sys.stderr)
    return 0
