"""``ryuzen local demo``: the whole local pipeline, end to end, with a verdict.

Starts the local stack in-process, sends synthetic traffic over real HTTP through every
configured ingest client (each for the partners it may send for, shares proportional to its
rate limit), waits until every queue that has a consumer is drained, and checks what the
stages made of it, from their artifacts:

* sanitize consumed every RAW object: RAW is empty, and every accepted batch left a
  certificate or a quarantine object behind;
* every certificate verifies with the stack's published public key, and its Parquet
  subject matches the Parquet stored beside it (``sanitize_report.py``);
* conservation: accepted events = RAW lines sanitize read = sanitized + quarantined;
* then every partner's bundle for the current month is built, pulled through the partner
  API with that partner's key, downloaded through its presigned URL and verified
  (``bundle_demo.py``); with ``out_dir`` the bundles are kept in ``out_dir/bundles``;
* and each delivery's ``BundleDelivered`` event makes the cleanup stage delete the
  month's working telemetry: the demo waits for every delivered month to be ``CLEANED``,
  reads its audit trail (verdict ``complete``), verifies its deletion receipt and lists
  its SANITIZED and ANALYTICS prefixes, which must be empty (``cleanup_demo.py``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ryuzen_contracts.key_layout import month_of
from ryuzen_contracts.stack_config import StackConfig

from ryuzen_tools.audit_trail import Trail
from ryuzen_tools.bundle_demo import BundleRound, bundle_round
from ryuzen_tools.cleanup_demo import CleanupRound, cleanup_round
from ryuzen_tools.console_reports import events_done
from ryuzen_tools.local_stack.stack import LocalStack, LocalStackOptions
from ryuzen_tools.local_stack.state_file import DEFAULT_STATE_DIR
from ryuzen_tools.local_stack.status import (
    buckets_status,
    queues_status,
    raw_inventory,
    raw_line_count,
)
from ryuzen_tools.sanitize_report import SanitizeReport, sanitize_report
from ryuzen_tools.synthetic import SyntheticEvents
from ryuzen_tools.traffic import SendOptions, SendResult, TrafficSender, percentile

# (label, total) -> advance(amount): one progress bar (events sent, months cleaned)
ProgressFactory = Callable[[str, int], Callable[[int], None]]
# Seconds to wait for the bundle-delivered queue once every month is CLEANED: the state is
# committed inside the handler, the message deleted just after it returns.
SETTLE_S = 10.0


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
    # Build, pull and verify every partner's bundle once the queues are drained.
    bundles: bool = True
    # Where the bundles are kept (out_dir/bundles); None: a temporary directory.
    out_dir: Path | None = None
    # How long to wait for cleanup to finish every delivered month.
    cleanup_timeout_s: float = 120.0


@dataclass(frozen=True)
class DemoResult:
    """The summary (``summary["ok"]`` is the verdict) and the audit trails it rests on."""

    summary: dict[str, Any]
    trails: list[Trail]


def client_shares(config: StackConfig, events: int) -> dict[str, int]:
    """Events per ingest client, proportional to its rate limit (the remainder to the first)."""
    clients = config.ingest_clients
    if not clients:
        raise ValueError("the stack configures no ingest clients, so nothing can send")
    total_rate = sum(client.rate_limit for client in clients)
    shares = {client.id: int(events * client.rate_limit / total_rate) for client in clients}
    shares[clients[0].id] += events - sum(shares.values())
    return shares


def run_demo(options: DemoOptions, progress: ProgressFactory | None = None) -> DemoResult:
    """Run the demo; return its summary and the delivered months' audit trails."""
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
                on_batch = events_done(progress(client_id, count)) if progress else None
                results[client_id] = sender.send(batches, on_batch_done=on_batch)
        sending_s = time.monotonic() - started
        drained = stack.wait_until_drained(options.drain_timeout_s)
        draining_s = time.monotonic() - started - sending_s
        s3 = stack.clients.client("s3")
        inventory = raw_inventory(s3, ready["buckets"]["raw"])
        raw_events = raw_line_count(s3, ready["buckets"]["raw"], inventory.keys)
        queues = queues_status(
            stack.clients.client("sqs"), ready["queues"], ready["consumers"], ready["waiting_for"]
        )
        buckets = buckets_status(s3, ready["buckets"])
        stages = stack.counters_document()["stages"]
        checking = time.monotonic()
        sanitized = sanitize_report(
            s3,
            ready["buckets"]["sanitized"],
            ready["buckets"]["quarantine"],
            Path(ready["public_key"]).read_bytes(),
        )
        checking_s = time.monotonic() - checking
        bundles = cleanup = None
        if options.bundles and drained:
            bundles = _bundles(stack, config, options.out_dir)
            cleanup = _cleanup(stack, bundles, options, progress)
            stack.wait_until_drained(SETTLE_S)
            # after the pull API and cleanup ran: their counters, the emptied buckets
            queues = queues_status(
                stack.clients.client("sqs"),
                ready["queues"],
                ready["consumers"],
                ready["waiting_for"],
            )
            stages = stack.counters_document()["stages"]
            buckets = buckets_status(s3, ready["buckets"])
    summary = _summary(
        options,
        results,
        _Observed(
            inventory, raw_events, sanitized, queues, buckets, stages, drained, bundles, cleanup
        ),
        {"sending": sending_s, "draining": draining_s, "checking": checking_s},
        time.monotonic() - started,
    )
    return DemoResult(summary, cleanup.trails() if cleanup else [])


