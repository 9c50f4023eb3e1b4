"""Load and soak: ``nox -s bench -- soak`` (runs ``python bench/soak_bench.py``).

Starts ``ryuzen local up`` in its own process and drives it in rounds: each round runs
``ryuzen send --duration`` (concurrent requests on loopback, bounded in time), waits for
every queue to drain, reconciles the round — every accepted event in SANITIZED or
quarantine exactly once (certificates verified and summed against what ``ryuzen send``
was told was accepted), RAW empty, no dead letters — and then deletes the counted working
objects, as cleanup does after delivery, and the round's audit and idempotency items.
Deleting them matters for the memory check: moto holds every object and item in the
stack's own memory, so without it RSS would grow with the data however leak-free the code.
The stack's RSS after each round is the series whose trend (MiB per round, fitted after
the first round) shows a leak; a sampler also records the peak. Prints figures and
writes ``bench/results/soak.json``; asserts nothing on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "soak.json"
SAMPLE_EVERY_S = 2.0
# A slope below this (after warm-up) is "no trend": allocator noise and polars' caches
# move RSS by a few MiB either way from one round to the next.
FLAT_MIB_PER_ROUND = 4.0


def rss_mib(pid: int) -> float | None:
    """Resident memory of ``pid`` from /proc (Linux), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


class PeakSampler(threading.Thread):
    """Samples a process's RSS every few seconds until stopped; keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_mib = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(SAMPLE_EVERY_S):
            self.peak_mib = max(self.peak_mib, rss_mib(self.pid) or 0.0)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def slope(values: list[float]) -> float:
    """Least-squares slope of ``values`` against their index (per round)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    variance = sum((x - mean_x) ** 2 for x in range(n))
    return sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values)) / variance


def memory_figures(rss_after_rounds: list[float], peak_mib: float) -> dict[str, Any]:
    steady = rss_after_rounds[1:]  # the first round warms up imports, caches and pools
    trend = slope(steady)
    return {
        "rss_mib_after_each_round": [round(value, 1) for value in rss_after_rounds],
        "rss_mib_peak": round(peak_mib, 1),
        "slope_mib_per_round_after_warm_up": round(trend, 2),
        "growth_trend": "none" if abs(trend) < FLAT_MIB_PER_ROUND else "growing",
    }


def clear_working_data(s3: Any, buckets: dict[str, str]) -> int:
    """Delete what a round left in the working buckets (counted already); objects deleted."""
    deleted = 0
    for role in ("sanitized", "analytics", "quarantine"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=buckets[role]):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=buckets[role], Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
    return deleted


def clear_kept_items(dynamodb: Any, tables: dict[str, str]) -> dict[str, int]:
    """Delete the items a round left in the stack's tables; items deleted per table.

    The audit trail is kept by design and idempotency records until their TTL (which
    moto never enforces): in AWS both live in DynamoDB, here in the stack's memory — a
    few items per request, ~3 MiB per round. Deleted like the working objects, so the
    RSS trend shows only the process's own growth.
    """
    from ryuzen_tools.local_stack.ttl_expiry import key_placeholders

    deleted: dict[str, int] = {}
    for role, table in tables.items():
        names = key_placeholders(dynamodb, table)
        count = 0
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=table, ProjectionExpression=", ".join(names), ExpressionAttributeNames=names
        ):
            items = page.get("Items", [])
            for start in range(0, len(items), 25):  # BatchWriteItem's limit
                pending = {
                    table: [{"DeleteRequest": {"Key": item}} for item in items[start : start + 25]]
                }
                while pending:
                    pending = dynamodb.batch_write_item(RequestItems=pending)["UnprocessedItems"]
            count += len(items)
        deleted[role] = count
    return deleted


