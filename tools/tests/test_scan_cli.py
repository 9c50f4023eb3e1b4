"""`ryuzen scan`: the sanitize stage's dry-run scanner behind the ryuzen CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pii_canaries import TEXT_CANARIES, VERSION_CANARY, canary_events, find_canaries

CLI = [sys.executable, "-m", "ryuzen_tools.cli"]


def test_scan_prints_offsets_and_rules_never_values(tmp_path: Path) -> None:
    # Given an NDJSON file: a clean line, the canary events, a line that is not JSON
    events = canary_events()
    clean = dict(events["redacted"], outcome={"status": "ok", "http_status": 200})
    clean["attributes"] = {"tier": "pro"}
    lines = [json.dumps(clean), *(json.dumps(e) for e in events.values()), "{not json"]
    sample = tmp_path / "sample.ndjson"
    sample.write_text("\n".join(lines) + "\n")

    # When it is scanned
    scanned = subprocess.run(
        [*CLI, "scan", str(sample), "--format", "ndjson"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it exits 0 with one finding a line: offsets and rule ids, never the values
    assert scanned.returncode == 0, scanned.stderr
    findings = [json.loads(line) for line in scanned.stdout.splitlines()]
    assert find_canaries(scanned.stdout) == [] and find_canaries(scanned.stderr) == []
    assert all(set(f) == {"line", "event_id", "field", "rule", "start", "end"} for f in findings)
    assert not [f for f in findings if f["line"] == 1]  # the clean event

    by_place = {(f["line"], f["field"], f["rule"]): f for f in findings}
    message = events["redacted"]["outcome"]["error_message"]
    email = by_place[(2, "outcome.error_message", "EMAIL")]
    assert message[email["start"] : email["end"]] == TEXT_CANARIES["email"]
    assert email["event_id"] == events["redacted"]["event_id"]
    contact = by_place[(2, "attributes.contact", "EMAIL")]
    value = events["redacted"]["attributes"]["contact"]
    assert value[contact["start"] : contact["end"]] == TEXT_CANARIES["attribute_email"]
    version = by_place[(3, "model.version", "PHONE")]
    assert (version["start"], version["end"]) == (0, len(VERSION_CANARY))
    rules = {f["rule"] for f in findings}
    assert {"EMAIL", "PHONE", "IPV4", "CREDIT_CARD", "AWS_ACCESS_KEY"} <= rules

    # and a summary on stderr
    summary = json.loads(scanned.stderr.strip().splitlines()[-1])
    assert summary["findings"] == len(findings)
    assert summary["by_rule"]["_unreadable_lines"] == 1


def test_scan_of_a_missing_file_says_so(tmp_path: Path) -> None:
    scanned = subprocess.run(
        [*CLI, "scan", str(tmp_path / "missing.ndjson")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert scanned.returncode == 2
    assert json.loads(scanned.stderr)["error"] == "unreadable_file"
    assert scanned.stdout == ""
