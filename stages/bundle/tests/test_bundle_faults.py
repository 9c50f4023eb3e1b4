"""Faults and crashes at every step of the monthly build task, as one table.

The task is run as the ECS task runs it — ``python -m ryuzen_bundle build`` through
``command_line.main`` — with its AWS clients (moto) carrying one fault each, from the
shared harness's ``Fault`` (``bundle_fault_hooks`` adds parameter filters, modeled errors,
writes whose answer is lost, and real rivals). For every case:

* the build fails with exit status 1 and a JSON line naming the step (or, for a lost
  race at the first write, is refused with 3 having touched nothing; or, where the fault
  is one the builder absorbs, delivers with 0);
* one ``ERROR`` audit event and the error log line name the step and the error type,
  never a message;
* the state never reads ``DELIVERED`` after a failure, and every state write DynamoDB
  accepted, across the failed run and the re-run, follows ``BUILDING → BUILT →
  DELIVERED`` (a retry may go back to ``BUILDING``; nothing is skipped);
* what the failed run left (object, lifecycle audit events, ``BundleDelivered``) is
  exactly what it had done before its failing step, and no multipart upload is left open;
* a clean re-run delivers, and the month converges on the state of a build that never
  failed, taken from a clean run on a fresh moto: the same ZIP entries and manifest (the
  manifest's DSSE signature is randomized, so it is verified instead of compared), the
  same state attributes, audit details and event, with every digest naming the object
  actually stored.

Faults outside AWS (the work directory, the summary, the ZIP writer, ANALYTICS lagging
behind its certificates) are ``LOCAL_FAULTS``: each sets itself up, records that it
fired, and heals before the re-run. Every step the builder names has a case (a test
reads the names from the builder's source).

Adding a fault is one line in CASES.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import io
import json
import logging
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest
from bundle_build_stack import BUCKETS, EVENT_BUS, REGION, BundleStack, provision_resources
from bundle_build_support import (
    MONTH,
    NOW,
    analytics_metadata,
    batch,
    certificate,
    parquet_bytes,
)
from moto import mock_aws
from ryuzen_bundle import bundle_builder, command_line, daily_summary
from ryuzen_bundle.bundle_builder import BuildTuning
from ryuzen_bundle.bundle_zip import BundleZip
from ryuzen_contracts.attestation import verify
from ryuzen_contracts.audit_log import AuditEventType
from ryuzen_contracts.bundle_state import ALLOWED, BundleState
from ryuzen_contracts.fault_injection import CRASH, Fault, Hook, Installed, StateRecorder, includes
from ryuzen_contracts.key_layout import analytics_key, bundle_key, certificate_key
from ryuzen_contracts.signing import LocalSigner, generate_local_key
from ryuzen_contracts.stack_config import StackConfig

# A ZIP left open by a failed build must not write into its aborted upload from __del__.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

KEY = bundle_key("acme", MONTH)
THROUGHPUT = "ProvisionedThroughputExceededException"
THROTTLED = "ThrottlingException"
RACE = "ConditionalCheckFailedException"
FAILED, REFUSED, DELIVERED = 1, 3, 0
# The order the build's writes happen in: what a run that failed at a step had done.
# The object is verified (checksum, metadata copy, read-back) before BUILT/BUNDLE_CREATED.
STEPS = [
    "read_state",
    "mark_building",
    "work_dir",  # creating the work directory (its removal would come after complete_upload)
    "list_analytics",
    "download_analytics",
    "fetch_certificates",
    "check_complete",
    "summarize",
    "start_upload",
    "write_zip",
    "upload_part",
    "sign_manifest",
    "complete_upload",
    "verify_upload",
    "store_metadata",
    "verify_metadata",
    "mark_built",
    "audit_created",
    "audit_delivered",
    "emit_event",
    "mark_delivered",
]


def state_write(state: str) -> dict[str, Any]:
    return {"Item": {"sk": {"S": "STATE#BUNDLE"}, "state": {"S": state}}}


def audit_write(kind: str) -> dict[str, Any]:
    return {"Item": {"event_type": {"S": kind}}}


ANALYTICS = {"Bucket": BUCKETS["analytics"]}
CERTIFICATES = {"Bucket": BUCKETS["sanitized"]}


@dataclass(frozen=True)
class Case:
    hook: Hook | None  # None: the signer fails (KMS), or a fault in LOCAL_FAULTS
    step: str
    exit: int = FAILED
    audited: str | None = None  # the audited error type, when not the injected one's
    kms_error: str | None = None
    copy_limit: int | None = None  # force the multipart metadata copy (objects > 5 GiB)
    local: str | None = None  # a key of LOCAL_FAULTS
    reason: str | None = None  # a pattern the ERROR event's (and summary's) reason matches


def local(name: str, step: str, audited: str, reason: str | None = None) -> Case:
    return Case(None, step, audited=audited, local=name, reason=reason)


def s3(operation: str, code: str, step: str, call: int = 1, **kwargs: Any) -> Case:
    where = kwargs.pop("where", {})
    return Case(Hook("s3", Fault(operation, code, call), where), step, **kwargs)


def ddb(operation: str, code: str, step: str, where: dict[str, Any], **kwargs: Any) -> Case:
    landed = kwargs.pop("landed", False)
    return Case(Hook("dynamodb", Fault(operation, code), where, landed=landed), step, **kwargs)


CASES: dict[str, Case] = {
    # S3 reads and writes, each step the builder takes
    "list-analytics-slowdown": s3("ListObjectsV2", "SlowDown", "list_analytics", where=ANALYTICS),
    "list-certificates-500": s3(
        "ListObjectsV2", "InternalError", "fetch_certificates", where=CERTIFICATES
    ),
    "get-analytics-slowdown": s3("GetObject", "SlowDown", "download_analytics", where=ANALYTICS),
    "get-second-analytics-500": s3(
        "GetObject", "InternalError", "download_analytics", 2, where=ANALYTICS
    ),
    "get-certificate-slowdown": s3(
        "GetObject", "SlowDown", "fetch_certificates", where=CERTIFICATES
    ),
    "create-upload-slowdown": s3("CreateMultipartUpload", "SlowDown", "start_upload"),
    "upload-part-500": s3("UploadPart", "InternalError", "upload_part"),
    "upload-part-slowdown": s3("UploadPart", "SlowDown", "upload_part"),
    "complete-upload-slowdown": s3("CompleteMultipartUpload", "SlowDown", "complete_upload"),
    "head-500": s3("HeadObject", "InternalError", "verify_upload"),
    "attributes-slowdown": s3("GetObjectAttributes", "SlowDown", "verify_upload"),
    "copy-slowdown": s3("CopyObject", "SlowDown", "store_metadata"),
    "copy-500": s3("CopyObject", "InternalError", "store_metadata"),
    "head-after-copy-500": s3("HeadObject", "InternalError", "verify_metadata", 2),
    "upload-part-copy-500": s3("UploadPartCopy", "InternalError", "store_metadata", copy_limit=1),
    "complete-copy-slowdown": s3(
        "CompleteMultipartUpload", "SlowDown", "store_metadata", 2, copy_limit=1
    ),
    # DynamoDB: throughput on every state and audit write and on the state read
    "read-state-throughput": Case(Hook("dynamodb", Fault("GetItem", THROUGHPUT)), "read_state"),
    "mark-building-throttled": ddb("PutItem", THROTTLED, "mark_building", state_write("BUILDING")),
    "mark-built-throughput": ddb("PutItem", THROUGHPUT, "mark_built", state_write("BUILT")),
    "audit-created-throttled": ddb(
        "PutItem", THROTTLED, "audit_created", audit_write("BUNDLE_CREATED")
    ),
    "audit-delivered-throughput": ddb(
        "PutItem", THROUGHPUT, "audit_delivered", audit_write("BUNDLE_DELIVERED")
    ),
    "mark-delivered-throttled": ddb(
        "PutItem", THROTTLED, "mark_delivered", state_write("DELIVERED")
    ),
    # conditional-check races on the state transitions (the store's condition failing)
    "mark-building-race": ddb(
        "PutItem", RACE, "mark_building", state_write("BUILDING"), exit=REFUSED
    ),
    "mark-built-race": ddb(
        "PutItem", RACE, "mark_built", state_write("BUILT"), audited="ConcurrentTransition"
    ),
    "mark-delivered-race": ddb(
        "PutItem", RACE, "mark_delivered", state_write("DELIVERED"), audited="ConcurrentTransition"
    ),
    # a real rival takes the month over (a retry of BUILDING) just before this build's write
    "rival-before-built": Case(
        Hook("dynamodb", Fault("PutItem", "rival"), state_write("BUILT")),
        "mark_built",
        audited="ConcurrentTransition",
    ),
    "rival-before-delivered": Case(
        Hook("dynamodb", Fault("PutItem", "rival"), state_write("DELIVERED")),
        "mark_delivered",
        audited="ConcurrentTransition",
    ),
    # writes that landed but whose answer was lost: absorbed, the build delivers
    "mark-building-landed": ddb(
        "PutItem", RACE, "mark_building", state_write("BUILDING"), landed=True, exit=DELIVERED
    ),
    "mark-built-landed": ddb(
        "PutItem", RACE, "mark_built", state_write("BUILT"), landed=True, exit=DELIVERED
    ),
    "mark-delivered-landed": ddb(
        "PutItem", RACE, "mark_delivered", state_write("DELIVERED"), landed=True, exit=DELIVERED
    ),
    "mark-delivered-landed-500": ddb(
        "PutItem",
        "InternalServerError",
        "mark_delivered",
        state_write("DELIVERED"),
        landed=True,
        exit=DELIVERED,
    ),
    "audit-created-landed": ddb(
        "PutItem",
        RACE,
        "audit_created",
        audit_write("BUNDLE_CREATED"),
        landed=True,
        exit=DELIVERED,
    ),
    # EventBridge
    "put-events-500": Case(Hook("events", Fault("PutEvents", "InternalException")), "emit_event"),
    "put-events-throttled": Case(Hook("events", Fault("PutEvents", THROTTLED)), "emit_event"),
    "put-events-landed": Case(
        Hook("events", Fault("PutEvents", "InternalException"), landed=True), "emit_event"
    ),
    # KMS signs the manifest (a failing signer stands for KmsSigner's Sign call)
    "kms-internal": Case(None, "sign_manifest", kms_error="KMSInternalException"),
    "kms-timeout": Case(None, "sign_manifest", kms_error="DependencyTimeoutException"),
    # faults outside AWS: the task's disk, its own computation, ANALYTICS lagging behind
    "work-dir-missing": local("work_dir_missing", "work_dir", "FileNotFoundError"),
    "analytics-behind": local(
        "analytics_behind",
        "check_complete",
        "IncompleteMonth",
        reason=r"1 of 2 certified batches incomplete in ANALYTICS: \w{26}: no object "
        r"\(6 sanitized\)",
    ),
    "summary-fails": local("summary_fails", "summarize", "ComputeError"),
    "zip-entry-fails": local("zip_entry_fails", "write_zip", "OSError"),
    # a crash just before every write
    "crash-before-building": ddb("PutItem", CRASH, "mark_building", state_write("BUILDING")),
    "crash-before-create-upload": s3("CreateMultipartUpload", CRASH, "start_upload"),
    "crash-before-upload-part": s3("UploadPart", CRASH, "upload_part"),
    "crash-before-complete-upload": s3("CompleteMultipartUpload", CRASH, "complete_upload"),
    "crash-before-built": ddb("PutItem", CRASH, "mark_built", state_write("BUILT")),
    "crash-before-audit-created": ddb(
        "PutItem", CRASH, "audit_created", audit_write("BUNDLE_CREATED")
    ),
    "crash-before-copy": s3("CopyObject", CRASH, "store_metadata"),
    "crash-before-audit-delivered": ddb(
        "PutItem", CRASH, "audit_delivered", audit_write("BUNDLE_DELIVERED")
    ),
    "crash-before-put-events": Case(Hook("events", Fault("PutEvents", CRASH)), "emit_event"),
    "crash-before-delivered": ddb("PutItem", CRASH, "mark_delivered", state_write("DELIVERED")),
}


@dataclass
class World:
    """One moto per module: clients made once (the slow part), state reset per test."""

    mock: Any
    clients: dict[str, Any]
    signer: LocalSigner
    key_file: Path
    config: StackConfig
    work_dir: Path
    recorder: StateRecorder
    month: dict[str, bytes]  # the same objects in every test: the reference's month

    def provision(self) -> BundleStack:
        self.mock.reset()
        self.recorder.states.clear()
        s3, ddb, events, sqs = (self.clients[name] for name in ("s3", "dynamodb", "events", "sqs"))
        queue_url = provision_resources(s3, ddb, events, sqs)
        for key, body in self.month.items():
            bucket = BUCKETS["sanitized" if key.startswith("sanitized/") else "analytics"]
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        return BundleStack(s3, ddb, events, sqs, queue_url, self.signer, self.config, self.work_dir)

    def environ(self) -> dict[str, str]:
        return {
            "ANALYTICS_BUCKET": BUCKETS["analytics"],
            "SANITIZED_BUCKET": BUCKETS["sanitized"],
            "BUNDLES_BUCKET": BUCKETS["bundles"],
            "AUDIT_TABLE": "audit",
            "STACK_CONFIG": self.config.to_json(),
            "EVENT_BUS_NAME": EVENT_BUS,
            "SIGNING_KEY_FILE": str(self.key_file),
            "BUNDLE_WORK_DIR": str(self.work_dir),
        }


def _month(signer: LocalSigner) -> dict[str, bytes]:
    """Two batches on two days, the second re-sending two events of the first; certificates."""
    first = batch(8, datetime(2026, 10, 4, 9, tzinfo=UTC), seed=11)
    resent = first.head(2).get_column("event_id").to_list()
    second = batch(
        6,
        datetime(2026, 10, 19, 17, tzinfo=UTC),
        seed=12,
        event_ids=[*resent, *(f"00000000-0000-4000-8000-{i:012d}" for i in range(4))],
    )
    month = {}
    for data, quarantined in ((first, 1), (second, 0)):
        batch_id = str(data.get_column("batch_id")[0])
        day = int(data.get_column("received_at").dt.day()[0])
        body = parquet_bytes(data, analytics_metadata(data.height))
        month[analytics_key("acme", MONTH, day, batch_id)] = body
        month[certificate_key("acme", MONTH, batch_id)] = certificate(
            signer, "acme", MONTH, batch_id, quarantined, data.height
        )
    return month


@pytest.fixture(scope="module")
def world(dev_config: StackConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("bundle-faults")
    work_dir = directory / "work"
    work_dir.mkdir()
    signer = generate_local_key(directory / "key.pem", directory / "key.pub.pem")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            patch.setenv(name, value)
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        with mock_aws() as mock:
            clients = {
                name: boto3.client(name, region_name=REGION)
                for name in ("s3", "dynamodb", "events", "sqs")
            }
            recorder = StateRecorder(clients["dynamodb"])
            yield World(
                mock,
                clients,
                signer,
                directory / "key.pem",
                dev_config,
                work_dir,
                recorder,
                _month(signer),
            )


class KmsDown:
    """The signer with KMS failing: what ``KmsSigner.sign_digest`` raises when Sign fails."""

    def __init__(self, signer: LocalSigner, error: str) -> None:
        self._signer = signer
        self._error = error
        self.fired: list[tuple[str, int]] = []

    @property
    def key_id(self) -> str:
        return self._signer.key_id

    def sign_digest(self, digest: bytes) -> bytes:
        self.fired.append(("Sign", len(self.fired) + 1))
        raise Fault("Sign", self._error).exception()


@dataclass
class LocalFault:
    """A fault outside AWS: the calls it failed, the settings it changes, how it heals."""

    fired: list[tuple[str, int]] = field(default_factory=list)
    environ: dict[str, str] = field(default_factory=dict)
    heal: Callable[[], None] = lambda: None


def _work_dir_missing(world: World, stack: BundleStack, patch: pytest.MonkeyPatch) -> LocalFault:
    """The task's work directory is not there (a volume that did not mount)."""
    fault = LocalFault(environ={"BUNDLE_WORK_DIR": str(world.work_dir / "not-mounted")})
    real = tempfile.TemporaryDirectory

    def recording(*args: Any, **kwargs: Any) -> Any:
        fault.fired.append(("TemporaryDirectory", len(fault.fired) + 1))
        return real(*args, **kwargs)

    patch.setattr(bundle_builder.tempfile, "TemporaryDirectory", recording)
    return fault


