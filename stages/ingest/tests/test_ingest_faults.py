"""Faults and crashes at every side effect of accepting a batch, as one table.

Ingest is synchronous: its "redelivery" is the client retrying the request (with the same
``Idempotency-Key`` when it sent one). Each case puts faults on the runtime's S3 and
DynamoDB clients through the shared harness (``ryuzen_contracts.fault_injection``). For
every case:

* the answer is 503 with ``Retry-After`` — what tells a client to retry — and nothing
  was claimed: no RAW object exists (or, where the fault is one ingest absorbs, the answer
  is 202 and the batch is stored once);
* the request's error log line names the step (``write_raw``, ``idempotency_start``,
  ``idempotency_release``); a failed RAW write is also one ``ERROR`` audit event naming the
  step and the error type, never a value. The store's failures are logged only: ingest
  writes no audit event per request on any other path, so an outage of a dependency is
  never amplified into audit writes;
* the client's retry converges: exactly one RAW object, whose lines are exactly the
  request's events with their partners (computed here from the request, not by ingest),
  ``accepted`` equal to the events stored — nothing lost, nothing duplicated.

Adding a fault is one line in CASES.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ryuzen_contracts.audit_log import AuditEventType, AuditLog
from ryuzen_contracts.fault_injection import CRASH, Fault, InjectedFaults, inject, remove
from ryuzen_ingest import ingest_handler

THROUGHPUT = "ProvisionedThroughputExceededException"
THROTTLED = "ThrottlingException"
AUDIT_TABLE = "ryuzen-test-audit"
CANARY = "CANARY-ingest-fault-payload"
PARTNERS = {"acme/": "acme", "nimbus-labs/": "nimbus-ai", "orbital/": "orbital"}


@dataclass(frozen=True)
class Case:
    faults: tuple[tuple[str, Fault], ...]  # (runtime client, fault)
    step: str  # the step the request's error log line names
    keyed: bool = False  # the request carries an Idempotency-Key
    status: int = 503  # the first answer
    audited: bool = True  # a failed RAW write: one ERROR audit event (step write_raw)
    locked: bool = False  # the store kept the in-progress record: 409 until it expires


def s3(code: str, step: str = "write_raw", **kwargs: Any) -> Case:
    return Case((("s3", Fault("PutObject", code)),), step, **kwargs)


def store(operation: str, code: str, step: str, **kwargs: Any) -> Case:
    kwargs.setdefault("keyed", True)
    kwargs.setdefault("audited", False)
    return Case((("dynamodb", Fault(operation, code)),), step, **kwargs)


CASES: dict[str, Case] = {
    # S3 refuses the RAW write
    "put-raw-slowdown": s3("SlowDown"),
    "put-raw-500": s3("InternalError"),
    "put-raw-slowdown-keyed": s3("SlowDown", keyed=True),
    "put-raw-500-keyed": s3("InternalError", keyed=True),
    "crash-before-put-raw": s3(CRASH),
    "crash-before-put-raw-keyed": s3(CRASH, keyed=True),
    # the idempotency store (DynamoDB)
    "idempotency-start-throughput": store("PutItem", THROUGHPUT, "idempotency_start"),
    "idempotency-start-throttled": store("PutItem", THROTTLED, "idempotency_start"),
    "crash-before-idempotency-start": store("PutItem", CRASH, "idempotency_start"),
    # a lost conditional-check race on the in-progress record: powertools reads it back,
    # finds none, and tries again
    "idempotency-start-race": store(
        "PutItem", "ConditionalCheckFailedException", "idempotency_start", status=202
    ),
    # the batch is stored but its answer cannot be remembered: the 202 stands
    "idempotency-complete-throughput": store(
        "UpdateItem", THROUGHPUT, "idempotency_complete", status=202, locked=True
    ),
    "crash-before-idempotency-complete": store(
        "UpdateItem", CRASH, "idempotency_complete", status=202, locked=True
    ),
    # two failures: the RAW write, then the store cannot release the in-progress record
    "put-raw-500-and-release-throttled": Case(
        (("s3", Fault("PutObject", "InternalError")), ("dynamodb", Fault("DeleteItem", THROTTLED))),
        "idempotency_release",
        keyed=True,
        locked=True,
    ),
    # two failures: the RAW write, then its ERROR audit event (logged, never raised)
    "put-raw-slowdown-and-audit-throttled": Case(
        (("s3", Fault("PutObject", "SlowDown")), ("dynamodb", Fault("PutItem", THROUGHPUT))),
        "write_raw",
        audited=False,
    ),
    "put-raw-500-and-crash-before-audit": Case(
        (("s3", Fault("PutObject", "InternalError")), ("dynamodb", Fault("PutItem", CRASH))),
        "write_raw",
        audited=False,
    ),
}


@dataclass
class ShortContext:
    """A Lambda context with little time left: the in-progress lock expires quickly."""

    millis: int = 300
    aws_request_id: str = "request-1"
    function_name: str = "ryuzen-ingest"

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def _raw(s3: Any) -> dict[str, list[dict[str, Any]]]:
    """Every RAW object's lines, parsed."""
    listing = s3.list_objects_v2(Bucket="ryuzen-test-raw")
    objects = {}
    for item in listing.get("Contents", []):
        body = s3.get_object(Bucket="ryuzen-test-raw", Key=item["Key"])["Body"].read()
        lines = gzip.decompress(body).decode().splitlines()
        objects[item["Key"]] = [json.loads(line) for line in lines]
    return objects


