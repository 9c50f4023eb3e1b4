"""Benchmark of the bundle builder: a synthetic month in the local stack, against a naive floor.

``nox -s bench -- bundle`` runs ``python bench/bundle_bench.py``. Not a test: it prints
figures and writes ``bench/results/bundle.json``; it asserts nothing about time.

For each month size (default 1,000,000 and 5,000,000 stored events, 0.5 % of them
client retries of an earlier batch's events, in ANALYTICS files of one 5,000-event
ingest batch each, written with the contract schema):

* **builder** — ``python -m ryuzen_bundle build`` in a subprocess against moto's
  ThreadedMotoServer on loopback (the local stack's engine, running in this process),
  with one signed certificate per batch in SANITIZED: it lists and downloads the month,
  deduplicates, summarizes, renders the report, streams the ZIP into a multipart upload,
  verifies the checksum, copies the metadata, audits and emits the event.
* **naive floor** — on local disk, the same files: ``pl.scan_parquet(...).unique("event_id")
  .sink_parquet(...)`` then Info-ZIP ``zip -0`` of the result, in a subprocess.

Peak RSS of each is the subprocess's own ``VmHWM`` (``/proc/self/status``, read by the
child as it exits), so moto's storage, in this process, is not counted against the
builder. ``os.wait4``'s ``ru_maxrss`` is recorded too but is not the figure: Linux folds
the spawning process's RSS high-water mark (here: moto holding the months) into a child's
``ru_maxrss`` when the child execs, so it reads high by this process's size. The builder
additionally pays the HTTP round trips to moto that the floor does not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import polars as pl
from ryuzen_bundle.analytics_frame import ANALYTICS_SCHEMA, ATTRIBUTE_STRUCT
from ryuzen_bundle.month_window import next_month_start
from ryuzen_contracts.analytics_schema import DUPLICATES_REMOVED_KEY, SANITIZED_ROWS_KEY
from ryuzen_contracts.attestation import ZERO_PII_PREDICATE, sign, statement, subject
from ryuzen_contracts.key_layout import analytics_key, certificate_key
from ryuzen_contracts.signing import LocalSigner, generate_local_key
from ryuzen_contracts.stack_config import load_stack_config
from ryuzen_contracts.tables import audit_table_definition
from ryuzen_tools.local_stack.moto_server import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, MotoServer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bundle.json"
REGION = "eu-west-1"
PARTNER = "acme"
EVENTS_PER_FILE = 5_000
RETRY_SHARE = 0.005
MODELS = ("acme/titan-large", "acme/swift-mini", "acme/core-v2", "acme/vision-pro")
# Runs ``python -m <module> ...`` in this very process and, at exit, writes its VmHWM (KiB)
# to the file named by the first argument.
HWM_WRAPPER = """
import atexit, runpy, sys
report_path, module = sys.argv[1], sys.argv[2]
def report():
    with open("/proc/self/status") as status:
        hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(report_path, "w") as out:
        out.write(hwm)
atexit.register(report)
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""
NAIVE_SCRIPT = """
import atexit, subprocess, sys, time, polars as pl
report_path, source, output, archive = sys.argv[1:5]
def report():
    with open("/proc/self/status") as status:
        hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(report_path, "w") as out:
        out.write(hwm)
atexit.register(report)
started = time.monotonic()
scan = pl.scan_parquet(source + "/**/*.parquet", hive_partitioning=False)
scan.unique("event_id").sink_parquet(output)
sunk = time.monotonic()
subprocess.run(["zip", "-0", "-q", "-j", archive, output], check=True)
print(f"{sunk - started:.3f} {time.monotonic() - sunk:.3f}")
"""


def uniform(seed: int) -> pl.Expr:
    """A uniform [0, 1) column derived from the row number (reproducible)."""
    return (pl.int_range(pl.len(), dtype=pl.UInt64).hash(seed) % 1_000_003).cast(
        pl.Float64
    ) / 1_000_003.0