def _analytics_behind(world: World, stack: BundleStack, patch: pytest.MonkeyPatch) -> LocalFault:
    """The second batch is certified, but analytics has not written it yet."""
    key = sorted(k for k in world.month if k.startswith("analytics/"))[-1]
    stack.s3.delete_object(Bucket=BUCKETS["analytics"], Key=key)

    def catch_up() -> None:
        stack.s3.put_object(Bucket=BUCKETS["analytics"], Key=key, Body=world.month[key])

    return LocalFault(fired=[("ANALYTICS", 1)], heal=catch_up)


def _summary_fails(world: World, stack: BundleStack, patch: pytest.MonkeyPatch) -> LocalFault:
    """The daily summary's computation raises (polars, inside ``summarize``)."""
    fault = LocalFault()

    def failing(*args: Any, **kwargs: Any) -> Any:
        fault.fired.append(("summarize_day", len(fault.fired) + 1))
        raise pl.exceptions.ComputeError("injected")

    patch.setattr(daily_summary, "_summarize_day", failing)
    return fault


def _zip_entry_fails(world: World, stack: BundleStack, patch: pytest.MonkeyPatch) -> LocalFault:
    """Copying the second file into the ZIP fails (a local read error), mid-upload."""
    fault = LocalFault()
    real = BundleZip.add_file

    def failing(self: BundleZip, *args: Any, **kwargs: Any) -> Any:
        if self.entries:  # the first entry is already in the upload's buffer
            fault.fired.append(("add_file", len(fault.fired) + 1))
            raise OSError("injected")
        return real(self, *args, **kwargs)

    patch.setattr(BundleZip, "add_file", failing)
    return fault


