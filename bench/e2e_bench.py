"""End-to-end benchmark: ``nox -s bench -- e2e`` (runs ``python bench/e2e_bench.py``).

(a) The pipeline through the local stack: ``ryuzen local demo``'s traffic (real HTTP to the
local API on loopback, moto's server, the stages fed by their SQS queues) without the
bundle round; events/s = events accepted / (sending + draining), i.e. from the first
request until every queue with a consumer is empty, plus request latency p50/p99.

(b) The baseline, same run, same machine: the same number of events of the same
generator through the same stage code called in-process — ingest's RAW encoding,
sanitize's ``transform`` and analytics' ``normalize`` — with no HTTP, no S3, no queues.
The ratio (a)/(b) is what the stack itself (HTTP, moto, polling, one process for every
stage) costs. Prints figures, writes ``bench/results/e2e.json``; asserts nothing on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# One INFO line per stage invocation would be printed (and measured) otherwise.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "e2e.json"


def through_the_stack(events: int, batch_size: int, concurrency: int, seed: int) -> dict[str, Any]:
    """(a): the demo's traffic and drain, without bundles."""
    from ryuzen_tools.demo import DemoOptions, run_demo

    with tempfile.TemporaryDirectory(prefix="ryuzen-e2e-") as state_dir:
        options = DemoOptions(
            events=events,
            batch_size=batch_size,
            concurrency=concurrency,
            seed=seed,
            pii_rate=0.01,
            malformed_rate=0.02,
            state_dir=Path(state_dir),
            bundles=False,
            project_dir=ROOT,
        )
        summary = run_demo(options).summary
    totals = summary["totals"]
    seconds = summary["sending_s"] + summary["draining_s"]
    return {
        "ok": summary["ok"],
        "problems": summary.get("problems", []),
        "events_accepted": totals["events_accepted"],
        "sending_seconds": summary["sending_s"],
        "draining_seconds": summary["draining_s"],
        "events_per_second": round(totals["events_accepted"] / seconds),
        "ingest_events_per_second": round(totals["events_accepted"] / summary["sending_s"]),
        "request_latency_ms": totals["latency_ms"],
    }


def in_process(events: int, batch_size: int, seed: int) -> dict[str, Any]:
    """(b): the same stage code on the same kind of events, called directly."""
    from ryuzen_analytics.normalize import normalize
    from ryuzen_analytics.sanitized_parquet import read_sanitized
    from ryuzen_contracts.ids import new_ulid
    from ryuzen_contracts.key_layout import raw_key
    from ryuzen_contracts.signing import generate_local_key
    from ryuzen_contracts.stack_config import load_stack_config
    from ryuzen_ingest.raw_batch import build_ndjson, gzip_bytes, rfc3339_millis
    from ryuzen_sanitize.transform import transform
    from ryuzen_tools.synthetic import SyntheticEvents

    config = load_stack_config(ROOT / "Pulumi.dev.yaml")
    generator = SyntheticEvents(config, seed=seed, pii_rate=0.01, malformed_rate=0.02)
    batches = [[e.payload for e in batch] for batch in generator.batches(events, batch_size)]
    with tempfile.TemporaryDirectory() as keys:
        signer = generate_local_key(Path(keys) / "k.pem", Path(keys) / "k.pub.pem")
    started = time.perf_counter()
    normalized = 0
    for batch in batches:
        now = datetime.now(UTC)
        batch_id = new_ulid(now)
        texts = [json.dumps(event, separators=(",", ":")) for event in batch]
        partners = [_partner(config, event) for event in batch]
        receipt = {
            "batch_id": batch_id,
            "received_at": rfc3339_millis(now),
            "client_id": "bench",
            "request_id": None,
        }
        body = gzip_bytes(build_ndjson(texts, partners, receipt))
        result = transform(body, raw_key(now, batch_id), config, signer)
        for output in result.partners:
            normalized += normalize(read_sanitized(output.parquet)).height
    seconds = time.perf_counter() - started
    return {
        "events": sum(len(batch) for batch in batches),
        "events_normalized": normalized,
        "seconds": round(seconds, 3),
        "events_per_second": round(sum(len(batch) for batch in batches) / seconds),
    }


def _partner(config: Any, event: dict[str, Any]) -> str:
    model = event.get("model")
    owner = config.partner_for_model(str(model.get("id"))) if isinstance(model, dict) else None
    return owner.id if owner is not None else config.partners[0].id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=20261128)
    args = parser.parse_args()

    baseline = in_process(args.events, args.batch_size, args.seed)
    print(f"(b) in-process stage code: {baseline['events_per_second']:,} events/s")
    pipeline = through_the_stack(args.events, args.batch_size, args.concurrency, args.seed)
    latency = pipeline["request_latency_ms"]
    print(
        f"(a) through the local stack: {pipeline['events_per_second']:,} events/s end to end "
        f"({pipeline['events_accepted']:,} accepted; ingest "
        f"{pipeline['ingest_events_per_second']:,} events/s; latency p50 {latency['p50']} ms, "
        f"p99 {latency['p99']} ms); demo verdict ok={pipeline['ok']}"
    )
    ratio = pipeline["events_per_second"] / baseline["events_per_second"]
    print(f"ratio (a)/(b): {ratio:.2f}")
    report = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "events": args.events,
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "pipeline": pipeline,
        "in_process": baseline,
        "ratio": round(ratio, 3),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    if not pipeline["ok"]:
        sys.exit("the pipeline run did not pass the demo's checks; figures are not valid")


if __name__ == "__main__":
    main()
