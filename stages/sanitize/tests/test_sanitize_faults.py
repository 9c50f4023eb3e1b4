"""Faults and crashes at every step of sanitizing one RAW object, as one table.

Each case makes one AWS call fail (an error botocore would raise once its retries are
exhausted) or "crashes" just before it, through the shared harness
(``ryuzen_contracts.fault_injection``). For every case: the message fails alone (it is
what goes back to the queue, then the DLQ), an ``ERROR`` audit event names the step, and
a clean redelivery converges to exactly the state of a run that never failed — every
partner's Parquet and certificate, the same quarantine records, one ``SCRUB_VIOLATION``
per partner, RAW deleted, conservation holding. Adding a fault is one line in CASES.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from raw_batches import RECEIVED_AT, event, raw_object
from ryuzen_contracts.attestation import verify
from ryuzen_contracts.audit_log import AuditEventType
from ryuzen_contracts.fault_injection import CRASH, Fault, inject, remove
from ryuzen_contracts.ids import new_ulid
from ryuzen_sanitize import sanitize_handler
from ryuzen_sanitize.sanitize_object import audit_id
from ryuzen_sanitize.transform import transform
from sanitize_lambda_events import Context, notification, sqs_event

EMAIL = "ops.person@example.net"


@dataclass(frozen=True)
class Case:
    fault: Fault
    client: str  # which runtime client gets the fault: "s3" or "dynamodb"
    step: str  # the step the ERROR audit event must name


# The calls sanitizing the object below makes, in order: GetObject (RAW); PutObject x5
# (quarantine, acme Parquet, acme certificate, nimbus-ai Parquet, nimbus-ai certificate);
# PutItem x2 (SCRUB_VIOLATION for acme, then nimbus-ai); DeleteObject (RAW).
CASES = {
    "get-raw-slowdown": Case(Fault("GetObject", "SlowDown"), "s3", "read_raw"),
    "get-raw-500": Case(Fault("GetObject", "InternalError"), "s3", "read_raw"),
    "put-quarantine-slowdown": Case(Fault("PutObject", "SlowDown", 1), "s3", "write_quarantine"),
    "put-parquet-500": Case(Fault("PutObject", "InternalError", 2), "s3", "write_sanitized"),
    "put-certificate-slowdown": Case(Fault("PutObject", "SlowDown", 3), "s3", "write_certificate"),
    "put-second-partner-500": Case(Fault("PutObject", "InternalError", 4), "s3", "write_sanitized"),
    "audit-throughput": Case(
        Fault("PutItem", "ProvisionedThroughputExceededException"),
        "dynamodb",
        "audit_scrub_violation",
    ),
    "audit-second-partner-throttled": Case(
        Fault("PutItem", "ThrottlingException", 2), "dynamodb", "audit_scrub_violation"
    ),
    "delete-raw-500": Case(Fault("DeleteObject", "InternalError"), "s3", "delete_raw"),
    "delete-raw-slowdown-twice": Case(Fault("DeleteObject", "SlowDown", 1, 2), "s3", "delete_raw"),
    **{
        f"crash-before-put-{number}": Case(Fault("PutObject", CRASH, number), "s3", step)
        for number, step in enumerate(
            [
                "write_quarantine",
                "write_sanitized",
                "write_certificate",
                "write_sanitized",
                "write_certificate",
            ],
            start=1,
        )
    },
    "crash-before-first-audit": Case(Fault("PutItem", CRASH), "dynamodb", "audit_scrub_violation"),
    "crash-before-second-audit": Case(
        Fault("PutItem", CRASH, 2), "dynamodb", "audit_scrub_violation"
    ),
    "crash-before-raw-delete": Case(Fault("DeleteObject", CRASH), "s3", "delete_raw"),
}


@pytest.fixture
def handler_stack(stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    env = {
        "RAW_BUCKET": "raw",
        "SANITIZED_BUCKET": "sanitized",
        "QUARANTINE_BUCKET": "quarantine",
        "AUDIT_TABLE": "audit",
        "STACK_CONFIG": stack.target.config.to_json(),
        "SIGNING_KEY_FILE": str(tmp_path / "key.pem"),  # written by make_stack
        "POWERTOOLS_SERVICE_NAME": "ryuzen-sanitize",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sanitize_handler.reset_runtime()
    yield stack
    sanitize_handler.reset_runtime()


def _raw_body(batch: str) -> bytes:
    noisy = event(outcome={"status": "error", "error_message": f"bounce for {EMAIL}"})
    return raw_object(
        [
            (noisy, "acme"),
            (event(), "acme"),
            (event("nimbus/cirrus-7b"), "nimbus-ai"),
            ('{"truncated": ', "nimbus-ai"),
        ],
        batch,
    )


def _final_state(stack) -> dict[str, object]:
    """Everything a redelivery must converge on (certificates by content, not bytes:
    each carries its own signing time)."""
    sanitized = {}
    for key in stack.keys("sanitized"):
        if key.endswith(".parquet"):
            sanitized[key] = stack.parquet(key).to_dicts()
        else:
            statement = verify(stack.read("sanitized", key), stack.public_key)
            sanitized[key] = (statement.subject, statement.predicate["counts"])
    audit = stack.audit.system_events(RECEIVED_AT.replace(year=2000))
    violations = [
        (e.event_id, e.partner, e.detail)
        for partner in ("acme", "nimbus-ai")
        for e in stack.audit.for_partner_month(partner, "2026-11")
        if e.event_type is AuditEventType.SCRUB_VIOLATION
    ]
    return {
        "raw": stack.keys("raw"),
        "sanitized": sanitized,
        "quarantine": {k: stack.read("quarantine", k) for k in stack.keys("quarantine")},
        "violations": sorted(violations, key=str),
        "errors": len([e for e in audit if e.event_type is AuditEventType.ERROR]),
    }


def _deliver(key: str) -> list[str]:
    """One SQS message naming ``key``; the ids of the messages that go back to the queue.
    (powertools raises when every message of a batch failed: SQS then retries them all.)"""
    try:
        response = sanitize_handler.lambda_handler(sqs_event(notification("raw", key)), Context())
    except BatchProcessingError:
        return ["m0"]
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def test_a_clean_run_matches_the_reference(handler_stack) -> None:
    stack = handler_stack
    batch = new_ulid(RECEIVED_AT)
    body = _raw_body(batch)
    key = stack.put_raw(body, batch)

    assert _deliver(key) == []

    state = _final_state(stack)
    assert state == _reference_state(body, key, stack)
    assert len(state["sanitized"]) == 4 and len(state["violations"]) == 2
    assert EMAIL not in json.dumps(state["sanitized"], default=str)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_redelivery_after_a_fault_converges_to_the_clean_state(handler_stack, case: Case) -> None:
    stack = handler_stack
    batch = new_ulid(RECEIVED_AT)
    body = _raw_body(batch)
    key = stack.put_raw(body, batch)
    runtime = sanitize_handler.runtime()
    client = runtime.s3 if case.client == "s3" else runtime.dynamodb

    faults = inject(client, [case.fault])
    first = _deliver(key)
    remove(client, faults)

    # the message fails alone, and an ERROR audit event names the step (never a value)
    assert first == ["m0"]
    assert faults.fired, "the fault never fired: the case does not test anything"
    errors = [
        e
        for e in stack.audit.system_events(RECEIVED_AT.replace(year=2000))
        if e.event_type is AuditEventType.ERROR
    ]
    assert [(e.detail["step"], e.detail["raw_key"]) for e in errors] == [(case.step, key)]
    assert EMAIL not in json.dumps([e.detail for e in errors])
    # RAW survives every failure: it is deleted last, and a failed delete deleted nothing
    assert stack.keys("raw") == [key]

    for _ in range(case.fault.times):  # a fault that fires N times needs N+1 deliveries
        assert _deliver(key) == []

    state = _final_state(stack)
    reference = _reference_state(body, key, stack)
    assert {**state, "errors": 0} == {**reference, "errors": 0}
    assert state["errors"] == 1
    frames = [
        pl.read_parquet(io.BytesIO(stack.read("sanitized", k)))
        for k in stack.keys("sanitized")
        if k.endswith(".parquet")
    ]
    quarantined = sum(
        verify(stack.read("sanitized", k), stack.public_key).predicate["counts"]["quarantined"]
        for k in stack.keys("sanitized")
        if k.endswith(".dsse.json")
    )
    assert sum(f.height for f in frames) + quarantined == 4  # conservation


def _reference_state(body: bytes, key: str, stack) -> dict[str, object]:
    """The final state of a run that never failed, computed from the pure transform."""
    result = transform(body, key, stack.target.config, stack.signer)
    sanitized: dict[str, object] = {}
    for output in result.partners:
        sanitized[output.parquet_key] = pl.read_parquet(io.BytesIO(output.parquet)).to_dicts()
        statement = verify(output.certificate, stack.public_key)
        sanitized[output.certificate_key] = (statement.subject, statement.predicate["counts"])
    violations = [
        (
            audit_id(result.batch_id, output.partner, "SCRUB_VIOLATION"),
            output.partner,
            {
                "batch_id": result.batch_id,
                "quarantined_by_reason": output.quarantined_by_reason,
                "quarantined_by_rule": output.quarantined_by_rule,
                "redactions_by_rule": output.redactions_by_rule,
            },
        )
        for output in result.partners
    ]
    return {
        "raw": [],
        "sanitized": sanitized,
        "quarantine": result.quarantine_objects,
        "violations": sorted(violations, key=str),
        "errors": 0,
    }