LOCAL_FAULTS: dict[str, Callable[[World, BundleStack, pytest.MonkeyPatch], LocalFault]] = {
    "work_dir_missing": _work_dir_missing,
    "analytics_behind": _analytics_behind,
    "summary_fails": _summary_fails,
    "zip_entry_fails": _zip_entry_fails,
}


def _run(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *,
    signer: Any = None,
    copy_limit: int | None = None,
    environ: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """``python -m ryuzen_bundle build`` for acme's month, with the world's clients."""
    monkeypatch.setattr(command_line, "make_client", lambda service, **_: world.clients[service])
    monkeypatch.setattr(command_line, "make_signer", lambda _settings: signer or world.signer)
    tuning = (
        BuildTuning
        if copy_limit is None
        else functools.partial(BuildTuning, copy_object_limit=copy_limit)
    )
    monkeypatch.setattr(command_line, "BuildTuning", tuning)
    code = command_line.main(
        ["build", "--partner", "acme", "--month", MONTH],
        environ={**world.environ(), **(environ or {})},
        now=lambda: NOW,
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, "stdout carries exactly one JSON line"
    return code, json.loads(lines[0])


def _without(detail: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in detail.items() if key not in names}


def _lifecycle(stack: BundleStack, kind: AuditEventType) -> list[dict[str, Any]]:
    return [dict(e.detail) for e in stack.audit_events() if e.event_type is kind]


def _final_state(stack: BundleStack, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The delivered month, with every digest checked against the object actually stored."""
    body = stack.bundle_bytes()
    sha256 = hashlib.sha256(body).hexdigest()
    head = stack.s3.head_object(Bucket=BUCKETS["bundles"], Key=KEY)
    assert head["Metadata"]["sha256"] == sha256
    archive = zipfile.ZipFile(io.BytesIO(body))
    entries = {name: archive.read(name) for name in archive.namelist()}
    statement = verify(entries.pop("manifest.dsse.json"), stack.signer.public_key_pem())
    assert statement.to_json_bytes() == entries["manifest.json"]
    state = stack.state()
    assert state is not None
    assert state.attributes["sha256"] == sha256 and state.attributes["checksum_verified"] is True
    created = _lifecycle(stack, AuditEventType.BUNDLE_CREATED)[-1]
    delivered = _lifecycle(stack, AuditEventType.BUNDLE_DELIVERED)[-1]
    assert created["sha256"] == delivered["sha256"] == sha256
    assert events[-1]["detail"]["sha256"] == sha256
    # The archive's digest and size are checked against the stored object, never against
    # another run: ECDSA signs with a fresh nonce, so the DER signature in
    # manifest.dsse.json is 70 to 72 bytes, now and then 69 — base64 four characters
    # shorter — and the same month's archive may differ by those bytes.
    details = (state.attributes, created, delivered, events[-1]["detail"])
    assert [detail["bytes"] for detail in details] == [len(body)] * len(details)
    return {
        "entries": entries,
        "state": state.state,
        "attributes": _without(state.attributes, "sha256", "checksum_sha256", "build_id", "bytes"),
        "created": _without(created, "sha256", "bytes"),
        "delivered": _without(delivered, "sha256", "checksum_sha256", "bytes"),
        "event": _without(events[-1]["detail"], "sha256", "bytes"),
    }


@pytest.fixture(scope="module")
def reference(world: World) -> dict[str, Any]:
    """The month after a build that never failed, on a fresh moto state."""
    stack = world.provision()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(command_line, "make_client", lambda service, **_: world.clients[service])
        patch.setattr(command_line, "make_signer", lambda _settings: world.signer)
        code = command_line.main(
            ["build", "--partner", "acme", "--month", MONTH],
            environ=world.environ(),
            now=lambda: NOW,
        )
    assert code == DELIVERED
    return _final_state(stack, stack.delivered_events())


def _reached(case: Case, installed: Installed | None, step: str) -> bool:
    """Whether the failed run completed ``step``'s write before failing."""
    if case.exit == DELIVERED:
        return True
    if case.step == step:
        return installed is not None and installed.hook.landed
    return STEPS.index(case.step) > STEPS.index(step)


def test_the_reference_is_a_delivered_month(reference: dict[str, Any]) -> None:
    assert reference["state"] is BundleState.DELIVERED
    assert reference["created"]["events"] == 12  # 14 sent, 2 re-sent
    assert reference["created"]["duplicates_removed"] == 2


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_rerun_after_a_fault_converges_to_the_clean_month(
    world: World,
    reference: dict[str, Any],
    case: Case,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a month of ANALYTICS and certificates, and one fault on the task's clients
    stack = world.provision()
    installed: Installed | None = None
    signer = None
    fault_patch = pytest.MonkeyPatch()
    fault: LocalFault | None = None
    if case.local is not None:
        fault = LOCAL_FAULTS[case.local](world, stack, fault_patch)
    elif case.hook is None:
        signer = KmsDown(world.signer, str(case.kms_error))
    else:
        hook = case.hook
        if hook.fault.error == "rival":  # another build takes the month over, for real
            hook = Hook(
                hook.client,
                Fault(hook.fault.operation),
                hook.where,
                rival=functools.partial(_rival_takes_over, stack),
            )
        installed = Installed(world.clients[hook.client], hook)

    # When the task runs
    try:
        with caplog.at_level(logging.INFO, logger="ryuzen-bundle"):
            code, summary = _run(
                world,
                monkeypatch,
                capsys,
                signer=signer,
                copy_limit=case.copy_limit,
                environ=fault.environ if fault is not None else None,
            )
    finally:
        if installed is not None:
            installed.remove()
        fault_patch.undo()
    if fault is not None:
        fired = fault.fired
    else:
        fired = signer.fired if signer is not None else installed.fired  # type: ignore[union-attr]

    # Then it failed (or was refused, or absorbed the fault) and said where, without a message
    assert fired, "the fault never fired: the case does not test anything"
    assert code == case.exit, summary
    errors = _lifecycle(stack, AuditEventType.ERROR)
    if case.exit == FAILED:
        error_type = case.audited or (installed.raised[0] if installed else "ClientError")
        if case.reason is not None:  # an incomplete month says which batches, and no more
            assert re.fullmatch(case.reason, summary.pop("reason"))
            assert all(re.fullmatch(case.reason, e.pop("reason")) for e in errors)
        assert summary == {
            "partner": "acme",
            "month": MONTH,
            "status": "failed",
            "step": case.step,
            "error": error_type,
        }
        assert errors == [{"step": case.step, "error": error_type, "bundle_key": KEY}]
        (line,) = [r for r in caplog.records if r.getMessage() == "bundle build failed"]
        assert (line.step, line.error) == (case.step, error_type)  # type: ignore[attr-defined]
        logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
        assert "injected" not in logged  # the errors' messages stay out of the log
    else:
        assert errors == []
    # ... the month never reads DELIVERED after a failure, and stopped where it failed
    state = stack.state()
    if case.exit != DELIVERED:
        if case.hook is not None and case.hook.fault.error == "rival":
            assert state is not None and state.state is BundleState.BUILDING  # the rival's
        elif _reached(case, installed, "mark_built"):
            assert state is not None and state.state is BundleState.BUILT
        elif _reached(case, installed, "mark_building"):
            assert state is not None and state.state is BundleState.BUILDING
        else:
            assert state is None
        assert bool(stack.bundle_keys()) is _reached(case, installed, "complete_upload")
        assert len(_lifecycle(stack, AuditEventType.BUNDLE_CREATED)) == int(
            _reached(case, installed, "audit_created")
        )
        assert len(_lifecycle(stack, AuditEventType.BUNDLE_DELIVERED)) == int(
            _reached(case, installed, "audit_delivered")
        )
    assert stack.open_uploads() == []

    # When the task runs again, clean (the schedule's retry, or an operator)
    if fault is not None:
        fault.heal()
    if case.exit != DELIVERED:
        code, summary = _run(world, monkeypatch, capsys)
        assert code == DELIVERED, summary

    # Then the state machine took no shortcut, and the month is the clean month
    _assert_legal_path(world.recorder.states)
    events = stack.delivered_events()
    assert len(events) == 1 + int(
        case.exit != DELIVERED and _reached(case, installed, "emit_event")
    )
    assert _final_state(stack, events) == reference


def _rival_takes_over(stack: BundleStack) -> None:
    """Another build of the month writes BUILDING (a legal retry) in between."""
    stack.states.transition("acme", MONTH, BundleState.BUILDING, attributes={"build_id": "rival"})


def _assert_legal_path(states: list[str]) -> None:
    """Every accepted write follows the state machine, and DELIVERED only ends it."""
    previous: BundleState | None = None
    for name in states:
        state = BundleState(name)
        assert state in ALLOWED[previous], f"{previous} -> {state} in {states}"
        previous = state
    assert states.count("DELIVERED") == 1 and states[-1] == "DELIVERED", states


def test_the_hooks_match_nested_parameters() -> None:
    item = {"pk": {"S": "x"}, "sk": {"S": "STATE#BUNDLE"}, "state": {"S": "BUILT"}}
    assert includes({"TableName": "audit", "Item": item}, state_write("BUILT"))
    assert not includes({"Item": item}, state_write("BUILDING"))
    assert not includes({"Item": item}, audit_write("BUNDLE_CREATED"))


def _builder_steps() -> set[str]:
    """Every name the build passes to ``step(...)``: in the builder's module and in every
    ``ryuzen_bundle`` module it imports (``s3_delivery`` names the upload's steps)."""
    sources = [bundle_builder.__file__]
    for node in ast.walk(ast.parse(_read(bundle_builder.__file__))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ryuzen_bundle."):
            sources.append(importlib.import_module(str(node.module)).__file__)
    names = set()
    for source in sources:
        for node in ast.walk(ast.parse(_read(source))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "step":
                (argument,) = node.args
                assert isinstance(argument, ast.Constant), (
                    f"a step without a literal name in {source}"
                )
                names.add(argument.value)
    return names


def _read(path: str | None) -> str:
    assert path is not None
    return Path(path).read_text(encoding="utf-8")


def test_every_step_the_builder_names_has_a_case() -> None:
    assert set(STEPS) == _builder_steps(), "STEPS must list exactly the builder's steps"
    assert len(STEPS) == len(set(STEPS))
    uncovered = [name for name in STEPS if name not in {case.step for case in CASES.values()}]
    assert uncovered == []