def batch_frame(
    event_ids: list[str], received_at: datetime, batch_id: str, seed: int
) -> pl.DataFrame:
    """One ingest batch of ANALYTICS rows (contract schema), metrics vectorized in polars."""
    u = [uniform(seed * 16 + k) for k in range(10)]
    models = pl.lit(pl.Series(MODELS))
    statuses = pl.lit(
        pl.Series(
            ["ok"] * 90 + ["error"] * 4 + ["timeout"] * 3 + ["rate_limited"] * 2 + ["cancelled"]
        )
    )
    frame = pl.DataFrame({"event_id": event_ids}).with_columns(
        kind=pl.lit("inference"),
        received_at=pl.lit(received_at, dtype=pl.Datetime("us", "UTC")),
        batch_id=pl.lit(batch_id),
        model_id=models.gather((u[0] * len(MODELS)).cast(pl.UInt32)),
        model_version=pl.lit("2026-10-15"),
        region=pl.lit("eu-west-1"),
        latency_ms=((u[1] + 1e-6).log().neg() * 700 + 80).round(3),
        ttft_ms=(u[2] * 60 + 15).round(3),
        input_tokens=(u[3] * 3000).cast(pl.Int64),
        output_tokens=(u[4] * 900).cast(pl.Int64),
        retries=(u[5] < 0.02).cast(pl.Int32),
        cache_hit=u[6] < 0.1,
        status=statuses.gather((u[7] * 100).cast(pl.UInt32)),
        http_status=pl.lit(200, dtype=pl.Int32),
        error_code=pl.lit(None, dtype=pl.String),
        error_message=pl.lit(None, dtype=pl.String),
        finish_reason=pl.lit("stop"),
        delivery_channel=pl.lit("stream"),
        delivery_attempts=pl.lit(1, dtype=pl.Int32),
        delivery_delivered=pl.lit(True),
        delivery_bytes=(u[8] * 20_000).cast(pl.Int64),
        client_sdk=pl.lit("ryuzen-py"),
        client_sdk_version=pl.lit("1.4.2"),
        late=u[9] < 0.001,
        attributes=pl.lit(
            [{"key": "tier", "value": "pro", "type": "string"}], dtype=pl.List(ATTRIBUTE_STRUCT)
        ),
    )
    frame = frame.with_columns(
        occurred_at=pl.col("received_at")
        - pl.duration(milliseconds=(u[9] * 20_000).cast(pl.Int64)),
        tokens_per_second=pl.col("output_tokens")
        / ((pl.col("latency_ms") - pl.col("ttft_ms")) / 1000),
    ).with_columns(occurred_date=pl.col("occurred_at").dt.date())
    return frame.select([pl.col(name).cast(dtype) for name, dtype in ANALYTICS_SCHEMA.items()])


def certificate_body(signer: LocalSigner, month: str, batch_id: str, sanitized: int) -> bytes:
    predicate = {
        "partner": PARTNER,
        "month": month,
        "batch_id": batch_id,
        "counts": {"received": sanitized + 3, "sanitized": sanitized, "quarantined": 3},
    }
    name = f"sanitized/partner={PARTNER}/month={month}/{batch_id}.parquet"
    stmt = statement([subject(name, sha256="0" * 64)], ZERO_PII_PREDICATE, predicate)
    return sign(stmt, signer).to_json_bytes()


def generate_month(
    s3: Any,
    month: str,
    total: int,
    local: Path,
    signer: LocalSigner,
    seed: int,
    *,
    one_day: bool = False,
) -> dict[str, Any]:
    """Write the month's ANALYTICS files to ``local`` and to moto (and a certificate a batch).

    ``one_day``: every batch is received on the month's first day (the builder's per-day
    summary then holds the whole month at once), instead of spread over the month.
    """
    rng = random.Random(seed)
    start = datetime.fromisoformat(f"{month}-01T00:00:00+00:00")
    files = total // EVENTS_PER_FILE
    span = 86_400.0 if one_day else (next_month_start(month) - start).total_seconds()
    retries_per_file = int(EVENTS_PER_FILE * RETRY_SHARE)
    previous: list[str] = []
    stored_bytes = 0
    duplicates = 0
    started = time.monotonic()
    pending = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for index in range(files):
            received = start + timedelta(seconds=(index + 0.5) * span / files)
            batch_id = _ulid(received, rng)
            fresh = EVENTS_PER_FILE - (retries_per_file if previous else 0)
            ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(fresh)]
            if previous:
                ids += rng.sample(previous, retries_per_file)
                duplicates += retries_per_file
            previous = ids[:fresh]
            data = batch_frame(ids, received, batch_id, seed * 100_000 + index)
            path = local / f"day={received.day:02d}" / f"{batch_id}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            # What the analytics stage records: every row of the batch is a SANITIZED row
            # (the retries are of *earlier* batches' events, not in-batch duplicates).
            data.write_parquet(
                path,
                compression="zstd",
                metadata={SANITIZED_ROWS_KEY: str(len(ids)), DUPLICATES_REMOVED_KEY: "0"},
            )
            stored_bytes += path.stat().st_size
            key = analytics_key(PARTNER, month, received.day, batch_id)
            cert = certificate_body(signer, month, batch_id, EVENTS_PER_FILE)
            pending.append(pool.submit(_put, s3, "analytics", key, path.read_bytes()))
            pending.append(
                pool.submit(_put, s3, "sanitized", certificate_key(PARTNER, month, batch_id), cert)
            )
        for future in pending:
            future.result()
    return {
        "files": files,
        "stored_events": files * EVENTS_PER_FILE,
        "duplicates": duplicates,
        "unique_events": files * EVENTS_PER_FILE - duplicates,
        "stored_mib": round(stored_bytes / 2**20, 1),
        "generate_seconds": round(time.monotonic() - started, 1),
    }