def start_stack(state_dir: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """``ryuzen local up`` in its own process; its ready line."""
    process = subprocess.Popen(
        [
            "ryuzen",
            "local",
            "up",
            "--state-dir",
            str(state_dir),
            "--project-dir",
            str(ROOT),
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        sys.exit("ryuzen local up exited before it was ready")
    return process, json.loads(line)


def send(ready: dict[str, Any], seconds: float, concurrency: int, seed: int) -> dict[str, Any]:
    """``ryuzen send`` for ``seconds`` as the ingest client allowed the most partners, with
    models of exactly those partners; its JSON summary."""
    from ryuzen_contracts.stack_config import load_stack_config

    config = load_stack_config(Path(ready["stack_file"]))
    chosen = max(config.ingest_clients, key=lambda client: len(client.allowed_partners))
    client, key = chosen.id, ready["ingest_keys"][chosen.id]
    partners = [arg for partner in chosen.allowed_partners for arg in ("--partner", partner)]
    completed = subprocess.run(
        [
            "ryuzen",
            "send",
            "--api",
            ready["api"],
            "--key",
            key,
            "--events",
            "100000000",
            "--duration",
            str(seconds),
            "--batch",
            "500",
            "--concurrency",
            str(concurrency),
            "--pii-rate",
            "0.01",
            "--malformed-rate",
            "0.02",
            "--seed",
            str(seed),
            "--project-dir",
            str(ROOT),
            *partners,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        sys.exit(f"ryuzen send failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return {"client": client, **json.loads(lines[-1])}


def wait_until_drained(state_dir: Path, timeout_s: float) -> tuple[bool, dict[str, Any]]:
    """Poll ``ryuzen local status`` until no queue with a consumer holds a message."""
    deadline = time.monotonic() + timeout_s
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        completed = subprocess.run(
            ["ryuzen", "local", "status", "--state-dir", str(state_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        status = json.loads(completed.stdout) if completed.returncode == 0 else {}
        queues = status.get("queues", {})
        busy = [
            role
            for role, queue in queues.items()
            if queue.get("consumer")
            and (queue.get("depth") or queue.get("in_flight") or queue.get("delayed"))
        ]
        if queues and not busy:
            return True, status
        time.sleep(2)
    return False, status


def reconcile(ready: dict[str, Any], accepted: int) -> dict[str, Any]:
    """Every accepted event in SANITIZED or quarantine, once; RAW empty; DLQs empty."""
    from ryuzen_tools.local_stack.aws import LocalClients
    from ryuzen_tools.local_stack.status import raw_inventory
    from ryuzen_tools.sanitize_report import sanitize_report

    clients = LocalClients(ready["aws"], ready["region"])
    s3, sqs = clients.client("s3"), clients.client("sqs")
    report = sanitize_report(
        s3,
        ready["buckets"]["sanitized"],
        ready["buckets"]["quarantine"],
        Path(ready["public_key"]).read_bytes(),
    )
    quarantined = report.quarantined + report.unattributed
    dead_letters = {
        role: int(
            sqs.get_queue_attributes(
                QueueUrl=queue["dlq_url"], AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        for role, queue in ready["queues"].items()
        if queue.get("dlq_url")
    }
    raw_left = raw_inventory(s3, ready["buckets"]["raw"]).objects
    return {
        "events_accepted": accepted,
        "sanitized": report.sanitized,
        "quarantined": quarantined,
        "certificate_problems": report.problems[:5],
        "raw_objects_left": raw_left,
        "dead_letters": dead_letters,
        "exactly_once": accepted == report.sanitized + quarantined
        and not report.problems
        and raw_left == 0
        and not any(dead_letters.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="total sending time")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=20261128)
    args = parser.parse_args()
    round_seconds = args.seconds / args.rounds

    rounds: list[dict[str, Any]] = []
    rss_after: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ryuzen-soak-") as directory:
        state_dir = Path(directory)
        process, ready = start_stack(state_dir)
        sampler = PeakSampler(ready["pid"])
        started = time.monotonic()
        try:  # from here on, whatever fails, the stack is stopped
            from ryuzen_tools.local_stack.aws import LocalClients

            clients = LocalClients(ready["aws"], ready["region"])
            s3, dynamodb = clients.client("s3"), clients.client("dynamodb")
            sampler.start()
            for number in range(args.rounds):
                sent = send(ready, round_seconds, args.concurrency, args.seed + number)
                drained, _ = wait_until_drained(state_dir, args.drain_timeout)
                reconciliation = reconcile(ready, sent["events_accepted"])
                cleared = clear_working_data(s3, ready["buckets"])
                items_cleared = clear_kept_items(dynamodb, ready["tables"])
                time.sleep(SAMPLE_EVERY_S)  # let the last invocations' garbage go
                rss_after.append(rss_mib(ready["pid"]) or 0.0)
                rounds.append(
                    {
                        "send": sent,
                        "drained": drained,
                        **reconciliation,
                        "cleared": cleared,
                        "items_cleared": items_cleared,
                    }
                )
                print(
                    f"round {number + 1}/{args.rounds}: {sent['events_accepted']:,} accepted, "
                    f"exactly once {reconciliation['exactly_once']}, RSS {rss_after[-1]:.0f} MiB",
                    flush=True,
                )
            total_s = time.monotonic() - started
        finally:
            if sampler.is_alive():
                sampler.stop()
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)

    accepted = sum(r["send"]["events_accepted"] for r in rounds)
    latencies = [r["send"]["latency_ms"] for r in rounds]
    report = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "sending_seconds": args.seconds,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "events_accepted": accepted,
        "events_rejected": sum(r["send"]["events_rejected"] for r in rounds),
        "accepted_events_per_second": round(accepted / args.seconds),
        # per round: nearest-rank percentiles of that round's requests
        "latency_ms_p50_per_round": [latency["p50"] for latency in latencies],
        "latency_ms_p99_per_round": [latency["p99"] for latency in latencies],
        "end_to_end_seconds": round(total_s, 1),
        "reconciliation": {
            "sanitized": sum(r["sanitized"] for r in rounds),
            "quarantined": sum(r["quarantined"] for r in rounds),
            "all_drained": all(r["drained"] for r in rounds),
            "exactly_once_every_round": all(r["exactly_once"] for r in rounds),
            "dead_letters": rounds[-1]["dead_letters"] if rounds else {},
        },
        "deleted_after_rounds": {
            "objects": sum(r["cleared"] for r in rounds),
            **{
                f"{role}_items": sum(r["items_cleared"][role] for r in rounds)
                for role in (rounds[0]["items_cleared"] if rounds else {})
            },
        },
        "memory": memory_figures(rss_after, sampler.peak_mib),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    print(f"written to {RESULTS.relative_to(ROOT)}")
    if not report["reconciliation"]["exactly_once_every_round"]:
        sys.exit("the soak run did not reconcile: see the figures above")


if __name__ == "__main__":
    main()
