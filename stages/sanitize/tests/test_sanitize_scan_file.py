"""The dry-run scanner: findings as offsets, never values; unreadable lines counted."""

from __future__ import annotations

import io
import json

from raw_batches import event
from ryuzen_sanitize.scan_file import scan


def test_findings_are_offsets_and_unreadable_lines_are_counted() -> None:
    noisy = event(outcome={"status": "error", "error_message": "mail ops@example.com now"})
    lone_surrogate = event(outcome={"status": "error", "error_message": "x\ud800"})
    lines = [json.dumps(noisy), "{not json", json.dumps(lone_surrogate), "", "[1]"]
    out = io.StringIO()

    counts = scan(io.StringIO("\n".join(lines) + "\n"), out)

    findings = [json.loads(line) for line in out.getvalue().splitlines()]
    assert findings == [
        {
            "line": 1,
            "event_id": noisy["event_id"],
            "field": "outcome.error_message",
            "rule": "EMAIL",
            "start": 5,
            "end": 20,
        }
    ]
    assert "ops@example.com" not in out.getvalue()
    assert counts == {"EMAIL": 1, "_unreadable_lines": 3}
