"""Faults and crashes at every step of cleaning a delivered month, and of the sweep, as tables.

``BundleDelivered``: the handler gets the EventBridge event as AWS delivers it, with one
fault on its S3 or DynamoDB client (the shared harness's ``Fault``; ``cleanup_fault_hooks``
adds parameter filters, modeled errors, writes whose answer is lost and a real concurrent
run) or on its signer (KMS). For every case:

* the invocation fails (Lambda's asynchronous retries, then the DLQ) — or, where the
  fault is one the stage absorbs, cleans the month at once;
* one ``ERROR`` audit event of the partner-month and the error log line name the step and
  the error type, never a message;
* the bundle state is never written before the month is cleaned, and only ever
  ``DELIVERED → CLEANED``, once;
* a redelivered event converges on the state of a run that never failed, taken from a
  clean run on a fresh moto: exactly the same objects in every bucket (the month's
  working objects gone, every bystander kept), one ``TELEMETRY_DELETED`` keyed by the
  receipt, the state ``CLEANED`` naming it — and a receipt that counts what was deleted
  honestly (README "Crashes and honest counts"): the redelivery's receipt counts and
  digests exactly the objects it deleted, or is the receipt the failed run had already
  written, and every month object was deleted exactly once across the two runs.

The sweep's table does the same for the hourly retention sweep. Adding a fault is one line.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from cleanup_fixtures import (
    AUDIT_TABLE,
    BUCKETS,
    MONTH,
    PARTNER,
    CleanupStack,
    LambdaContext,
    delivered,
    eventbridge_event,
    fresh_stack,
)
from ryuzen_cleanup import cleanup_handler, sweep_handler
from ryuzen_cleanup.cleanup_settings import Clients, SweepSettings
from ryuzen_cleanup.delete_old_telemetry import clean_partner_month
from ryuzen_contracts.attestation import DELETION_PREDICATE, verify
from ryuzen_contracts.audit_log import AuditEventType
from ryuzen_contracts.bundle_state import BundleState
from ryuzen_contracts.fault_injection import CRASH, Fault, Hook, Installed, StateRecorder
from ryuzen_contracts.key_layout import (
    analytics_key,
    analytics_prefix,
    certificate_key,
    deletion_receipt_key,
    quarantine_key,
    raw_key,
    sanitized_key,
    sanitized_prefix,
)
from ryuzen_contracts.signing import LocalSigner
from ryuzen_contracts.stack_config import Partner, Retention, StackConfig

CONTEXT = LambdaContext("ryuzen-cleanup")
SWEEP_CONTEXT = LambdaContext("ryuzen-cleanup-sweep")
THROUGHPUT = "ProvisionedThroughputExceededException"
THROTTLED = "ThrottlingException"
RACE = "ConditionalCheckFailedException"
RETRIED, CLEANED = "retried", "CLEANED"
# Fixed batch ids: the reference and every case clean exactly the same keys.
BATCHES = ("01JDQ3ZK9M8X7V6T5S4R3Q2P1A", "01JDQ3ZK9M8X7V6T5S4R3Q2P1B")
MONTH_KEYS = {
    "sanitized": {
        key
        for batch in BATCHES
        for key in (sanitized_key(PARTNER, MONTH, batch), certificate_key(PARTNER, MONTH, batch))
    },
    "analytics": {analytics_key(PARTNER, MONTH, day, b) for b in BATCHES for day in (3, 17)},
}
RECEIPT = deletion_receipt_key(PARTNER, MONTH)


def audit_write(kind: str) -> dict[str, Any]:
    return {"Item": {"event_type": {"S": kind}}}


def state_write(state: str) -> dict[str, Any]:
    return {"Item": {"sk": {"S": "STATE#BUNDLE"}, "state": {"S": state}}}


ANALYTICS = {"Bucket": BUCKETS["analytics"], "Prefix": analytics_prefix(PARTNER, MONTH)}
SANITIZED = {"Bucket": BUCKETS["sanitized"], "Prefix": sanitized_prefix(PARTNER, MONTH)}


@dataclass(frozen=True)
class Case:
    hook: Hook | None  # None: the signer fails (KMS)
    step: str
    outcome: str = RETRIED
    audited: str | None = None  # the audited error type, when not the injected one's
    kms_error: str | None = None


def on(client: str, operation: str, code: str, step: str, **kwargs: Any) -> Case:
    where = kwargs.pop("where", {})
    landed = kwargs.pop("landed", False)
    hook = Hook(client, Fault(operation, code, kwargs.pop("call", 1)), where, landed=landed)
    return Case(hook, step, **kwargs)


CASES: dict[str, Case] = {
    # S3: listing and deleting each prefix, proving them empty, the receipt
    "list-analytics-slowdown": on("s3", "ListObjectsV2", "SlowDown", "delete_analytics",
                                  where=ANALYTICS),
    "delete-analytics-500": on("s3", "DeleteObjects", "InternalError", "delete_analytics",
                               where={"Bucket": BUCKETS["analytics"]}),
    "list-sanitized-500": on("s3", "ListObjectsV2", "InternalError", "delete_sanitized",
                             where=SANITIZED),
    "delete-sanitized-slowdown": on("s3", "DeleteObjects", "SlowDown", "delete_sanitized",
                                    where={"Bucket": BUCKETS["sanitized"]}),
    "prove-empty-slowdown": on("s3", "ListObjectsV2", "SlowDown", "prove_empty",
                               where={"MaxKeys": 1}),
    "read-receipt-500": on("s3", "GetObject", "InternalError", "read_receipt"),
    "write-receipt-slowdown": on("s3", "PutObject", "SlowDown", "write_receipt"),
    "write-receipt-lost-race": on("s3", "PutObject", "PreconditionFailed", "write_receipt",
                                  audited="ReceiptConflict"),
    "write-receipt-landed": on("s3", "PutObject", "InternalError", "write_receipt", landed=True),
    # DynamoDB: the state read, the audit event, the commit point
    "read-state-throughput": on("dynamodb", "GetItem", THROUGHPUT, "read_state"),
    "audit-deleted-throttled": on("dynamodb", "PutItem", THROTTLED, "audit_deleted",
                                  where=audit_write("TELEMETRY_DELETED")),
    "audit-deleted-landed": on("dynamodb", "PutItem", RACE, "audit_deleted", landed=True,
                               where=audit_write("TELEMETRY_DELETED"), outcome=CLEANED),
    "mark-cleaned-throughput": on("dynamodb", "PutItem", THROUGHPUT, "mark_cleaned",
                                  where=state_write("CLEANED")),
    "mark-cleaned-race": on("dynamodb", "PutItem", RACE, "mark_cleaned",
                            where=state_write("CLEANED"), audited="ConcurrentTransition"),
    "mark-cleaned-landed": on("dynamodb", "PutItem", RACE, "mark_cleaned", landed=True,
                              where=state_write("CLEANED"), outcome=CLEANED),
    "mark-cleaned-landed-500": on("dynamodb", "PutItem", "InternalServerError", "mark_cleaned",
                                  landed=True, where=state_write("CLEANED"), outcome=CLEANED),
    # a second delivery of the same event runs to the end just before this one commits
    "concurrent-delivery": on("dynamodb", "PutItem", "rival", "mark_cleaned",
                              where=state_write("CLEANED"), outcome=CLEANED),
    # KMS signs the receipt (a failing signer stands for KmsSigner's Sign call)
    "kms-internal": Case(None, "sign_receipt", kms_error="KMSInternalException"),
    "kms-unavailable": Case(None, "sign_receipt", kms_error="KMSInvalidStateException"),
    # a crash just before every write
    "crash-before-delete-analytics": on("s3", "DeleteObjects", CRASH, "delete_analytics",
                                        where={"Bucket": BUCKETS["analytics"]}),
    "crash-before-delete-sanitized": on("s3", "DeleteObjects", CRASH, "delete_sanitized",
                                        where={"Bucket": BUCKETS["sanitized"]}),
    "crash-before-receipt": on("s3", "PutObject", CRASH, "write_receipt"),
    "crash-before-audit-deleted": on("dynamodb", "PutItem", CRASH, "audit_deleted",
                                     where=audit_write("TELEMETRY_DELETED")),
    "crash-before-cleaned": on("dynamodb", "PutItem", CRASH, "mark_cleaned",
                               where=state_write("CLEANED")),
}  # fmt: skip


class KmsDown:
    """The signer with KMS failing: what ``KmsSigner.sign_digest`` raises when Sign fails."""

    def __init__(self, signer: LocalSigner, error: str) -> None:
        self._signer = signer
        self._error = error
        self.fired: list[tuple[str, int]] = []
        self.healthy = False  # KMS is back: Sign works again

    @property
    def key_id(self) -> str:
        return self._signer.key_id

    def sign_digest(self, digest: bytes) -> bytes:
        if self.healthy:
            return self._signer.sign_digest(digest)
        self.fired.append(("Sign", len(self.fired) + 1))
        raise Fault("Sign", self._error).exception()


def _put_month(stack: CleanupStack) -> dict[str, set[str]]:
    """The month's working objects (fixed keys), a delivered bundle state, and bystanders."""
    stack.move_to(BundleState.DELIVERED)
    for role, keys in MONTH_KEYS.items():
        for key in keys:
            stack.put(role, key, key.encode())
    return stack.put_bystanders()