def _ulid(moment: datetime, rng: random.Random) -> str:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    value = (int(moment.timestamp() * 1000) << 80) | rng.getrandbits(80)
    return "".join(alphabet[(value >> shift) & 31] for shift in range(125, -1, -5))


def _put(s3: Any, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def run_measured(
    command: list[str], env: dict[str, str] | None = None
) -> tuple[float, float, float, str]:
    """Run ``command`` (whose first argument after the script is a VmHWM report file).

    Returns (wall seconds, child's own peak RSS MiB from VmHWM, wait4 ru_maxrss MiB, stdout).
    """
    started = time.monotonic()
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile() as hwm,
    ):
        process = subprocess.Popen(
            [command[0], command[1], command[2], hwm.name, *command[3:]],
            stdout=out,
            stderr=err,
            env=env,
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
        reported = Path(hwm.name).read_text().strip()
    if process.returncode != 0:
        raise RuntimeError(f"{command[:4]} exited {process.returncode}: {stderr[-2000:]}")
    peak = int(reported) / 1024 if reported else float("nan")
    return wall, peak, usage.ru_maxrss / 1024, stdout


def own_rss_mib() -> float:
    """This process's current RSS (moto's storage lives here)."""
    with Path("/proc/self/status").open() as status:
        return int(next(line.split()[1] for line in status if line.startswith("VmRSS:"))) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,5000000", help="stored events per month")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--naive-max",
        type=int,
        default=5_000_000,
        help="skip the naive floor above this size (it needs ~3 GB of RAM a million events)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--one-day",
        action="store_true",
        help="receive every batch on the month's first day (the worst case for the summary)",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    zip_binary = shutil.which("zip")
    if zip_binary is None:
        print("Info-ZIP `zip` is not installed (apt-get install -y zip): naive floor skipped")

    server = MotoServer()
    endpoint = server.start()
    work = Path(tempfile.mkdtemp(prefix="ryuzen-bundle-bench-"))
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "cpu_count": os.cpu_count(),
        "events_per_file": EVENTS_PER_FILE,
        "retry_share": RETRY_SHARE,
        "one_day": args.one_day,
        "months": [],
    }
    try:
        session = boto3.session.Session(
            aws_access_key_id=FAKE_ACCESS_KEY,
            aws_secret_access_key=FAKE_SECRET_KEY,
            region_name=REGION,
        )
        s3 = session.client("s3", endpoint_url=endpoint)
        ddb = session.client("dynamodb", endpoint_url=endpoint)
        events = session.client("events", endpoint_url=endpoint)
        for bucket in ("analytics", "sanitized", "bundles"):
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        ddb.create_table(**audit_table_definition("audit"))
        events.create_event_bus(Name="ryuzen-bench")
        signer = generate_local_key(work / "key.pem", work / "key.pub.pem")
        config = load_stack_config(ROOT / "Pulumi.dev.yaml")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "ANALYTICS_BUCKET": "analytics",
            "SANITIZED_BUCKET": "sanitized",
            "BUNDLES_BUCKET": "bundles",
            "AUDIT_TABLE": "audit",
            "STACK_CONFIG": config.to_json(),
            "EVENT_BUS_NAME": "ryuzen-bench",
            "SIGNING_KEY_FILE": str(work / "key.pem"),
            "BUNDLE_WORK_DIR": str(work),
        }
        for index, size in enumerate(sizes):
            month = f"2026-{index + 1:02d}"
            local = work / f"month-{month}"
            print(f"\n== {size:,} stored events ({month}) ==", flush=True)
            month_facts = generate_month(
                s3, month, size, local, signer, seed=index + 1, one_day=args.one_day
            )
            print(
                f"generated {month_facts['files']:,} files, {month_facts['stored_mib']} MiB, "
                f"{month_facts['duplicates']:,} retried events "
                f"in {month_facts['generate_seconds']} s",
                flush=True,
            )
            parent_rss = own_rss_mib()
            wall, rss, maxrss, stdout = run_measured(
                [
                    sys.executable,
                    "-c",
                    HWM_WRAPPER,
                    "ryuzen_bundle",
                    "build",
                    "--partner",
                    PARTNER,
                    "--month",
                    month,
                ],
                env,
            )
            summary = json.loads(stdout.strip().splitlines()[-1])
            assert summary["status"] == "delivered", summary
            assert summary["events"] == month_facts["unique_events"], summary
            builder = {
                "wall_seconds": round(wall, 2),
                "events_per_second": round(month_facts["stored_events"] / wall),
                "peak_rss_mib": round(rss, 1),
                "wait4_ru_maxrss_mib": round(maxrss, 1),
                "bench_process_rss_mib_at_spawn": round(parent_rss, 1),
                "bundle_mib": round(summary["bytes"] / 2**20, 1),
                "parts": summary["parts"],
                "events": summary["events"],
                "duplicates_removed": summary["duplicates_removed"],
                "builder_reported_seconds": summary["seconds"],
            }
            print(
                f"builder: {builder['wall_seconds']} s wall, "
                f"{builder['events_per_second']:,} events/s, "
                f"peak RSS (VmHWM) {builder['peak_rss_mib']} MiB, "
                f"bundle {builder['bundle_mib']} MiB",
                flush=True,
            )
            entry: dict[str, Any] = {"month": month, **month_facts, "builder": builder}
            if zip_binary and not args.skip_naive and size <= args.naive_max:
                wall, rss, maxrss, stdout = run_measured(
                    [
                        sys.executable,
                        "-c",
                        NAIVE_SCRIPT,
                        str(local),
                        str(work / f"naive-{month}.parquet"),
                        str(work / f"naive-{month}.zip"),
                    ]
                )
                sink_s, zip_s = (float(x) for x in stdout.split())
                naive = {
                    "wall_seconds": round(wall, 2),
                    "events_per_second": round(month_facts["stored_events"] / wall),
                    "peak_rss_mib": round(rss, 1),
                    "wait4_ru_maxrss_mib": round(maxrss, 1),
                    "sink_seconds": sink_s,
                    "zip_seconds": zip_s,
                }
                entry["naive_floor"] = naive
                entry["builder_over_naive_wall"] = round(builder["wall_seconds"] / wall, 3)
                print(
                    f"naive floor: {naive['wall_seconds']} s wall (unique+sink {sink_s} s, "
                    f"zip -0 {zip_s} s), {naive['events_per_second']:,} events/s, "
                    f"peak RSS (VmHWM) {naive['peak_rss_mib']} MiB",
                    flush=True,
                )
                print(f"builder / naive wall: {entry['builder_over_naive_wall']}", flush=True)
                (work / f"naive-{month}.parquet").unlink(missing_ok=True)
                (work / f"naive-{month}.zip").unlink(missing_ok=True)
            results["months"].append(entry)
            shutil.rmtree(local, ignore_errors=True)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print("\nsize        builder s  events/s   RSS MiB | naive s  events/s  RSS MiB | ratio")
    for entry in results["months"]:
        b = entry["builder"]
        n = entry.get("naive_floor") or {}
        print(
            f"{entry['stored_events']:>10,}  {b['wall_seconds']:>8}  {b['events_per_second']:>9,}"
            f"  {b['peak_rss_mib']:>7} | {n.get('wall_seconds', '-'):>7}  "
            f"{n.get('events_per_second', 0):>8,}  {n.get('peak_rss_mib', '-'):>7} | "
            f"{entry.get('builder_over_naive_wall', '-')}"
        )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.results}")


if __name__ == "__main__":
    main()
