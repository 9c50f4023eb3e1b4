"""``ryuzen local demo``: the whole local pipeline, end to end, with a verdict.

Starts the local stack in-process, sends synthetic traffic over real HTTP through every
configured ingest client (each for the partners it may send for, shares proportional to its
rate limit), waits until every queue that has a consumer is drained, and checks
conservation: every accepted batch is one RAW object and every accepted event one line in
it. Until the sanitize stage exists nothing consumes ``raw-events``, so RAW holds every
accepted batch; later issues extend this check stage by stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ryuzen_contracts.stack_config import StackConfig

from ryuzen_tools.local_stack.stack import LocalStack, LocalStackOptions
from ryuzen_tools.local_stack.state_file import DEFAULT_STATE_DIR
from ryuzen_tools.local_stack.status import (
    buckets_status,
    queues_status,
    raw_inventory,
    raw_line_count,
)
from ryuzen_tools.synthetic import SyntheticEvents
from ryuzen_tools.traffic import BatchOutcome, SendOptions, SendResult, TrafficSender, percentile

# (client id, events for it) -> callback per finished batch
ProgressFactory = Callable[[str, int], Callable[[BatchOutcome], None]]


@dataclass(frozen=True)
class DemoOptions:
    """What the demo sends and how long it waits."""

    stack: str = "dev"
    project_dir: Path | None = None
    events: int = 20_000
    batch_size: int = 500
    concurrency: int = 4
    seed: int | None = None
    pii_rate: float = 0.01
    malformed_rate: float = 0.02
    state_dir: Path | None = DEFAULT_STATE_DIR
    drain_timeout_s: float = 300.0


def client_shares(config: StackConfig, events: int) -> dict[str, int]:
    """Events per ingest client, proportional to its rate limit (the remainder to the first)."""
    clients = config.ingest_clients
    if not clients:
        raise ValueError("the stack configures no ingest clients, so nothing can send")
    total_rate = sum(client.rate_limit for client in clients)
    shares = {client.id: int(events * client.rate_limit / total_rate) for client in clients}
    shares[clients[0].id] += events - sum(shares.values())
    return shares


def run_demo(options: DemoOptions, progress: ProgressFactory | None = None) -> dict[str, Any]:
    """Run the demo and return its summary (``summary["ok"]`` is the verdict)."""
    started = time.monotonic()
    stack = LocalStack(
        LocalStackOptions(
            stack=options.stack, project_dir=options.project_dir, state_dir=options.state_dir
        )
    )
    with stack:
        config = stack.config
        ready = stack.ready
        assert config is not None and stack.clients is not None
        results: dict[str, SendResult] = {}
        for index, (client_id, count) in enumerate(client_shares(config, options.events).items()):
            if count == 0:
                continue
            client = config.client(client_id)
            assert client is not None
            generator = SyntheticEvents(
                config,
                seed=None if options.seed is None else options.seed * 1000 + index,
                partners=client.allowed_partners,
                pii_rate=options.pii_rate,
                malformed_rate=options.malformed_rate,
            )
            batches = (
                [event.payload for event in batch]
                for batch in generator.batches(count, options.batch_size)
            )
            send_options = SendOptions(
                ready["api"], ready["ingest_keys"][client_id], options.concurrency
            )
            with TrafficSender(send_options) as sender:
                on_batch = progress(client_id, count) if progress else None
                results[client_id] = sender.send(batches, on_batch_done=on_batch)
        sending_s = time.monotonic() - started
        drained = stack.wait_until_drained(options.drain_timeout_s)
        s3 = stack.clients.client("s3")
        inventory = raw_inventory(s3, ready["buckets"]["raw"])
        raw_events = raw_line_count(s3, ready["buckets"]["raw"], inventory.keys)
        queues = queues_status(
            stack.clients.client("sqs"), ready["queues"], ready["consumers"], ready["waiting_for"]
        )
        buckets = buckets_status(s3, ready["buckets"])
        stages = stack.counters_document()["stages"]
    return _summary(
        options,
        results,
        inventory,
        raw_events,
        queues,
        buckets,
        stages,
        drained,
        sending_s,
        time.monotonic() - started,
    )


def _summary(
    options: DemoOptions,
    results: dict[str, SendResult],
    inventory: Any,
    raw_events: int,
    queues: dict[str, Any],
    buckets: dict[str, Any],
    stages: dict[str, Any],
    drained: bool,
    sending_s: float,
    elapsed_s: float,
) -> dict[str, Any]:
    latencies = [ms for result in results.values() for ms in result.latencies_ms]
    totals = {
        name: sum(getattr(result, name) for result in results.values())
        for name in (
            "events_sent",
            "events_accepted",
            "events_rejected",
            "batches_sent",
            "batches_accepted",
            "batches_rejected",
            "batches_unanswered",
            "requests",
            "retries",
        )
    }
    distinct_batches = len({batch for result in results.values() for batch in result.batch_ids})
    totals["latency_ms"] = {
        "p50": _round(percentile(latencies, 50)),
        "p99": _round(percentile(latencies, 99)),
    }
    problems = []
    if distinct_batches != inventory.objects:
        problems.append(f"{distinct_batches} accepted batches but {inventory.objects} RAW objects")
    if totals["events_accepted"] != raw_events:
        problems.append(f"{totals['events_accepted']} accepted events but {raw_events} RAW lines")
    if totals["batches_unanswered"]:
        problems.append(f"{totals['batches_unanswered']} batches got no answer")
    for name, counters in stages.items():
        if counters["errors"]:
            problems.append(f"stage {name} raised {counters['errors']} errors")
    for role, queue in queues.items():
        if queue["dlq"]:
            problems.append(f"{queue['dlq']} messages in the {role} dead-letter queue")
    if not drained:
        problems.append(
            f"queues with a consumer were not drained within {options.drain_timeout_s:.0f} s"
        )
    return {
        "stack": options.stack,
        "events_requested": options.events,
        "sending_s": round(sending_s, 2),
        "elapsed_s": round(elapsed_s, 2),
        "events_per_s": round(totals["events_sent"] / sending_s, 1) if sending_s else None,
        "clients": {client: result.summary() for client, result in results.items()},
        "totals": totals,
        "accepted_batch_ids": distinct_batches,
        "raw": {
            "objects": inventory.objects,
            "bytes": inventory.bytes,
            "events": raw_events,
            "other_objects": len(inventory.other_keys),
        },
        "queues": queues,
        "buckets": buckets,
        "stages": stages,
        "drained": drained,
        "problems": problems,
        "ok": not problems,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