def _contents(stack: CleanupStack) -> dict[str, set[str]]:
    return {role: stack.keys(role) for role in BUCKETS}


@pytest.fixture
def handler(
    stack: CleanupStack, key_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[CleanupStack]:
    """The stage's environment, its runtime built over the test's moto clients."""
    for name, value in {
        "SANITIZED_BUCKET": BUCKETS["sanitized"],
        "ANALYTICS_BUCKET": BUCKETS["analytics"],
        "BUNDLES_BUCKET": BUCKETS["bundles"],
        "AUDIT_TABLE": AUDIT_TABLE,
        "SIGNING_KEY_FILE": str(key_files[0]),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SIGNING_KMS_KEY_ID", raising=False)
    monkeypatch.setattr(
        cleanup_handler.Clients, "from_environment", lambda: Clients(stack.s3, stack.ddb)
    )
    cleanup_handler.reset_runtime()
    yield stack
    cleanup_handler.reset_runtime()


def _deliver() -> str:
    """Invoke the handler as EventBridge does; what Lambda makes of the outcome."""
    try:
        result = cleanup_handler.lambda_handler(eventbridge_event(), CONTEXT)
    except Exception:
        return RETRIED  # Lambda's asynchronous retries, then the function's DLQ
    return str(result["outcome"])


def _final_state(stack: CleanupStack) -> dict[str, Any]:
    """The cleaned month: every bucket's keys, the receipt's facts, the audit and the state."""
    envelope = stack.receipt_bytes()
    predicate = verify(envelope, stack.signer.public_key_pem(), predicate_type=DELETION_PREDICATE)
    receipt_sha256 = hashlib.sha256(envelope).hexdigest()
    (deleted_event,) = [
        e for e in stack.events() if e.event_type is AuditEventType.TELEMETRY_DELETED
    ]
    assert deleted_event.event_id == deleted_event.detail["receipt_sha256"] == receipt_sha256
    state = stack.states.get(PARTNER, MONTH)
    assert state is not None and state.attributes["receipt_sha256"] == receipt_sha256
    facts = dict(predicate.predicate)
    facts.pop("deleted_at")
    return {
        "contents": _contents(stack),
        "receipt": facts,
        "audit": {k: v for k, v in deleted_event.detail.items() if k != "receipt_sha256"},
        "state": state.state,
    }


@pytest.fixture(scope="module")
def reference(moto_aws: tuple[Any, Any, Any], signer: LocalSigner) -> dict[str, Any]:
    """The month after a delivery that never failed, on a fresh moto state."""
    stack = fresh_stack(moto_aws, signer)
    bystanders = _put_month(stack)
    report = clean_partner_month(stack.services(), stack.target, delivered())
    assert report.outcome.value == CLEANED
    return {"bystanders": bystanders, **_final_state(stack)}


def test_the_reference_cleaned_exactly_the_month(reference: dict[str, Any]) -> None:
    expected = {role: set(keys) for role, keys in reference["bystanders"].items()}
    expected["bundles"] = {*expected["bundles"], RECEIPT}
    assert {role: keys for role, keys in reference["contents"].items() if keys} == expected
    assert reference["receipt"]["objects_deleted_total"] == 8
    assert reference["state"] is BundleState.CLEANED


def _rival_delivery(stack: CleanupStack) -> None:
    """The same event, delivered twice, runs to its end in between."""
    clean_partner_month(stack.services(), stack.target, delivered())


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_redelivered_event_converges_to_the_clean_month(
    handler: CleanupStack,
    reference: dict[str, Any],
    case: Case,
    signer: LocalSigner,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    # Given a delivered month with its working objects, and one fault
    stack = handler
    bystanders = _put_month(stack)
    recorder = StateRecorder(stack.ddb)
    request.addfinalizer(recorder.remove)
    installed: Installed | None = None
    kms: KmsDown | None = None
    if case.hook is None:
        kms = KmsDown(signer, str(case.kms_error))
        monkeypatch.setattr(cleanup_handler, "make_signer", lambda _settings: kms)
    else:
        hook = case.hook
        if hook.fault.error == "rival":
            rival = functools.partial(_rival_delivery, stack)
            hook = Hook(hook.client, Fault(hook.fault.operation), hook.where, rival=rival)
        client = {"s3": stack.s3, "dynamodb": stack.ddb}[hook.client]
        installed = Installed(client, hook)
    assert cleanup_handler.runtime().s3 is stack.s3  # the fault is on the stage's client

    # When the event is delivered
    try:
        with caplog.at_level(logging.INFO, logger="ryuzen-cleanup"):
            outcome = _deliver()
    finally:
        if installed is not None:
            installed.remove()
        if kms is not None:
            kms.healthy = True
    fired = kms.fired if kms is not None else installed.fired  # type: ignore[union-attr]

    # Then it fails (or absorbs the fault), and says where: step and type, never a message
    assert fired, "the fault never fired: the case does not test anything"
    assert outcome == case.outcome
    errors = [dict(e.detail) for e in stack.events() if e.event_type is AuditEventType.ERROR]
    if case.outcome == RETRIED:
        error = case.audited or (installed.raised[0] if installed else "ClientError")
        assert errors == [{"step": case.step, "error": error}]
        (line,) = [r for r in caplog.records if r.getMessage() == "cleanup failed"]
        assert (line.step, line.error) == (case.step, error)  # type: ignore[attr-defined]
        logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
        assert "injected" not in logged and "://" not in logged
        state = stack.states.get(PARTNER, MONTH)
        assert state is not None and state.state is BundleState.DELIVERED
    else:
        assert errors == []
    left = _contents(stack)
    receipt_after_failure = stack.receipt_bytes() if RECEIPT in left["bundles"] else None
    # nothing but the month's working objects (and the receipt) is ever touched
    for role, keys in bystanders.items():
        assert keys <= left[role]

    # When the event is delivered again (Lambda's retry)
    if case.outcome == RETRIED:
        assert _deliver() == CLEANED

    # Then the month is exactly the clean month: the same objects everywhere...
    state = _final_state(stack)
    assert state["state"] is reference["state"] is BundleState.CLEANED
    assert recorder.states == ["CLEANED"]  # DELIVERED -> CLEANED, once, nothing skipped
    expected_contents = {role: set() for role in BUCKETS} | bystanders
    expected_contents["bundles"] = expected_contents["bundles"] | {RECEIPT}
    assert state["contents"] == expected_contents
    # ...and a receipt that counts honestly: the receipt the failed run had written before
    # it failed (kept, byte for byte), or one counting exactly what the redelivery deleted
    if receipt_after_failure is not None:
        assert stack.receipt_bytes() == receipt_after_failure
        assert state["receipt"] == reference["receipt"]
    else:
        remaining = {role: MONTH_KEYS[role] & left[role] for role in MONTH_KEYS}
        assert state["receipt"] == _honest_receipt(reference["receipt"], remaining)
    assert state["audit"] == {
        **reference["audit"],
        "objects_deleted": {
            role: state["receipt"]["objects_deleted"][BUCKETS[role]] for role in MONTH_KEYS
        },
        "objects_deleted_total": state["receipt"]["objects_deleted_total"],
        "deleted_keys_sha256": state["receipt"]["deleted_keys_sha256"],
        "already_empty": state["receipt"]["already_empty"],
    }


def _honest_receipt(reference: dict[str, Any], remaining: dict[str, set[str]]) -> dict[str, Any]:
    """The receipt of a run that deleted exactly ``remaining`` (computed here, not by the stage)."""
    keys = sorted(remaining["analytics"] | remaining["sanitized"])
    by_bucket = {BUCKETS[role]: len(keys) for role, keys in remaining.items()}
    return {
        **reference,
        "objects_deleted": dict(sorted(by_bucket.items())),
        "objects_deleted_total": len(keys),
        "deleted_keys_sha256": hashlib.sha256("\n".join(keys).encode()).hexdigest(),
        "already_empty": not keys,
    }


def test_the_reference_digest_is_the_sorted_month_keys(reference: dict[str, Any]) -> None:
    everything = {role: set(keys) for role, keys in MONTH_KEYS.items()}
    assert _honest_receipt(reference["receipt"], everything) == reference["receipt"]


# --- the hourly retention sweep -----------------------------------------------------------

RAW_HOURS, QUARANTINE_DAYS = 2, 14


@dataclass(frozen=True)
class SweepCase:
    hook: Hook
    step: str


def sweep_on(client: str, operation: str, code: str, step: str, **where: Any) -> SweepCase:
    return SweepCase(Hook(client, Fault(operation, code), where), step)


SWEEP_CASES: dict[str, SweepCase] = {
    "list-raw-slowdown": sweep_on("s3", "ListObjectsV2", "SlowDown", "list_raw",
                                  Bucket=BUCKETS["raw"]),
    "audit-straggler-throughput": sweep_on("dynamodb", "PutItem", THROUGHPUT,
                                           "audit_raw_straggler", **audit_write("ERROR")),
    "delete-raw-500": sweep_on("s3", "DeleteObjects", "InternalError", "delete_raw",
                               Bucket=BUCKETS["raw"]),
    "list-quarantine-500": sweep_on("s3", "ListObjectsV2", "InternalError", "list_quarantine",
                                    Bucket=BUCKETS["quarantine"]),
    "delete-quarantine-slowdown": sweep_on("s3", "DeleteObjects", "SlowDown",
                                           "delete_quarantine", Bucket=BUCKETS["quarantine"]),
    "list-working-500": sweep_on("s3", "ListObjectsV2", "InternalError", "list_working",
                                 Bucket=BUCKETS["analytics"]),
    "audit-sweep-throttled": sweep_on("dynamodb", "PutItem", THROTTLED, "audit_sweep",
                                      **audit_write("RETENTION_SWEEP")),
    "crash-before-straggler-audit": sweep_on("dynamodb", "PutItem", CRASH,
                                             "audit_raw_straggler", **audit_write("ERROR")),
    "crash-before-delete-raw": sweep_on("s3", "DeleteObjects", CRASH, "delete_raw",
                                        Bucket=BUCKETS["raw"]),
    "crash-before-delete-quarantine": sweep_on("s3", "DeleteObjects", CRASH,
                                               "delete_quarantine", Bucket=BUCKETS["quarantine"]),
    "crash-before-sweep-audit": sweep_on("dynamodb", "PutItem", CRASH, "audit_sweep",
                                         **audit_write("RETENTION_SWEEP")),
}  # fmt: skip


def _put_aged(stack: CleanupStack, role: str, key: str, age: timedelta, now: datetime) -> str:
    """Put ``key`` as if written ``age`` ago (moto stamps LastModified with its own clock)."""
    with mock.patch("moto.s3.models.utcnow", return_value=(now - age).replace(tzinfo=None)):
        stack.put(role, key)
    return key


@pytest.mark.parametrize("case", list(SWEEP_CASES.values()), ids=list(SWEEP_CASES))
def test_the_next_sweep_after_a_fault_converges(
    stack: CleanupStack,
    case: SweepCase,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given old and young RAW and quarantine objects
    now = datetime.now(UTC)
    old_raw = {
        _put_aged(stack, "raw", raw_key(now - timedelta(hours=h), batch), timedelta(hours=h), now)
        for h, batch in ((3, "01JDQ3ZK9M8X7V6T5S4R3Q2P2A"), (30, "01JDQ3ZK9M8X7V6T5S4R3Q2P2B"))
    }
    young_raw = {_put_aged(stack, "raw", raw_key(now, BATCHES[0]), timedelta(minutes=5), now)}
    old_quarantine = {
        _put_aged(stack, "quarantine", quarantine_key(now.date(), BATCHES[1]),
                  timedelta(days=QUARANTINE_DAYS + 1), now)
    }  # fmt: skip
    young_quarantine = {
        _put_aged(stack, "quarantine", quarantine_key(now.date(), BATCHES[0]),
                  timedelta(days=1), now)
    }  # fmt: skip
    settings = SweepSettings.from_environ(
        {
            "RAW_BUCKET": BUCKETS["raw"],
            "QUARANTINE_BUCKET": BUCKETS["quarantine"],
            "SANITIZED_BUCKET": BUCKETS["sanitized"],
            "ANALYTICS_BUCKET": BUCKETS["analytics"],
            "AUDIT_TABLE": AUDIT_TABLE,
            "STACK_CONFIG": StackConfig(
                partners=[Partner(id="acme", model_prefixes=["acme/"])],
                retention=Retention(raw_hours=RAW_HOURS, quarantine_days=QUARANTINE_DAYS),
            ).to_json(),
        }
    )
    monkeypatch.setattr(sweep_handler, "runtime", lambda: (Clients(stack.s3, stack.ddb), settings))
    client = {"s3": stack.s3, "dynamodb": stack.ddb}[case.hook.client]
    installed = Installed(client, case.hook)

    # When the scheduled sweep runs
    try:
        with caplog.at_level(logging.INFO, logger="ryuzen-cleanup"):
            sweep_handler.lambda_handler({}, SWEEP_CONTEXT)
    except Exception:
        failed = True
    else:
        failed = False
    finally:
        installed.remove()
    assert failed, "the sweep must fail so the schedule's next run (and the alarm) see it"

    # Then it failed, and an ERROR (SYSTEM) and the log line name the step, no message
    assert installed.fired, "the fault never fired: the case does not test anything"
    failures = [d for d in _system_errors(stack) if "step" in d]
    assert failures == [{"step": case.step, "error": installed.raised[0]}]
    (line,) = [r for r in caplog.records if r.getMessage() == "retention sweep failed"]
    assert line.step == case.step  # type: ignore[attr-defined]
    assert "injected" not in "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    left_raw, left_quarantine = stack.keys("raw"), stack.keys("quarantine")

    # When the next sweep runs, clean
    report = sweep_handler.lambda_handler({}, SWEEP_CONTEXT)

    # Then exactly the old objects are gone, the young ones kept
    assert stack.keys("raw") == young_raw and stack.keys("quarantine") == young_quarantine
    # ... this sweep counted what it deleted (a failed sweep writes no summary)
    assert report["raw_deleted"] == len(old_raw & left_raw)
    assert report["quarantine_deleted"] == len(old_quarantine & left_quarantine)
    # ... and every old RAW object was reported as an ERROR before it went: at least once,
    # at most once per sweep that saw it (audited before the delete, by design)
    stragglers = [d["raw_key"] for d in _system_errors(stack) if "raw_key" in d]
    assert set(stragglers) == old_raw
    assert all(1 <= stragglers.count(key) <= 2 for key in old_raw)


def _system_errors(stack: CleanupStack) -> list[dict[str, Any]]:
    since = datetime.now(UTC) - timedelta(hours=1)
    return [
        dict(e.detail)
        for e in stack.audit.system_events(since)
        if e.event_type is AuditEventType.ERROR
    ]
