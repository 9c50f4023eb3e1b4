"""PII canaries through the whole local pipeline: ingest → sanitize → analytics → bundle →
pull → cleanup (issue 7 §3).

A canary of every scrubber rule is planted in every free-text position (``error_message``
and string attribute values, for every partner), and canaries are planted in every
identifier position (``model.id``, ``model.version``, ``region``, ``error_code``,
``client.sdk``, ``client.sdk_version``, an attribute key, a Luhn-valid card number as a
numeric attribute). The pipeline then runs as the demo runs it (``bundle_demo`` builds,
pulls, downloads and verifies every partner's bundle; ``cleanup_demo`` waits for each
month to be cleaned and checks its trail, receipt and empty prefixes). Afterwards every
object of every bucket except quarantine — read both before the bundles were built and
after cleanup, and decoded: gzip, ZIP members, Parquet values, DSSE payloads — every audit
and idempotency item, every certificate, manifest and deletion receipt, every bundle file
kept on disk, the bundle tasks' output and all captured output of the in-process stack
(stdout, stderr, every log record; the stages' loggers at DEBUG) are searched for every
canary, as is, lower case and JSON-escaped: zero hits.

Quarantine holds reasons and hashes only, under its own KMS key. A second, smaller run
with ``quarantineRawLines: true`` (a copy of the stack file in a temporary project
directory) shows the raw lines kept there, under the quarantine key, and nowhere else.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from ryuzen_contracts.key_layout import month_of
from ryuzen_sanitize.quarantine import ValueHasher, value_hasher_from_kms
from ryuzen_sanitize.scrubber.rules import RULE_IDS
from ryuzen_tools import bundle_demo
from ryuzen_tools.bundle_demo import BundleRound, bundle_round
from ryuzen_tools.cleanup_demo import CleanupRound, cleanup_round
from ryuzen_tools.local_stack import bundle_task
from ryuzen_tools.local_stack.stack import LocalStack, LocalStackOptions
from ryuzen_tools.local_stack.stage_registry import SQS_CONSUMERS
from ryuzen_tools.local_stack.status import queue_depth
from ryuzen_tools.sanitize_report import RAW_LINES_SUFFIX
from tools_canary_search import bucket_objects, items_text, search_artifacts, table_items
from tools_output_capture import OutputCapture
from tools_pii_canary_values import CanarySet
from tools_support import unique

QUARANTINE_BUCKET_ROLE = "quarantine"


@dataclass
class Collected:
    """What one run left behind, read while its stack still ran."""

    canaries: CanarySet
    ready: dict[str, Any]
    text_event_ids: list[str]
    identifier_event_ids: dict[str, str]
    # Everything outside quarantine, by where it was read: "<phase> s3://bucket/key",
    # "file ...", "audit table", "captured output" ...
    artifacts: dict[str, bytes]
    quarantine: dict[str, bytes]
    quarantine_kms_keys: dict[str, str | None]
    sanitized_rows: pl.DataFrame | None
    stages: dict[str, Any]
    dlq_messages: dict[str, int]
    # The stack's keyed hash of quarantined values (its KMS HMAC key's secret).
    value_hasher: ValueHasher | None = None
    bundles: BundleRound | None = None
    cleanup: CleanupRound | None = None


def _send(api: str, key: str, events: list[dict[str, Any]], *, ndjson_gzip: bool) -> None:
    if ndjson_gzip:
        body = gzip.compress(b"".join(json.dumps(e).encode() + b"\n" for e in events))
        headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
    else:
        body, headers = json.dumps(events).encode(), {"Content-Type": "application/json"}
    response = httpx.post(
        f"{api}/v1/events", content=body, headers={**headers, "x-api-key": key}, timeout=60
    )
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(events)


def _buckets_outside_quarantine(stack: LocalStack, phase: str) -> dict[str, bytes]:
    s3 = stack.clients.client("s3")  # type: ignore[union-attr]
    objects: dict[str, bytes] = {}
    for role, bucket in stack.ready["buckets"].items():
        if role != QUARANTINE_BUCKET_ROLE:
            objects.update({f"{phase} s3://{k}": v for k, v in bucket_objects(s3, bucket).items()})
    return objects


def _tables(stack: LocalStack) -> dict[str, bytes]:
    ddb = stack.clients.client("dynamodb")  # type: ignore[union-attr]
    return {
        f"{role} table": items_text(table_items(ddb, table)).encode()
        for role, table in stack.ready["tables"].items()
    }


def _quarantine(stack: LocalStack) -> tuple[dict[str, bytes], dict[str, str | None]]:
    s3 = stack.clients.client("s3")  # type: ignore[union-attr]
    bucket = stack.ready["buckets"][QUARANTINE_BUCKET_ROLE]
    objects = bucket_objects(s3, bucket)
    keys = {
        name: s3.head_object(Bucket=bucket, Key=name.split("/", 1)[1]).get("SSEKMSKeyId")
        for name in objects
    }
    return objects, keys


def _sanitized_rows(objects: dict[str, bytes]) -> pl.DataFrame | None:
    frames = [
        pl.read_parquet(io.BytesIO(body))
        for name, body in objects.items()
        if "/sanitized/partner=" in name and name.endswith(".parquet")
    ]
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


def _files(directory: Path) -> dict[str, bytes]:
    return {f"file {path}": path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def _dlq_messages(stack: LocalStack) -> dict[str, int]:
    sqs = stack.clients.client("sqs")  # type: ignore[union-attr]
    return {
        role: sum(queue_depth(sqs, queue["dlq_url"]).values())
        for role, queue in stack.ready["queues"].items()
    }


def _run(
    options: LocalStackOptions, canaries: CanarySet, work_dir: Path, *, full: bool
) -> Collected:
    """Send the canary events through the stack; with ``full``, on to bundles and cleanup."""
    text_events = canaries.free_text_events()
    identifier_events = canaries.identifier_events()
    with (
        pytest.MonkeyPatch.context() as patch,
        OutputCapture() as capture,
        LocalStack(options) as stack,
    ):
        capture.rescan()  # the stages' loggers exist now
        # The bundle task (a subprocess, as ECS runs it) logs at DEBUG too, and its whole
        # output is kept: its JSON summary (stdout) and its log (stderr).
        tasks: list[bundle_task.BundleTaskResult] = []

        def recorded(*args: Any, **kwargs: Any) -> bundle_task.BundleTaskResult:
            result = bundle_task.run_bundle_task(*args, **kwargs)
            tasks.append(result)
            return result

        patch.setattr(bundle_task, "STDERR_TAIL_CHARS", 10**9)
        patch.setattr(bundle_demo, "run_bundle_task", recorded)
        patch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
        ready = stack.ready
        key = ready["ingest_keys"]["edge-gateway"]
        # Given the free-text canaries as a JSON array, the identifier ones as gzip NDJSON
        _send(ready["api"], key, text_events, ndjson_gzip=False)
        _send(ready["api"], key, list(identifier_events.values()), ndjson_gzip=True)
        assert stack.wait_until_drained(timeout_s=120)
        artifacts = _buckets_outside_quarantine(stack, "drained")
        sanitized_rows = _sanitized_rows(artifacts)
        bundles = cleanup = None
        if full:
            # When every partner's bundle is built, pulled and verified, and cleanup runs
            month = month_of(datetime.now(UTC))
            partners = [partner.id for partner in stack.config.partners]  # type: ignore[union-attr]
            bundles = bundle_round(
                stack.stage_environment, ready, partners, month, work_dir / "bundles"
            )
            cleanup = cleanup_round(
                stack.clients,  # type: ignore[arg-type]
                ready,
                bundles.delivered_sha256(),
                month,
                work_dir / "receipts",
                timeout_s=120,
            )
            assert stack.wait_until_drained(timeout_s=30)
            artifacts.update(_buckets_outside_quarantine(stack, "cleaned"))
            artifacts.update(_files(work_dir))
            artifacts["bundle and cleanup rounds"] = json.dumps(
                [bundles.to_dict(work_dir), cleanup.to_dict(work_dir)], default=str
            ).encode()
            for task in tasks:
                artifacts[f"bundle task {task.partner} summary"] = json.dumps(task.summary).encode()
                artifacts[f"bundle task {task.partner} stderr"] = task.stderr_tail.encode()
        artifacts.update(_tables(stack))
        quarantine, kms_keys = _quarantine(stack)
        hasher = value_hasher_from_kms(
            stack.clients.client("kms"),  # type: ignore[union-attr]
            ready["kms_keys"]["quarantine-hash"],
        )
        stages = stack.counters_document()["stages"]
        dlq = _dlq_messages(stack)
    artifacts["captured output"] = capture.text().encode()
    return Collected(
        canaries=canaries,
        ready=ready,
        text_event_ids=[e["event_id"] for e in text_events],
        identifier_event_ids={name: e["event_id"] for name, e in identifier_events.items()},
        artifacts=artifacts,
        quarantine=quarantine,
        quarantine_kms_keys=kms_keys,
        value_hasher=hasher,
        sanitized_rows=sanitized_rows,
        stages=stages,
        dlq_messages=dlq,
        bundles=bundles,
        cleanup=cleanup,
    )


@pytest.fixture(scope="module")
def pipeline(project_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collected]:
    """The full pipeline, run once for the module (the stack is stopped before the tests)."""
    work_dir = tmp_path_factory.mktemp("canary-pipeline")
    options = LocalStackOptions(
        project_dir=project_dir, state_dir=None, resource_prefix=unique("canary")
    )
    yield _run(options, CanarySet(), work_dir, full=True)


@pytest.fixture(scope="module")
def raw_lines_kept(
    project_dir: Path, tmp_path_factory: pytest.TempPathFactory, pipeline: Collected
) -> Collected:
    """Ingest and sanitize only, with ``quarantineRawLines: true`` in a copied stack file.

    Depends on ``pipeline`` so the two stacks never run at once (both set the process's
    environment)."""
    project = tmp_path_factory.mktemp("raw-lines-project")
    shutil.copy(project_dir / "Pulumi.yaml", project / "Pulumi.yaml")
    stack_file = (project_dir / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    (project / "Pulumi.dev.yaml").write_text(
        stack_file + "  ryuzen-telemetry:quarantineRawLines: true\n", encoding="utf-8"
    )
    options = LocalStackOptions(
        project_dir=project,
        state_dir=None,
        resource_prefix=unique("rawlines"),
        consumers=tuple(c for c in SQS_CONSUMERS if c.name == "sanitize"),
        scheduled=(),
    )
    return _run(options, CanarySet(), tmp_path_factory.mktemp("raw-lines-run"), full=False)


def _records(quarantine: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    records = {}
    for name, body in quarantine.items():
        if name.endswith(RAW_LINES_SUFFIX):
            continue
        for line in gzip.decompress(body).splitlines():
            record = json.loads(line)
            records[record["event_id"]] = record
    return records


def test_there_is_a_canary_of_every_scrubber_rule() -> None:
    canaries = CanarySet()
    assert {canary.rule for canary in canaries.text} == set(RULE_IDS)


def test_the_search_sees_through_zip_parquet_gzip_and_dsse(tmp_path: Path) -> None:
    # Given a canary inside a zstd Parquet inside a ZIP, in a gzip member and in a DSSE
    # payload: none of them is in the raw bytes
    canary = "Canary Quillon Vexmarch"
    parquet = io.BytesIO()
    pl.DataFrame({"attributes": [[{"key": "note", "value": canary * 40}]]}).write_parquet(
        parquet, compression="zstd"
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("data/events/part-00000.parquet", parquet.getvalue())
    payload = base64.b64encode(json.dumps({"predicate": {"note": canary}}).encode()).decode()
    artifacts = {
        "zip": archive.getvalue(),
        "gzip": gzip.compress(canary.encode()),
        "dsse": json.dumps({"payloadType": "x", "payload": payload}).encode(),
    }
    assert all(canary.encode() not in data for data in artifacts.values())
    # Then the search finds each, case-insensitively
    hits = search_artifacts(artifacts, [canary.upper()])
    assert {hit.where.split(" ")[0].split("!")[0] for hit in hits} == set(artifacts)


def test_the_pipeline_ran_to_the_end_without_an_error(pipeline: Collected) -> None:
    assert pipeline.bundles is not None and pipeline.cleanup is not None
    assert pipeline.bundles.problems == []
    assert set(pipeline.bundles.delivered_sha256()) == {"acme", "nimbus-ai", "orbital"}
    assert pipeline.cleanup.problems == []
    for name, counters in pipeline.stages.items():
        assert counters["errors"] == 0, name
    assert pipeline.stages["cleanup"]["invocations"] >= 1
    assert set(pipeline.dlq_messages.values()) == {0}
    # the working telemetry is gone; the bundles and their receipts stay
    cleaned = [name for name in pipeline.artifacts if name.startswith("cleaned s3://")]
    working = ("-raw/", "-sanitized/", "-analytics/")
    assert not [name for name in cleaned if any(bucket in name for bucket in working)]


def test_every_free_text_canary_was_redacted_in_place(pipeline: Collected) -> None:
    rows = pipeline.sanitized_rows
    assert rows is not None
    planted = rows.filter(pl.col("event_id").is_in(pipeline.text_event_ids))
    # every event with free-text PII was kept (redacted), none was quarantined
    assert planted.height == len(pipeline.text_event_ids)
    texts = json.dumps(planted.select("error_message", "attributes").to_dicts())
    for rule in RULE_IDS:
        assert f"[REDACTED:{rule}]" in texts, rule


def test_every_identifier_canary_was_quarantined_as_a_keyed_hash(pipeline: Collected) -> None:
    records = _records(pipeline.quarantine)
    hasher = pipeline.value_hasher
    assert hasher is not None
    for canary in pipeline.canaries.identifiers:
        record = records[pipeline.identifier_event_ids[canary.name]]
        assert (record["reason"], record["field"], record["rule"]) == (
            "pii_in_identifier",
            canary.field,
            canary.rule,
        ), canary.name
        value = pipeline.canaries.identifier_text(canary)
        # HMAC under the stack's secret: the plain SHA-256 (reversible by guessing short
        # values) is nowhere in quarantine.
        assert record["value_hmac_sha256"] == hasher(value), canary.name
        assert record["value_hash_key"] == hasher.key_id
        plain = hashlib.sha256(value.encode()).hexdigest().encode()
        assert not [name for name, body in pipeline.quarantine.items() if plain in body]


def test_no_canary_is_anywhere_outside_quarantine(pipeline: Collected) -> None:
    names = list(pipeline.artifacts)
    # the search covered every kind of artifact the pipeline leaves behind
    assert any("/sanitized/partner=" in n and n.endswith(".certificate.dsse.json") for n in names)
    assert any("/analytics/events/partner=" in n for n in names)
    assert any(n.startswith("file ") and n.endswith(".zip") for n in names)
    assert any(n.startswith("cleaned s3://") and n.endswith(".zip") for n in names)
    assert any(n.endswith(".deletion-receipt.dsse.json") for n in names)
    output = pipeline.artifacts["captured output"].decode()
    assert '"service":"ryuzen-sanitize"' in output and '"service":"ryuzen-cleanup"' in output
    tasks = [name for name in names if name.startswith("bundle task ") and "stderr" in name]
    assert len(tasks) == 3
    assert all(b'"service":"ryuzen-bundle"' in pipeline.artifacts[name] for name in tasks)
    # and found no canary, in any encoding, in any layer of any of them
    assert search_artifacts(pipeline.artifacts, pipeline.canaries.needles()) == []


def test_quarantine_holds_reasons_and_hashes_only_under_its_own_key(pipeline: Collected) -> None:
    assert pipeline.quarantine
    assert not [name for name in pipeline.quarantine if name.endswith(RAW_LINES_SUFFIX)]
    assert search_artifacts(pipeline.quarantine, pipeline.canaries.needles()) == []
    kms = pipeline.ready["kms_keys"]
    assert kms["quarantine"] != kms["data"]
    assert set(pipeline.quarantine_kms_keys.values()) == {kms["quarantine"]}


def test_with_quarantine_raw_lines_the_lines_are_kept_there_only(raw_lines_kept: Collected) -> None:
    run = raw_lines_kept
    raw_lines = {n: b for n, b in run.quarantine.items() if n.endswith(RAW_LINES_SUFFIX)}
    assert raw_lines
    # the rejected raw lines are kept, in clear, in quarantine, under the quarantine key
    kept = b"".join(gzip.decompress(body) for body in raw_lines.values()).decode()
    for canary in run.canaries.identifiers:
        assert run.canaries.identifier_text(canary) in kept, canary.name
    kms = run.ready["kms_keys"]
    assert set(run.quarantine_kms_keys.values()) == {kms["quarantine"]}
    # the records object beside them still holds hashes only
    records = {n: b for n, b in run.quarantine.items() if n not in raw_lines}
    assert records and search_artifacts(records, run.canaries.needles()) == []
    # and nothing outside quarantine holds a canary
    assert run.stages["sanitize"]["errors"] == 0
    assert search_artifacts(run.artifacts, run.canaries.needles()) == []
