"""Faults and crashes at every step of normalizing one SANITIZED object, as one table.

Each case makes one AWS call fail (an error botocore would raise once its retries are
exhausted) or "crashes" just before it, through the shared harness
(``ryuzen_contracts.fault_injection``). For every case: the message fails alone (it is
what goes back to the queue, then the DLQ), an ``ERROR`` audit event and the error log
line name the step (never a value), and a clean redelivery converges to exactly the state
of a run that never failed — computed independently from the pure normalization — with
every distinct event exactly once, in its receipt day. Adding a fault is one line in CASES.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from datetime import timedelta

import polars as pl
import pytest
from analytics_fixtures import MONTH, PARTNER, RECEIVED_AT, sanitized_frame, sanitized_row
from analytics_lambda_events import Context, notification, sqs_event
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from ryuzen_analytics import analytics_handler
from ryuzen_analytics.analytics_object import by_receipt_day
from ryuzen_analytics.normalize import normalize
from ryuzen_contracts.audit_log import AuditEventType
from ryuzen_contracts.fault_injection import CRASH, Fault, inject, remove
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import analytics_key

CANARY = "CANARY-analytics-fault-value"
THROTTLED = "ProvisionedThroughputExceededException"


@dataclass(frozen=True)
class Case:
    fault: Fault
    client: str  # which runtime client gets the fault: "s3" or "dynamodb"
    step: str  # the step the ERROR audit event (and log line) must name
    audit_fault: Fault | None = None  # the ERROR audit write fails too: the log must say it


# The calls normalizing the object below makes, in order: GetObject (SANITIZED); PutObject
# x2 (receipt day 27, then day 28); on a failure, PutItem (the ERROR audit event).
CASES = {
    "get-sanitized-slowdown": Case(Fault("GetObject", "SlowDown"), "s3", "read_sanitized"),
    "get-sanitized-500": Case(Fault("GetObject", "InternalError"), "s3", "read_sanitized"),
    "get-sanitized-slowdown-twice": Case(
        Fault("GetObject", "SlowDown", 1, 2), "s3", "read_sanitized"
    ),
    "put-first-day-slowdown": Case(Fault("PutObject", "SlowDown", 1), "s3", "write_analytics"),
    "put-first-day-500": Case(Fault("PutObject", "InternalError", 1), "s3", "write_analytics"),
    "put-second-day-slowdown": Case(Fault("PutObject", "SlowDown", 2), "s3", "write_analytics"),
    "put-second-day-500": Case(Fault("PutObject", "InternalError", 2), "s3", "write_analytics"),
    "crash-before-first-day": Case(Fault("PutObject", CRASH, 1), "s3", "write_analytics"),
    "crash-before-second-day": Case(Fault("PutObject", CRASH, 2), "s3", "write_analytics"),
    "put-500-and-error-audit-throttled": Case(
        Fault("PutObject", "InternalError", 2), "s3", "write_analytics", Fault("PutItem", THROTTLED)
    ),
    "get-500-and-error-audit-throttled": Case(
        Fault("GetObject", "InternalError"),
        "s3",
        "read_sanitized",
        Fault("PutItem", "ThrottlingException"),
    ),
}


@pytest.fixture
def handler_stack(stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    env = {
        "SANITIZED_BUCKET": "sanitized",
        "ANALYTICS_BUCKET": "analytics",
        "AUDIT_TABLE": "audit",
        "POWERTOOLS_SERVICE_NAME": "ryuzen-analytics",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    analytics_handler.reset_runtime()
    with caplog.at_level(logging.INFO, logger="ryuzen-analytics"):
        yield stack
    analytics_handler.reset_runtime()


def _sanitized(batch: str) -> pl.DataFrame:
    """Four rows over two receipt days of one month, one of them a duplicate event."""
    day_before = RECEIVED_AT - timedelta(days=1)
    first = sanitized_row(batch, day_before, error_message=CANARY, status="error")
    rows = [
        first,
        sanitized_row(batch, day_before),
        {**first},  # redelivered upstream: the same event_id twice
        sanitized_row(batch),
        sanitized_row(batch, model_id="acme/titan-small"),
    ]
    return sanitized_frame(rows)


def _deliver(key: str) -> list[str]:
    """One SQS message naming ``key``; the ids of the messages that go back to the queue.
    (powertools raises when every message of a batch failed: SQS then retries them all.)"""
    try:
        response = analytics_handler.lambda_handler(
            sqs_event(notification("sanitized", key)), Context()
        )
    except BatchProcessingError:
        return ["m0"]
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def _final_state(stack) -> dict[str, object]:
    return {
        key: stack.analytics(key).to_dicts()
        for key in stack.keys("analytics")  # every object, so a stray one shows
    }


def _reference_state(frame: pl.DataFrame, batch: str) -> dict[str, object]:
    """What a run that never failed writes, from the pure normalization (no S3)."""
    return {
        analytics_key(PARTNER, MONTH, day, batch): rows.to_dicts()
        for day, rows in by_receipt_day(normalize(frame))
    }


def _errors(stack) -> list[dict[str, object]]:
    return [
        dict(e.detail)
        for e in stack.audit.system_events(RECEIVED_AT.replace(year=2000))
        if e.event_type is AuditEventType.ERROR
    ]


def _failure_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "analytics failed"]


def test_a_clean_run_matches_the_reference(handler_stack) -> None:
    stack = handler_stack
    batch = new_ulid(RECEIVED_AT)
    frame = _sanitized(batch)
    key = stack.put_sanitized(frame, batch)

    assert _deliver(key) == []

    state = _final_state(stack)
    assert state == _reference_state(frame, batch)
    assert len(state) == 2 and _errors(stack) == []


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_redelivery_after_a_fault_converges_to_the_clean_state(
    handler_stack, case: Case, caplog: pytest.LogCaptureFixture
) -> None:
    stack = handler_stack
    batch = new_ulid(RECEIVED_AT)
    frame = _sanitized(batch)
    key = stack.put_sanitized(frame, batch)
    runtime = analytics_handler.runtime()
    client = runtime.s3 if case.client == "s3" else runtime.dynamodb

    # Given the fault, for as many deliveries as it fires
    faults = inject(client, [case.fault])
    audit_faults = inject(runtime.dynamodb, [case.audit_fault]) if case.audit_fault else None
    attempts = [_deliver(key) for _ in range(case.fault.times)]
    remove(client, faults)
    if audit_faults:
        remove(runtime.dynamodb, audit_faults)

    # Then each delivery failed alone, and said where (step and type, never a value)
    assert attempts == [["m0"]] * case.fault.times
    assert len(faults.fired) == case.fault.times, "the fault did not fire on every delivery"
    failures = _failure_logs(caplog)
    assert [(r.step, r.error_type) for r in failures] == [  # type: ignore[attr-defined]
        (case.step, _error_type(case.fault))
    ] * case.fault.times
    if audit_faults:
        assert audit_faults.fired, "the audit fault never fired"
        assert _errors(stack) == []
        assert [r.getMessage() for r in caplog.records].count(
            "could not write the ERROR audit event"
        ) == len(audit_faults.fired)
    else:
        assert (
            _errors(stack)
            == [{"step": case.step, "error": _error_type(case.fault), "sanitized_key": key}]
            * case.fault.times
        )
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert CANARY not in logged and CANARY not in json.dumps(_errors(stack))
    # SANITIZED is never touched: it stays until the month is delivered
    assert stack.keys("sanitized") == [key]

    # When the message is redelivered, clean
    assert _deliver(key) == []

    # Then the state is exactly that of a run that never failed
    state = _final_state(stack)
    assert state == _reference_state(frame, batch)
    # ... every distinct event exactly once, in the day partition of its receipt
    stored = pl.concat(
        [pl.read_parquet(io.BytesIO(stack.read("analytics", k))) for k in stack.keys("analytics")]
    )
    assert sorted(stored.get_column("event_id")) == sorted(frame.get_column("event_id").unique())
    for key_written in stack.keys("analytics"):
        days = stack.analytics(key_written).get_column("received_at").dt.day().unique()
        assert [f"day={day:02d}" in key_written for day in days] == [True]


def _error_type(fault: Fault) -> str:
    return "SimulatedCrash" if fault.error == CRASH else "ClientError"
