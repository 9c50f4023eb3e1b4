"""Benchmark of the ingest stage: events/s through ``lambda_handler`` and cold import time.

Not a test: it prints figures and writes ``bench/results/ingest.json``; it asserts nothing
about time. Run from the repository root:

    uv run python bench/ingest_bench.py [--batches N] [--events-per-batch 1000]

Throughput: synthetic, realistic 1,000-event batches for the partners of
``Pulumi.dev.yaml`` go through ``lambda_handler`` with S3 (and DynamoDB) on in-process moto
(``moto.mock_aws``). The handler is single-threaded, so events/s of wall time is the
per-core figure; events per CPU-second is printed beside it. Time spent inside moto's
``put_object`` is reported separately, because it is moto's cost, not ours.

Cold import: ``import ryuzen_ingest.ingest_handler`` in fresh interpreters, median of
several runs minus the median of ``python -c pass``, both with the bytecode cache warm (as
a Lambda package shipped with ``.pyc`` files runs) and with it disabled (every module
compiled from source, as this machine runs when ``PYTHONDONTWRITEBYTECODE`` is set).
"""

from __future__ import annotations

import argparse
import base64
import gc
import gzip
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "ingest.json"
REGION = "eu-west-1"
API_KEY_ID = "benchkey0001"
CLIENT_ID = "edge-gateway"
IMPORT_RUNS = 5
ROUNDS = 5
# (library, level): what raw_batch uses (ISA-L) against stdlib zlib for reference.
GZIP_LEVELS = (
    ("isal", 0),
    ("isal", 1),
    ("isal", 2),
    ("isal", 3),
    ("zlib", 1),
    ("zlib", 5),
    ("zlib", 6),
)


# ---------------------------------------------------------------- synthetic traffic


def model_ids(config: Any) -> list[str]:
    """Model ids owned by the stack's partners (three models per prefix)."""
    return [
        f"{prefix}{name}"
        for partner in config.partners
        for prefix in partner.model_prefixes
        for name in ("titan-2", "stratus-mini", "apogee-70b-instruct")
    ]


def synthetic_event(rng: random.Random, models: list[str], now: datetime) -> dict[str, Any]:
    """One valid-looking TelemetryEvent v1: mostly inference, some delivery, a few errors."""
    occurred = now - timedelta(milliseconds=rng.randrange(0, 600_000))
    event: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "schema_version": "1",
        "kind": "inference",
        "occurred_at": occurred.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{occurred.microsecond // 1000:03d}Z",
        "model": {"id": rng.choice(models), "version": rng.choice(["2026-10-01", "3", "1.1"])},
        "region": rng.choice(["eu-west-1", "us-east-1", "ap-northeast-1"]),
        "client": {"sdk": "ryuzen-python", "sdk_version": "1.4.0"},
    }
    failed = rng.random() < 0.05
    if rng.random() < 0.8:
        latency = round(rng.lognormvariate(6.5, 0.6), 1)
        event["metrics"] = {
            "latency_ms": latency,
            "ttft_ms": round(latency * rng.uniform(0.1, 0.4), 1),
            "input_tokens": rng.randrange(16, 8192),
            "output_tokens": rng.randrange(0, 2048),
            "retries": rng.choice([0, 0, 0, 1, 2]),
            "cache_hit": rng.random() < 0.3,
        }
        event["outcome"] = {
            "status": "error" if failed else "ok",
            "http_status": rng.choice([429, 500, 503]) if failed else 200,
            "finish_reason": "error" if failed else rng.choice(["stop", "length", "tool_calls"]),
        }
    else:
        event["kind"] = "delivery"
        event["delivery"] = {
            "channel": rng.choice(["webhook", "sse", "queue"]),
            "attempts": rng.randrange(1, 4),
            "delivered": not failed,
            "bytes": rng.randrange(200, 200_000),
        }
        event["outcome"] = {
            "status": "error" if failed else "ok",
            "http_status": 503 if failed else 200,
        }
    if failed:
        event["outcome"]["error_code"] = rng.choice(
            ["upstream_timeout", "rate_limited", "overloaded"]
        )
        event["outcome"]["error_message"] = "upstream did not answer within the deadline"
    event["attributes"] = {
        "tier": rng.choice(["free", "pro", "enterprise"]),
        "route": f"r{rng.randrange(64)}",
    }
    return event


