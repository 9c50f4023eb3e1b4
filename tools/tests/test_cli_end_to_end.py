"""End to end over loopback HTTP: `ryuzen local up`, `send`, `status`, `verify`, SIGINT; `demo`.

Every command runs in a subprocess exactly as a developer would run it, with the real
ingest and sanitize handlers; the fixtures always stop what they started.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from ryuzen_contracts.key_layout import parse_sanitized_key
from ryuzen_tools.local_stack.aws import LocalClients
from ryuzen_tools.sanitize_report import sanitize_report

CLI = [sys.executable, "-m", "ryuzen_tools.cli"]
READY_TIMEOUT_S = 90


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def read_line(stream: IO[str], timeout: float) -> str:
    """The first line of ``stream``, or TimeoutError."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"no ready line within {timeout} s") from None


class RunningStack:
    def __init__(
        self, process: subprocess.Popen[str], ready: dict[str, Any], state_dir: Path, log: Path
    ):
        self.process = process
        self.ready = ready
        self.state_dir = state_dir
        self.log = log


@pytest.fixture
def running_stack(tmp_path: Path, project_dir: Path) -> Iterator[RunningStack]:
    state_dir = tmp_path / "state"
    log = tmp_path / "up.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(  # stderr to a file: a full pipe would block the stack
            [
                *CLI,
                "local",
                "up",
                "--port",
                "0",
                "--state-dir",
                str(state_dir),
                "--project-dir",
                str(project_dir),
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert process.stdout is not None
        line = read_line(process.stdout, READY_TIMEOUT_S)
        assert line, f"`ryuzen local up` exited early:\n{log.read_text()}"
        yield RunningStack(process, json.loads(line), state_dir, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_up_send_status_and_a_clean_shutdown(
    running_stack: RunningStack, project_dir: Path
) -> None:
    ready = running_stack.ready
    # The ready line says everything another process needs, and state.json says the same
    for key in (
        "api",
        "aws",
        "region",
        "ingest_keys",
        "partner_keys",
        "buckets",
        "tables",
        "state_dir",
        "signing_key_id",
        "public_key",
        "public_key_id",
    ):
        assert key in ready
    assert Path(ready["public_key"]) == running_stack.state_dir.resolve() / "signing-key.pub.pem"
    assert ready["ready"] is True
    assert ready["api"].startswith("http://127.0.0.1:")
    assert set(ready["buckets"]) == {
        "raw",
        "sanitized",
        "analytics",
        "quarantine",
        "bundles",
        "artifacts",
    }
    assert set(ready["tables"]) == {"audit", "idempotency"}
    state_file = running_stack.state_dir / "state.json"
    assert json.loads(state_file.read_text()) == ready

    # A partner key passes the gateway but is not an ingest client
    refused = httpx.post(
        f"{ready['api']}/v1/events",
        content=b"{}",
        headers={"x-api-key": ready["partner_keys"]["acme"]},
        timeout=30,
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "unknown_client"

    # `ryuzen send` delivers 3,000 events in batches of 500
    sent = run_cli(
        "send",
        "--api",
        ready["api"],
        "--key",
        ready["ingest_keys"]["edge-gateway"],
        "--events",
        "3000",
        "--batch",
        "500",
        "--seed",
        "42",
        "--project-dir",
        str(project_dir),
    )
    assert sent.returncode == 0, sent.stderr
    result = json.loads(sent.stdout.strip().splitlines()[-1])
    assert result["events_sent"] == 3000
    assert result["batches_accepted"] == 6
    assert result["all_answered"] is True

    # `ryuzen local status` reports queues, buckets and the stage counters; sanitize
    # consumes every RAW object (six notifications and the s3:TestEvent)
    deadline = time.monotonic() + 60
    while True:
        shown = run_cli("local", "status", "--state-dir", str(running_stack.state_dir))
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        invocations = report["stages"].get("ingest", {}).get("invocations", 0)
        consumed = report["stages"].get("sanitize", {}).get("outcomes", {})
        if (invocations >= 7 and consumed.get("messages_deleted", 0) >= 7) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.5)
    assert invocations == 7  # six batches and the refused partner request
    assert report["stages"]["ingest"]["outcomes"] == {"http_202": 6, "http_403": 1}
    assert report["stages"]["sanitize"]["errors"] == 0
    assert report["stages"]["sanitize"]["outcomes"] == {"messages_deleted": 7}
    assert set(report["queues"]) == {"raw-events", "sanitized-events", "bundle-delivered"}
    assert report["queues"]["bundle-delivered"]["consumer"] == "cleanup"
    raw_queue = report["queues"]["raw-events"]
    assert raw_queue["depth"] == raw_queue["in_flight"] == raw_queue["dlq"] == 0
    assert raw_queue["consumer"] == "sanitize"
    assert report["queues"]["sanitized-events"]["consumer"] == "analytics"
    assert report["buckets"]["raw"]["objects"] == 0

    # Nothing was lost: the six batches are in the certificates and quarantine, every
    # accepted event was sanitized or quarantined, every certificate verifies
    aws = LocalClients(ready["aws"], ready["region"])
    s3 = aws.client("s3")
    public_key = Path(ready["public_key"]).read_bytes()
    sanitized = sanitize_report(
        s3, ready["buckets"]["sanitized"], ready["buckets"]["quarantine"], public_key
    )
    assert sanitized.problems == []
    assert len(sanitized.batches) == result["distinct_batch_ids"] == 6
    assert sanitized.received == result["events_accepted"] == 3000
    assert sanitized.sanitized + sanitized.quarantined + sanitized.unattributed == 3000
    assert sanitized.certificates_verified == sanitized.certificates > 0
    # each SANITIZED Parquet object was announced on sanitized-events (and the TestEvent),
    # and analytics consumed every announcement without an error
    deadline = time.monotonic() + 60
    while True:
        shown = run_cli("local", "status", "--state-dir", str(running_stack.state_dir))
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        analytics = report["stages"].get("analytics", {})
        done = analytics.get("outcomes", {}).get("messages_deleted", 0)
        if done >= sanitized.parquet_objects + 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert done == sanitized.parquet_objects + 1
    assert analytics["errors"] == 0

    # `ryuzen verify certificate` checks one with the published key and its Parquet
    certificate_key = next(
        key
        for key in (
            item["Key"]
            for item in s3.list_objects_v2(Bucket=ready["buckets"]["sanitized"])["Contents"]
        )
        if parse_sanitized_key(key).is_certificate
    )
    parquet_key = certificate_key.removesuffix(".certificate.dsse.json") + ".parquet"
    local = running_stack.state_dir.parent / "files"
    local.mkdir()
    for key in (certificate_key, parquet_key):
        body = s3.get_object(Bucket=ready["buckets"]["sanitized"], Key=key)["Body"].read()
        (local / Path(key).name).write_bytes(body)
    checked = run_cli(
        "verify",
        "certificate",
        str(local / Path(certificate_key).name),
        "--public-key",
        ready["public_key"],
        "--subject",
        str(local / Path(parquet_key).name),
        "--json",
    )
    assert checked.returncode == 0, checked.stderr
    verified = json.loads(checked.stdout)
    assert verified["ok"] is True
    assert verified["certificate"]["batch_id"] == parse_sanitized_key(certificate_key).batch_id
    assert [s["checked_file"] is not None for s in verified["subjects"]] == [True, False]

    # SIGINT stops it cleanly and forgets the state file
    running_stack.process.send_signal(signal.SIGINT)
    assert running_stack.process.wait(timeout=20) == 0, running_stack.log.read_text()
    assert not state_file.exists()
    leftover = running_stack.process.stdout.read()  # type: ignore[union-attr]
    assert leftover == ""  # the ready line was the only thing on stdout


def test_status_without_a_stack_names_the_state_file(tmp_path: Path) -> None:
    shown = run_cli("local", "status", "--state-dir", str(tmp_path))
    assert shown.returncode == 1
    assert "state.json" in shown.stderr
    assert shown.stdout == ""


def test_demo_sends_waits_and_writes_its_summary(tmp_path: Path, project_dir: Path) -> None:
    out = tmp_path / "out"
    demo = run_cli(
        "local",
        "demo",
        "--events",
        "2000",
        "--out",
        str(out),
        "--seed",
        "5",
        "--state-dir",
        str(tmp_path / "state"),
        "--project-dir",
        str(project_dir),
        timeout=180,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    summary = json.loads((out / "demo-summary.json").read_text())
    assert summary["ok"] is True, summary["problems"]
    totals = summary["totals"]
    assert totals["events_sent"] == 2000
    # sanitize consumed every batch: RAW is empty, each batch left certified output
    assert summary["raw"]["objects"] == summary["raw"]["events"] == 0
    sanitize = summary["sanitize"]
    assert (
        sanitize["objects_processed"] == summary["accepted_batch_ids"] == totals["batches_accepted"]
    )
    assert sanitize["certificates_verified"] == sanitize["certificates"] > 0
    assert sanitize["events_received"] == totals["events_accepted"]
    # the demo sends 1% PII and 2% malformed events: some redacted, some quarantined
    assert sanitize["redactions_by_rule"] and sanitize["quarantined_by_reason"]
    conservation = summary["conservation"]
    assert conservation["holds"] is True
    assert (
        conservation["accepted"]
        == conservation["sanitized"] + conservation["quarantined"]
        == totals["events_accepted"]
    )
    assert summary["stages"]["ingest"]["errors"] == summary["stages"]["sanitize"]["errors"] == 0
    assert "verdict" in demo.stdout and "conservation" in demo.stdout
