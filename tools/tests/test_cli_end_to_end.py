"""End to end over loopback HTTP: `ryuzen local up`, `send`, `status`, SIGINT; `demo`.

Every command runs in a subprocess exactly as a developer would run it, with the real
ingest handler; the fixtures always stop what they started.
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
from ryuzen_tools.local_stack.aws import LocalClients
from ryuzen_tools.local_stack.status import raw_inventory, raw_line_count

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
    ):
        assert key in ready
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

    # Every accepted batch is one RAW object; every accepted event one line in it
    aws = LocalClients(ready["aws"], ready["region"])
    inventory = raw_inventory(aws.client("s3"), ready["buckets"]["raw"])
    assert inventory.objects == result["batches_accepted"] == result["distinct_batch_ids"]
    assert (
        raw_line_count(aws.client("s3"), ready["buckets"]["raw"], inventory.keys)
        == result["events_accepted"]
    )

    # `ryuzen local status` reports queues, buckets and the ingest counters
    deadline = time.monotonic() + 10
    while True:
        shown = run_cli("local", "status", "--state-dir", str(running_stack.state_dir))
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        invocations = report["stages"].get("ingest", {}).get("invocations", 0)
        if invocations >= 7 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert invocations == 7  # six batches and the refused partner request
    assert report["stages"]["ingest"]["outcomes"] == {"http_202": 6, "http_403": 1}
    assert set(report["queues"]) == {"raw-events", "sanitized-events"}
    raw_queue = report["queues"]["raw-events"]
    assert raw_queue["depth"] == 6 + 1  # one notification per object, and the s3:TestEvent
    assert raw_queue["dlq"] == 0 and raw_queue["consumer"] is None
    assert raw_queue["waiting_for"] == "the sanitize stage"
    assert report["buckets"]["raw"]["objects"] == 6

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
    assert summary["ok"] is True
    assert summary["totals"]["events_sent"] == 2000
    assert (
        summary["raw"]["objects"]
        == summary["accepted_batch_ids"]
        == summary["totals"]["batches_accepted"]
    )
    assert summary["raw"]["events"] == summary["totals"]["events_accepted"]
    assert summary["stages"]["ingest"]["errors"] == 0
    assert "verdict" in demo.stdout
