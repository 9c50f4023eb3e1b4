"""`ryuzen audit query|trail --local` against a running local stack, reading what its real
sanitize stage wrote: one in-process stack for the module (it costs seconds to start)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ryuzen_contracts.key_layout import month_of
from ryuzen_tools.local_stack.stack import LocalStack, LocalStackOptions
from ryuzen_tools.synthetic import SyntheticEvents
from ryuzen_tools.traffic import SendOptions, TrafficSender
from tools_audit_support import ryuzen
from tools_support import unique


@dataclass(frozen=True)
class AuditedStack:
    state_dir: Path
    month: str


@pytest.fixture(scope="module")
def audited(project_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditedStack]:
    state_dir = tmp_path_factory.mktemp("audit-state")
    options = LocalStackOptions(
        project_dir=project_dir, state_dir=state_dir, resource_prefix=unique("audit")
    )
    with LocalStack(options) as stack:
        assert stack.config is not None
        month = month_of(datetime.now(UTC))
        # PII in a third of the events, so sanitize writes SCRUB_VIOLATION events
        generator = SyntheticEvents(stack.config, seed=5, pii_rate=0.3, malformed_rate=0.0)
        sending = SendOptions(stack.ready["api"], stack.ready["ingest_keys"]["edge-gateway"])
        with TrafficSender(sending) as sender:
            sent = sender.send([e.payload for e in batch] for batch in generator.batches(300, 100))
        assert sent.events_accepted == 300
        assert stack.wait_until_drained(120)
        yield AuditedStack(state_dir, month)


def test_query_and_trail_read_the_running_stack(audited: AuditedStack) -> None:
    local = ("--local", "--state-dir", str(audited.state_dir))

    result = ryuzen(
        "audit", "query", *local, "--recent", "1h", "--type", "SCRUB_VIOLATION", "--format", "json"
    )

    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert records, "sanitize wrote no SCRUB_VIOLATION for 30% PII"
    assert {r["event_type"] for r in records} == {"SCRUB_VIOLATION"}
    assert {r["month"] for r in records} == {audited.month}
    times = [r["occurred_at"] for r in records]
    assert times == sorted(times, reverse=True)
    partner = records[0]["partner"]

    trail = ryuzen(
        "audit", "trail", *local, "--partner", partner, "--month", audited.month, "--format", "json"
    )

    document = json.loads(trail.stdout)
    assert document["scrub_violations"]["events"] == sum(r["partner"] == partner for r in records)
    redactions = document["scrub_violations"].get("redactions_by_rule", {})
    quarantined = document["scrub_violations"].get("quarantined_by_reason", {})
    assert sum(redactions.values()) + sum(quarantined.values()) > 0
    # no bundle was built in this stack, so the month stops at its first step
    assert document["verdict"] == "missing BUNDLE_CREATED"
    assert trail.exit_code == 1