def _bundles(stack: LocalStack, config: StackConfig, out_dir: Path | None) -> BundleRound:
    month = month_of(datetime.now(UTC))  # the open month the traffic was received in
    partners = [partner.id for partner in config.partners]
    if out_dir is not None:
        return bundle_round(
            stack.stage_environment, stack.ready, partners, month, out_dir / "bundles"
        )
    with tempfile.TemporaryDirectory(prefix="ryuzen-demo-bundles-") as directory:
        return bundle_round(stack.stage_environment, stack.ready, partners, month, Path(directory))


def _cleanup(
    stack: LocalStack, bundles: BundleRound, options: DemoOptions, progress: ProgressFactory | None
) -> CleanupRound:
    assert stack.clients is not None
    delivered = bundles.delivered_sha256()
    return cleanup_round(
        stack.clients,
        stack.ready,
        delivered,
        bundles.month,
        options.out_dir / "bundles" if options.out_dir is not None else None,
        timeout_s=options.cleanup_timeout_s,
        on_cleaned=progress("cleanup", len(delivered)) if progress else None,
    )


@dataclass(frozen=True)
class _Observed:
    """What the stack held once the queues were drained."""

    raw: Any
    raw_events: int
    sanitize: SanitizeReport
    queues: dict[str, Any]
    buckets: dict[str, Any]
    stages: dict[str, Any]
    drained: bool
    bundles: BundleRound | None = None
    cleanup: CleanupRound | None = None


def _summary(
    options: DemoOptions,
    results: dict[str, SendResult],
    observed: _Observed,
    phases_s: dict[str, float],
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
    accepted_batches = {batch for result in results.values() for batch in result.batch_ids}
    totals["latency_ms"] = {
        "p50": _round(percentile(latencies, 50)),
        "p99": _round(percentile(latencies, 99)),
    }
    inventory, sanitize = observed.raw, observed.sanitize
    problems = []
    if inventory.objects or inventory.other_keys:
        problems.append(
            f"RAW still holds {inventory.objects} batches ({observed.raw_events} events) and "
            f"{len(inventory.other_keys)} other objects after draining"
        )
    missing = accepted_batches - sanitize.batches
    if missing:
        problems.append(
            f"{len(missing)} accepted batches left no certificate or quarantine record "
            f"(e.g. {sorted(missing)[0]})"
        )
    unknown = sanitize.batches - accepted_batches
    if unknown:
        problems.append(f"{len(unknown)} sanitized batches were never accepted")
    quarantined = sanitize.quarantined + sanitize.unattributed
    conservation_holds = (
        totals["events_accepted"] == sanitize.sanitized + quarantined and not observed.raw_events
    )
    if not conservation_holds:
        problems.append(
            f"{totals['events_accepted']} accepted events != {sanitize.sanitized} sanitized + "
            f"{quarantined} quarantined ({observed.raw_events} still in RAW)"
        )
    if sanitize.received != totals["events_accepted"] - observed.raw_events:
        problems.append(
            f"sanitize read {sanitize.received} lines but {totals['events_accepted']} events "
            f"were accepted ({observed.raw_events} still in RAW)"
        )
    problems += [f"sanitize: {problem}" for problem in sanitize.problems]
    if totals["batches_unanswered"]:
        problems.append(f"{totals['batches_unanswered']} batches got no answer")
    for name, counters in observed.stages.items():
        if counters["errors"]:
            problems.append(f"stage {name} raised {counters['errors']} errors")
    for role, queue in observed.queues.items():
        if queue["dlq"]:
            problems.append(f"{queue['dlq']} messages in the {role} dead-letter queue")
    if not observed.drained:
        problems.append(
            f"queues with a consumer were not drained within {options.drain_timeout_s:.0f} s"
        )
    if observed.bundles is not None:
        problems += observed.bundles.problems
        problems += observed.bundles.reconcile(sanitize.sanitized_by_partner)
    if observed.cleanup is not None:
        problems += observed.cleanup.problems
    return {
        "stack": options.stack,
        "events_requested": options.events,
        "sending_s": round(phases_s["sending"], 2),
        "draining_s": round(phases_s["draining"], 2),
        "checking_s": round(phases_s["checking"], 2),
        "elapsed_s": round(elapsed_s, 2),
        "events_per_s": (
            round(totals["events_sent"] / phases_s["sending"], 1) if phases_s["sending"] else None
        ),
        "clients": {client: result.summary() for client, result in results.items()},
        "totals": totals,
        "accepted_batch_ids": len(accepted_batches),
        "raw": {
            "objects": inventory.objects,
            "bytes": inventory.bytes,
            "events": observed.raw_events,
            "other_objects": len(inventory.other_keys),
        },
        "sanitize": sanitize.to_dict(),
        "conservation": {
            "accepted": totals["events_accepted"],
            "sanitized": sanitize.sanitized,
            "quarantined": quarantined,
            "left_in_raw": observed.raw_events,
            "holds": conservation_holds,
        },
        "queues": observed.queues,
        "buckets": observed.buckets,
        "stages": observed.stages,
        "drained": observed.drained,
        "bundles": observed.bundles.to_dict(options.out_dir) if observed.bundles else None,
        "cleanup": observed.cleanup.to_dict(options.out_dir) if observed.cleanup else None,
        "problems": problems,
        "ok": not problems,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