def _reference(events: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """What one RAW object must hold for ``events``: (partner, client, event), in order."""
    return [
        (
            next(p for prefix, p in PARTNERS.items() if event["model"]["id"].startswith(prefix)),
            "edge-gateway",
            event,
        )
        for event in events
    ]


def _errors(dynamodb: Any) -> list[dict[str, Any]]:
    since = datetime.now(UTC) - timedelta(minutes=5)
    return [
        dict(e.detail)
        for e in AuditLog(dynamodb, AUDIT_TABLE).system_events(since)
        if e.event_type is AuditEventType.ERROR
    ]


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_the_clients_retry_after_a_fault_converges_to_one_batch(
    case: Case,
    api_event: Callable[..., dict[str, Any]],
    runtime: ingest_handler.IngestRuntime,
    telemetry_events: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a good batch (its free text a canary), and the faults on the runtime's clients
    events = [*telemetry_events]
    events[0] = {**events[0], "attributes": {"note": CANARY}}
    headers = {"Idempotency-Key": "retry-me-0001"} if case.keyed else {}
    request = api_event(json.dumps(events), headers=headers)
    context = ShortContext()
    clients = {"s3": runtime.s3_client(), "dynamodb": runtime.dynamodb_client()}
    installed: list[tuple[Any, InjectedFaults]] = []
    for name, fault in case.faults:
        installed.append((clients[name], inject(clients[name], [fault])))

    # When the request arrives
    try:
        with caplog.at_level(logging.INFO, logger="ryuzen-ingest"):
            answer = ingest_handler.handle(request, context, runtime)
    finally:
        for client, faults in installed:
            remove(client, faults)

    # Then the client is told to retry (or the fault was absorbed), and nothing is claimed
    for _, faults in installed:
        assert faults.fired, "a fault never fired: the case does not test anything"
    assert answer["statusCode"] == case.status, answer["body"]
    raw = _raw(clients["s3"])
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert CANARY not in logged and "injected" not in logged
    if case.status == 503:
        assert answer["headers"]["Retry-After"] == "1"
        assert json.loads(answer["body"])["error"] == "unavailable"
        assert raw == {}
        (line,) = [r for r in caplog.records if r.getMessage() == "request not accepted"]
        assert line.step == case.step  # type: ignore[attr-defined]
    else:
        batch = json.loads(answer["body"])
        assert len(raw) == 1 and batch["accepted"] == len(events)
    errors = _errors(clients["dynamodb"])
    if case.audited:
        (error,) = errors
        injected = dict(case.faults)["s3"]
        assert {k: error[k] for k in ("step", "error", "error_code")} == {
            "step": "write_raw",
            "error": "RawWriteError",
            "error_code": "raw_write_failed",
        }
        expected_code = "SimulatedCrash" if injected.error == CRASH else injected.error
        assert error["s3_error_code"] == expected_code
        assert CANARY not in json.dumps(error)
    else:
        assert errors == []

    # When the client retries (the same request, the same Idempotency-Key)
    if case.locked:
        # the in-progress record outlived the failure: 409 + Retry-After until it expires
        early = ingest_handler.handle(request, context, runtime)
        assert early["statusCode"] == 409 and "Retry-After" in early["headers"]
    if case.status == 202:
        # The first answer stood: a client that got it does not retry. (One that lost it
        # and retries after the lock expired stores the batch again: see the README.)
        retry = answer
    else:
        if case.locked:
            time.sleep(context.millis / 1000 + 0.2)
        retry = ingest_handler.handle(request, context, runtime)

    # Then exactly one batch holds exactly the request's events: nothing lost or duplicated
    assert retry["statusCode"] == 202, retry["body"]
    (lines,) = _raw(clients["s3"]).values()
    stored = [(line["receipt"]["partner"], line["receipt"]["client_id"], line) for line in lines]
    assert [(p, c, line["event"]) for p, c, line in stored] == _reference(events)
    assert json.loads(retry["body"])["accepted"] == len(lines) == len(events)  # conservation
