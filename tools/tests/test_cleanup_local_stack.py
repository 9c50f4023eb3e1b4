"""Cleanup in the local stack: BundleDelivered on the stack's bus → rule → queue → cleanup.

One in-process stack with its real stages. This month's traffic goes through sanitize and
analytics; then acme's month is marked delivered the way the builder leaves it (a bundle
object, ``BUILDING → BUILT → DELIVERED`` with a verified SHA-256) and the bundle stage's
own ``emit_bundle_delivered`` announces it on the stack's bus. Nothing calls the cleanup
handler directly: the stack's wiring must deliver the event to it. (The builder itself,
end to end, is the demo's test: ``test_bundle_end_to_end.py``.)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from ryuzen_bundle.bundle_event import emit_bundle_delivered
from ryuzen_contracts.audit_log import AuditEventType, AuditLog
from ryuzen_contracts.bundle_delivered import BundleDelivered
from ryuzen_contracts.bundle_state import BundleState, BundleStateStore
from ryuzen_contracts.key_layout import (
    analytics_prefix,
    bundle_key,
    deletion_receipt_key,
    month_of,
    sanitized_prefix,
)
from ryuzen_tools.cli import app
from ryuzen_tools.local_stack.provision import WORKING_BUCKET_ROLES
from ryuzen_tools.local_stack.stack import LocalStack, LocalStackOptions
from ryuzen_tools.local_stack.status import count_objects
from ryuzen_tools.synthetic import SyntheticEvents
from ryuzen_tools.traffic import SendOptions, TrafficSender
from tools_support import unique
from typer.testing import CliRunner

MONTH = month_of(datetime.now(UTC))
BUNDLE = b"PK pretend bundle of acme"
BUNDLE_SHA256 = hashlib.sha256(BUNDLE).hexdigest()


@dataclass
class CleanupStack:
    stack: LocalStack
    ready: dict[str, Any]
    state_dir: Path
    s3: Any
    states: BundleStateStore
    audit: AuditLog

    def working_objects(self, partner: str) -> dict[str, int]:
        """Objects under the partner's prefix of this month, per working bucket role."""
        return {
            "sanitized": count_objects(
                self.s3, self.ready["buckets"]["sanitized"], sanitized_prefix(partner, MONTH)
            )[0],
            "analytics": count_objects(
                self.s3, self.ready["buckets"]["analytics"], analytics_prefix(partner, MONTH)
            )[0],
        }

    def emit_delivered(self, partner: str) -> None:
        """What the builder emits once the bundle is uploaded and verified."""
        detail = BundleDelivered.for_bundle(partner, MONTH, BUNDLE_SHA256, len(BUNDLE))
        events = self.stack.clients.client("events")  # type: ignore[union-attr]
        emit_bundle_delivered(events, self.ready["event_bus"], detail)

    def wait_for_state(self, partner: str, state: BundleState, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while (record := self.states.get(partner, MONTH)) is None or record.state != state:
            assert time.monotonic() < deadline, f"{partner} {MONTH}: {record}"
            time.sleep(0.3)


@pytest.fixture(scope="module")
def cleaned(project_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CleanupStack]:
    state_dir = tmp_path_factory.mktemp("cleanup-state")
    options = LocalStackOptions(
        project_dir=project_dir, state_dir=state_dir, resource_prefix=unique("clean")
    )
    with LocalStack(options) as stack:
        ready = stack.ready
        assert stack.config is not None and stack.clients is not None
        generator = SyntheticEvents(stack.config, seed=5, pii_rate=0.0, malformed_rate=0.0)
        sending = SendOptions(ready["api"], ready["ingest_keys"]["edge-gateway"])
        with TrafficSender(sending) as sender:
            sent = sender.send([e.payload for e in batch] for batch in generator.batches(600, 300))
        assert sent.events_accepted == 600
        assert stack.wait_until_drained(120)
        ddb = stack.clients.client("dynamodb")
        yield CleanupStack(
            stack,
            ready,
            state_dir,
            stack.clients.client("s3"),
            BundleStateStore(ddb, ready["tables"]["audit"]),
            AuditLog(ddb, ready["tables"]["audit"]),
        )


def test_the_working_buckets_are_unversioned_so_a_delete_really_deletes(
    cleaned: CleanupStack,
) -> None:
    for role in WORKING_BUCKET_ROLES:
        bucket = cleaned.ready["buckets"][role]
        # versioning was never enabled (not even suspended: no Status at all)
        assert "Status" not in cleaned.s3.get_bucket_versioning(Bucket=bucket), role
        # so a deleted object leaves neither an old version nor a delete marker behind
        # (a key no notification filter matches: no stage is told about it)
        key = f"versioning-probe/{unique(role)}.txt"
        cleaned.s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        cleaned.s3.delete_object(Bucket=bucket, Key=key)
        versions = cleaned.s3.list_object_versions(Bucket=bucket, Prefix=key)
        assert versions.get("Versions", []) == [], role
        assert versions.get("DeleteMarkers", []) == [], role


@dataclass(frozen=True)
class Before:
    """Objects under each partner's month before acme's delivery was announced."""

    acme: dict[str, int]
    nimbus: dict[str, int]


@pytest.fixture(scope="module")
def acme_cleaned(cleaned: CleanupStack) -> Before:
    # Given this month's telemetry of acme and nimbus-ai in the working buckets
    before = Before(cleaned.working_objects("acme"), cleaned.working_objects("nimbus-ai"))
    assert all(before.acme.values()) and all(before.nimbus.values())
    # and acme's bundle delivered, as the builder leaves it
    cleaned.s3.put_object(
        Bucket=cleaned.ready["buckets"]["bundles"],
        Key=bundle_key("acme", MONTH),
        Body=BUNDLE,
        Metadata={"sha256": BUNDLE_SHA256},
    )
    cleaned.states.transition("acme", MONTH, BundleState.BUILDING)
    cleaned.states.transition("acme", MONTH, BundleState.BUILT)
    cleaned.states.transition(
        "acme",
        MONTH,
        BundleState.DELIVERED,
        attributes={"sha256": BUNDLE_SHA256, "checksum_verified": True},
    )
    # When the bundle stage announces the delivery on the stack's bus
    cleaned.emit_delivered("acme")
    # Then the cleanup stage, fed by the rule's queue, moves the month to CLEANED
    cleaned.wait_for_state("acme", BundleState.CLEANED)
    assert cleaned.stack.wait_until_drained(30)
    return before


def test_bundle_delivered_on_the_bus_cleans_exactly_that_partner_month(
    cleaned: CleanupStack, acme_cleaned: Before, tmp_path: Path
) -> None:
    # acme's month is gone from the working buckets, nimbus-ai's is untouched
    assert cleaned.working_objects("acme") == {"sanitized": 0, "analytics": 0}
    assert cleaned.working_objects("nimbus-ai") == acme_cleaned.nimbus
    # the receipt beside the bundle counts what went, and verifies as a partner checks it
    receipt = tmp_path / "deletion-receipt.dsse.json"
    receipt.write_bytes(
        cleaned.s3.get_object(
            Bucket=cleaned.ready["buckets"]["bundles"], Key=deletion_receipt_key("acme", MONTH)
        )["Body"].read()
    )
    bundle_zip = tmp_path / "bundle.zip"
    bundle_zip.write_bytes(BUNDLE)
    verified = CliRunner().invoke(
        app,
        [
            "bundle",
            "verify-receipt",
            str(receipt),
            "--public-key",
            cleaned.ready["public_key"],
            "--partner",
            "acme",
            "--month",
            MONTH,
            "--bundle",
            str(bundle_zip),
            "--json",
        ],
    )
    assert verified.exit_code == 0, verified.output
    facts = json.loads(verified.stdout)
    assert facts["objects_deleted_total"] == sum(acme_cleaned.acme.values())
    assert facts["objects_deleted"] == {
        cleaned.ready["buckets"]["analytics"]: acme_cleaned.acme["analytics"],
        cleaned.ready["buckets"]["sanitized"]: acme_cleaned.acme["sanitized"],
    }
    # the audit table records the deletion with that receipt's digest
    (deleted,) = cleaned.audit.query_partner_month(
        "acme", MONTH, types=[AuditEventType.TELEMETRY_DELETED]
    )
    assert deleted.detail["receipt_sha256"] == facts["receipt_sha256"]
    # and the event was handled once, without an error
    counters = cleaned.stack.runtimes["cleanup"].counters()
    assert counters["errors"] == 0
    assert counters["outcomes"]["messages_deleted"] >= 1


def test_a_redelivered_event_changes_nothing(cleaned: CleanupStack, acme_cleaned: Before) -> None:
    # Given acme's month cleaned
    bucket = cleaned.ready["buckets"]["bundles"]
    key = deletion_receipt_key("acme", MONTH)
    receipt_before = cleaned.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    state_before = cleaned.states.get("acme", MONTH)
    invocations = cleaned.stack.runtimes["cleanup"].counters()["invocations"]

    # When the same event arrives again
    cleaned.emit_delivered("acme")
    deadline = time.monotonic() + 60
    while cleaned.stack.runtimes["cleanup"].counters()["invocations"] == invocations:
        assert time.monotonic() < deadline, "the redelivered event never reached cleanup"
        time.sleep(0.3)
    assert cleaned.stack.wait_until_drained(30)

    # Then the receipt, the state and the audit trail are as they were
    assert cleaned.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == receipt_before
    assert cleaned.states.get("acme", MONTH) == state_before
    deleted = list(
        cleaned.audit.query_partner_month("acme", MONTH, types=[AuditEventType.TELEMETRY_DELETED])
    )
    assert len(deleted) == 1
    assert cleaned.stack.runtimes["cleanup"].counters()["errors"] == 0


def test_status_shows_the_bundle_delivered_queue_and_the_sweep(
    cleaned: CleanupStack, acme_cleaned: Before
) -> None:
    # stages.json is rewritten at most once a second: wait for a write with the cleanup run
    deadline = time.monotonic() + 10
    while True:
        result = CliRunner().invoke(app, ["local", "status", "--state-dir", str(cleaned.state_dir)])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        if report["stages"].get("cleanup", {}).get("invocations"):
            break
        assert time.monotonic() < deadline, report["stages"]
        time.sleep(0.3)
    queue = report["queues"]["bundle-delivered"]
    assert queue["consumer"] == "cleanup"
    assert (queue["depth"], queue["in_flight"], queue["dlq"]) == (0, 0, 0)
    assert report["stages"]["cleanup"]["trigger"] == "sqs bundle-delivered"
    assert report["stages"]["retention-sweep"]["trigger"] == "schedule every 60 s"
    ready = cleaned.ready
    assert ready["event_rules"] == {"bundle-delivered": ready["queues"]["bundle-delivered"]["name"]}
    assert ready["schedules"] == {"retention-sweep": {"every_s": 60.0}}


def test_the_month_is_still_offered_to_the_partner_once_cleaned(
    cleaned: CleanupStack, acme_cleaned: Before
) -> None:
    # cleanup deletes the working telemetry, never the bundle: the pull API still lists it
    response = httpx.get(
        f"{cleaned.ready['api']}/v1/bundles",
        headers={"x-api-key": cleaned.ready["partner_keys"]["acme"]},
        timeout=30,
    )
    assert response.status_code == 200
    assert {"month": MONTH, "sha256": BUNDLE_SHA256}.items() <= response.json()["bundles"][
        -1
    ].items()