def proxy_event(
    body: bytes, *, ndjson: bool, gzip_body: bool, idempotency_key: str | None
) -> dict[str, Any]:
    """An API Gateway REST proxy event (payload format 1.0) as the handler receives it."""
    headers = {"Content-Type": "application/x-ndjson" if ndjson else "application/json"}
    if gzip_body:
        headers["Content-Encoding"] = "gzip"
        body = gzip.compress(body, compresslevel=6)
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return {
        "resource": "/v1/events",
        "path": "/v1/events",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "body": base64.b64encode(body).decode() if gzip_body else body.decode(),
        "isBase64Encoded": gzip_body,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "identity": {"apiKeyId": API_KEY_ID, "sourceIp": "203.0.113.10"},
            "stage": "bench",
        },
    }


# ---------------------------------------------------------------- measurements


def run_scenario(
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    events: list[list[dict[str, Any]]],
    *,
    ndjson: bool,
    gzip_body: bool,
    keyed: bool,
    put_timer: dict[str, float],
    rounds: int = ROUNDS,
) -> dict[str, Any]:
    """Send every batch once, in ``rounds`` timed rounds (request building is not timed).

    On a shared machine other processes steal the CPU now and then, so besides the total
    the figures include the median and the best round, and events per CPU-second (the
    process's own CPU time, which such stealing does not inflate).
    """
    requests = []
    for index, batch in enumerate(events):
        if ndjson:
            body = "".join(
                json.dumps(item, separators=(",", ":")) + "\n" for item in batch
            ).encode()
        else:
            body = json.dumps(batch, separators=(",", ":")).encode()
        key = f"bench-{uuid.uuid4()}-{index}" if keyed else None
        requests.append(proxy_event(body, ndjson=ndjson, gzip_body=gzip_body, idempotency_key=key))
    sizes = [len(batch) for batch in events]
    per_round = max(1, len(requests) // rounds)
    # The benchmark holds every batch in memory, which a Lambda never does: freeze those
    # objects so the collector's full passes do not scan them inside the timed loop.
    gc.collect()
    gc.freeze()
    put_timer["seconds"] = 0.0
    round_rates: list[float] = []
    wall_total = cpu_total = 0.0
    for start in range(0, len(requests), per_round):
        chosen = requests[start : start + per_round]
        wall = time.perf_counter()
        cpu = time.process_time()
        for request in chosen:
            response = handler(request, None)
            if response["statusCode"] != 202:
                raise SystemExit(f"benchmark request refused: {response['body']}")
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
        wall_total += wall
        cpu_total += cpu
        round_rates.append(sum(sizes[start : start + per_round]) / wall)
    gc.unfreeze()
    total_events = sum(sizes)
    return {
        "batches": len(requests),
        "events": total_events,
        "rounds": len(round_rates),
        "wall_seconds": round(wall_total, 4),
        "cpu_seconds": round(cpu_total, 4),
        "events_per_second": round(total_events / wall_total),
        "events_per_second_median_round": round(statistics.median(round_rates)),
        "events_per_second_best_round": round(max(round_rates)),
        "events_per_cpu_second": round(total_events / cpu_total) if cpu_total else None,
        "ms_per_batch": round(wall_total / len(requests) * 1000, 3),
        "moto_put_object_share": round(put_timer["seconds"] / wall_total, 3),
        "events_per_second_excluding_moto_put": round(
            total_events / (wall_total - put_timer["seconds"])
        ),
    }


def parse_and_compress_floor(batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """The baseline beside the handler, same batches, same run: the least any ingest must do
    per request — parse the JSON body and gzip it (ISA-L, the level ingest uses) — with no
    checks, no receipt lines, no checksum and no S3. events/s of CPU time (one thread)."""
    from ryuzen_ingest.raw_batch import gzip_bytes

    bodies = [json.dumps(batch, separators=(",", ":")).encode() for batch in batches]
    events = sum(len(batch) for batch in batches)
    gc.collect()
    started = time.process_time()
    for body in bodies:
        json.loads(body)
        gzip_bytes(body)
    seconds = time.process_time() - started
    return {
        "events": events,
        "cpu_seconds": round(seconds, 4),
        "events_per_second": round(events / seconds),
    }


def gzip_levels(sample: bytes) -> list[dict[str, Any]]:
    """Time and ratio of each gzip library and level on one RAW-sized NDJSON body."""
    from isal import isal_zlib

    libraries = {"isal": isal_zlib, "zlib": zlib}
    figures = []
    for library, level in GZIP_LEVELS:
        module = libraries[library]
        runs = []
        for _ in range(9):
            started = time.perf_counter()
            compressor = module.compressobj(level, module.DEFLATED, 31)
            out = compressor.compress(sample) + compressor.flush()
            runs.append(time.perf_counter() - started)
        figures.append(
            {
                "library": library,
                "level": level,
                "ms": round(statistics.median(runs) * 1000, 2),
                "ratio": round(len(out) / len(sample), 4),
            }
        )
    return figures


def _median_wall(argv: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cold_import(bytecode: bool, runs: int = IMPORT_RUNS) -> dict[str, float]:
    """Median wall time of a fresh interpreter importing the handler, minus ``python -c pass``."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="ryuzen-pycache-") as cache_dir:
        if bytecode:
            # A private bytecode cache: warm it once, so no file in the shared venv is touched.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = cache_dir
        else:
            # As installed: uv does not compile site-packages to bytecode by default, and with
            # PYTHONDONTWRITEBYTECODE nothing is cached, so every import compiles from source.
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        importer = [sys.executable, "-c", "import ryuzen_ingest.ingest_handler"]
        if bytecode:
            subprocess.run(importer, env=env, check=True, capture_output=True)
            subprocess.run([sys.executable, "-c", "pass"], env=env, check=True, capture_output=True)
        baseline = _median_wall([sys.executable, "-c", "pass"], env, runs)
        handler = _median_wall(importer, env, runs)
        timed = subprocess.run(
            [
                sys.executable,
                "-c",
                "import time; t = time.perf_counter(); import ryuzen_ingest.ingest_handler; "
                "print(time.perf_counter() - t)",
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    return {
        "python_baseline_ms": round(baseline * 1000, 1),
        "handler_process_ms": round(handler * 1000, 1),
        "import_ms": round((handler - baseline) * 1000, 1),
        "in_process_import_ms": round(float(timed.stdout.strip()) * 1000, 1),
    }


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batches", type=int, default=150, help="batches per scenario (default 150)"
    )
    parser.add_argument("--events-per-batch", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261128)
    args = parser.parse_args()

    from ryuzen_contracts.stack_config import load_stack_config
    from ryuzen_contracts.tables import audit_table_definition, idempotency_table_definition

    config = load_stack_config(ROOT / "Pulumi.dev.yaml")
    rng = random.Random(args.seed)
    models = model_ids(config)
    now = datetime.now(UTC)
    batches = [
        [synthetic_event(rng, models, now) for _ in range(args.events_per_batch)]
        for _ in range(args.batches)
    ]
    sample_body = json.dumps(batches[0], separators=(",", ":")).encode()

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "RAW_BUCKET": "ryuzen-bench-raw",
            "IDEMPOTENCY_TABLE": "ryuzen-bench-idempotency",
            "AUDIT_TABLE": "ryuzen-bench-audit",
            "STACK_CONFIG": config.to_json(),
            "API_KEY_CLIENTS": json.dumps({API_KEY_ID: CLIENT_ID}),
            "POWERTOOLS_LOG_LEVEL": "WARNING",  # one INFO line per batch would be measured too
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)

    import boto3
    from moto import mock_aws

    results: dict[str, Any] = {}
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=os.environ["RAW_BUCKET"],
            CreateBucketConfiguration={"LocationConstraint": REGION},
        )
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(**idempotency_table_definition(os.environ["IDEMPOTENCY_TABLE"]))
        dynamodb.create_table(**audit_table_definition(os.environ["AUDIT_TABLE"]))

        from ryuzen_ingest import ingest_handler

        ingest_handler.reset_runtime()
        first = proxy_event(sample_body, ndjson=False, gzip_body=False, idempotency_key=None)
        started = time.perf_counter()
        if ingest_handler.lambda_handler(first, None)["statusCode"] != 202:
            raise SystemExit("the first benchmark request was refused")
        first_request_ms = (time.perf_counter() - started) * 1000

        # Time moto's put_object separately: it is the mock's cost, not the handler's.
        s3 = ingest_handler.get_runtime().s3_client()
        real_put = s3.put_object
        put_timer = {"seconds": 0.0}

        def timed_put(**kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return real_put(**kwargs)
            finally:
                put_timer["seconds"] += time.perf_counter() - started

        s3.put_object = timed_put
        handler = ingest_handler.lambda_handler
        scenarios = {
            "json_array": {"ndjson": False, "gzip_body": False, "keyed": False},
            "ndjson_gzip_base64": {"ndjson": True, "gzip_body": True, "keyed": False},
            "json_array_idempotency_key": {"ndjson": False, "gzip_body": False, "keyed": True},
        }
        for name, options in scenarios.items():
            results[name] = run_scenario(handler, batches, put_timer=put_timer, **options)

    raw_sample = (
        "\n".join('{"receipt":{},"event":' + json.dumps(event) + "}" for event in batches[0]) + "\n"
    ).encode()
    report = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "events_per_batch": args.events_per_batch,
        "mean_event_bytes": round(len(sample_body) / args.events_per_batch),
        "first_request_ms": round(first_request_ms, 1),
        "throughput": results,
        "floor_parse_and_gzip": parse_and_compress_floor(batches),
        "gzip_levels": gzip_levels(raw_sample),
        "cold_import": {
            "bytecode_cached": cold_import(bytecode=True),
            "no_bytecode_cache": cold_import(bytecode=False),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_report(report)


def print_report(report: dict[str, Any]) -> None:
    python, cpus, machine = report["python"], report["cpu_count"], report["platform"]
    print(f"ingest benchmark - Python {python}, {cpus} CPUs, {machine}")
    per_batch, event_bytes = report["events_per_batch"], report["mean_event_bytes"]
    print(f"batches of {per_batch} events, mean {event_bytes} bytes per event (compact JSON)")
    print(f"first request after import (settings, clients): {report['first_request_ms']} ms")
    for name, figures in report["throughput"].items():
        share = figures["moto_put_object_share"]
        print(
            f"  {name:28} {figures['events_per_second']:>7,} events/s wall over all "
            f"{figures['batches']} batches (single thread, so per core); rounds: median "
            f"{figures['events_per_second_median_round']:,}, best "
            f"{figures['events_per_second_best_round']:,}; "
            f"{figures['events_per_cpu_second']:,} per CPU-second; "
            f"{figures['ms_per_batch']} ms/batch; "
            f"moto put_object {share:.0%} of the time"
        )
    floor = report["floor_parse_and_gzip"]
    print(
        f"  {'floor: json.loads + gzip only':28} {floor['events_per_second']:>7,} events/s "
        "(same batches, no checks, no S3): the handler's ratio to it is in RESULTS.md"
    )
    levels = ", ".join(
        f"{item['library']} {item['level']}: {item['ms']} ms x{item['ratio']}"
        for item in report["gzip_levels"]
    )
    print(f"gzip of one RAW batch: {levels}")
    for name, figures in report["cold_import"].items():
        process, baseline = figures["handler_process_ms"], figures["python_baseline_ms"]
        print(
            f"cold import of ryuzen_ingest.ingest_handler ({name}): {figures['import_ms']} ms "
            f"(process {process} ms - bare python {baseline} ms; "
            f"in-process {figures['in_process_import_ms']} ms)"
        )
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
