"""The retention sweep against objects of chosen ages (moto's clock is set at put time)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from cleanup_fixtures import AUDIT_TABLE, BUCKETS, CleanupStack, LambdaContext
from ryuzen_cleanup import sweep_handler
from ryuzen_cleanup.cleanup_settings import Clients, SweepSettings
from ryuzen_cleanup.retention_sweep import STALE_AFTER, sweep
from ryuzen_contracts.audit_log import AuditEventType
from ryuzen_contracts.key_layout import (
    analytics_key,
    certificate_key,
    quarantine_key,
    quarantine_raw_key,
    raw_key,
    sanitized_key,
)
from ryuzen_contracts.settings import SettingsError
from ryuzen_contracts.stack_config import Partner, Retention, StackConfig

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BATCHES = iter(f"01JDQ3ZK9M8X7V6T5S4R3Q{n:04d}" for n in range(1000, 10_000))


def config(raw_hours: int = 2, quarantine_days: int = 14) -> str:
    return StackConfig(
        partners=[Partner(id="acme", model_prefixes=["acme/"])],
        retention=Retention(raw_hours=raw_hours, quarantine_days=quarantine_days),
    ).to_json()


def settings(*, working: bool = True, **retention: int) -> SweepSettings:
    environment = {
        "RAW_BUCKET": BUCKETS["raw"],
        "QUARANTINE_BUCKET": BUCKETS["quarantine"],
        "AUDIT_TABLE": AUDIT_TABLE,
        "STACK_CONFIG": config(**retention),
    }
    if working:
        environment |= {
            "SANITIZED_BUCKET": BUCKETS["sanitized"],
            "ANALYTICS_BUCKET": BUCKETS["analytics"],
        }
    return SweepSettings.from_environ(environment)


def put_aged(stack: CleanupStack, role: str, key: str, age: timedelta) -> str:
    """Put ``key`` as if it had been written ``age`` before NOW.

    moto stamps LastModified with ``moto.s3.models.utcnow`` (naive UTC) when the object is
    put; setting that clock for the one call places the object at a chosen age without
    sleeping. If moto ever renames it, ``mock.patch`` fails loudly here.
    """
    with mock.patch("moto.s3.models.utcnow", return_value=(NOW - age).replace(tzinfo=None)):
        stack.put(role, key)
    return key


def raw(stack: CleanupStack, age: timedelta) -> str:
    written = NOW - age
    return put_aged(stack, "raw", raw_key(written, next(BATCHES)), age)


def errors(stack: CleanupStack) -> list[Any]:
    return [
        event
        for event in stack.audit.system_events(NOW - timedelta(days=1))
        if event.event_type is AuditEventType.ERROR
    ]


def test_raw_older_than_the_retention_hours_goes_and_each_is_an_error(
    stack: CleanupStack,
) -> None:
    # Given RAW objects either side of a 2-hour retention...
    young = {raw(stack, timedelta(minutes=5)), raw(stack, timedelta(hours=1, minutes=59))}
    old = {raw(stack, timedelta(hours=2, minutes=1)), raw(stack, timedelta(days=3))}

    report = sweep(Clients(stack.s3, stack.ddb), settings(raw_hours=2), NOW)

    # ...the old ones are deleted, each an ERROR naming its key (and only its key).
    assert report.raw_deleted == 2
    assert stack.keys("raw") == young
    found = errors(stack)
    assert {event.detail["raw_key"] for event in found} == old
    assert {event.detail["error"] for event in found} == {"raw_retention_exceeded"}
    assert sorted(event.detail["age_minutes"] for event in found) == [121, 3 * 24 * 60]
    assert all(set(event.detail) == {"error", "raw_key", "age_minutes"} for event in found)


def test_quarantine_older_than_the_retention_days_goes_quietly(stack: CleanupStack) -> None:
    day = NOW.date()
    kept = {
        put_aged(stack, "quarantine", quarantine_key(day, next(BATCHES)), timedelta(days=13)),
        put_aged(stack, "quarantine", quarantine_key(day, next(BATCHES)), timedelta(hours=1)),
    }
    put_aged(stack, "quarantine", quarantine_key(day, next(BATCHES)), timedelta(days=15))
    put_aged(stack, "quarantine", quarantine_raw_key(day, next(BATCHES)), timedelta(days=20))

    report = sweep(Clients(stack.s3, stack.ddb), settings(quarantine_days=14), NOW)

    assert report.quarantine_deleted == 2
    assert report.raw_deleted == 0
    assert stack.keys("quarantine") == kept
    assert errors(stack) == []  # quarantine expiring is the plan, not a failure


def test_a_sweep_is_summarized_in_the_audit_trail(stack: CleanupStack) -> None:
    raw(stack, timedelta(hours=5))
    put_aged(stack, "quarantine", quarantine_key(NOW.date(), next(BATCHES)), timedelta(days=30))

    report = sweep(Clients(stack.s3, stack.ddb), settings(), NOW)

    (summary,) = [
        event
        for event in stack.audit.system_events(NOW - timedelta(days=1))
        if event.event_type is AuditEventType.RETENTION_SWEEP
    ]
    assert summary.detail == report.as_dict()
    assert report.as_dict() == {
        "raw_deleted": 1,
        "quarantine_deleted": 1,
        "raw_retention_hours": 2,
        "quarantine_retention_days": 14,
        "stale_working_months": 0,
    }


def test_a_sweep_with_nothing_to_do_records_nothing(stack: CleanupStack) -> None:
    young = raw(stack, timedelta(minutes=1))

    report = sweep(Clients(stack.s3, stack.ddb), settings(), NOW)

    assert (report.raw_deleted, report.quarantine_deleted) == (0, 0)
    assert stack.keys("raw") == {young}
    assert stack.audit.system_events(NOW - timedelta(days=1)) == []


def test_an_old_object_that_is_no_raw_batch_goes_without_its_key(stack: CleanupStack) -> None:
    put_aged(stack, "raw", "uploads/https://example.com/x", timedelta(days=1))

    sweep(Clients(stack.s3, stack.ddb), settings(), NOW)

    assert stack.keys("raw") == set()
    (error,) = errors(stack)
    assert error.detail["error"] == "unexpected_raw_object"
    assert error.detail["raw_key"] is None


def test_working_buckets_other_than_raw_and_quarantine_are_never_swept(
    stack: CleanupStack,
) -> None:
    untouched = {
        role: put_aged(stack, role, f"{role}/ancient.bin", timedelta(days=365))
        for role in ("sanitized", "analytics", "bundles")
    }

    sweep(Clients(stack.s3, stack.ddb), settings(), NOW)

    assert {role: stack.keys(role) for role in untouched} == {
        role: {key} for role, key in untouched.items()
    }


def test_a_naive_now_is_refused(stack: CleanupStack) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sweep(Clients(stack.s3, stack.ddb), settings(), NOW.replace(tzinfo=None))


def test_the_scheduled_lambda_sweeps_and_returns_its_counts(
    stack: CleanupStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "RAW_BUCKET": BUCKETS["raw"],
        "QUARANTINE_BUCKET": BUCKETS["quarantine"],
        "AUDIT_TABLE": AUDIT_TABLE,
        "STACK_CONFIG": config(),
    }.items():
        monkeypatch.setenv(name, value)
    sweep_handler.reset_runtime()
    # The Lambda reads the real clock: a straggler from a day before it.
    age = datetime.now(UTC) - NOW + timedelta(days=1)
    put_aged(stack, "raw", raw_key(NOW - timedelta(days=1), next(BATCHES)), age)

    try:
        result = sweep_handler.lambda_handler(
            {"source": "aws.scheduler"}, LambdaContext("ryuzen-cleanup-sweep")
        )
    finally:
        sweep_handler.reset_runtime()

    assert result["raw_deleted"] == 1
    assert stack.keys("raw") == set()
    assert result["stale_working_months"] == 0  # its working buckets are not set here


def test_the_scheduled_lambda_logs_the_stale_working_months(
    stack: CleanupStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The line the stack's StaleWorkingMonths metric filter reads (infra monitoring).
    for name, value in {
        "RAW_BUCKET": BUCKETS["raw"],
        "QUARANTINE_BUCKET": BUCKETS["quarantine"],
        "SANITIZED_BUCKET": BUCKETS["sanitized"],
        "ANALYTICS_BUCKET": BUCKETS["analytics"],
        "AUDIT_TABLE": AUDIT_TABLE,
        "STACK_CONFIG": config(),
    }.items():
        monkeypatch.setenv(name, value)
    sweep_handler.reset_runtime()
    stack.put("analytics", analytics_key("acme", "2025-01", 5, next(BATCHES)))
    handler = sweep_handler.logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        result = sweep_handler.lambda_handler(
            {"source": "aws.scheduler"}, LambdaContext("ryuzen-cleanup-sweep")
        )
    finally:
        handler.setStream(previous)
        sweep_handler.reset_runtime()

    assert result["stale_working_months"] == 1
    (line,) = [
        json.loads(text)
        for text in buffer.getvalue().splitlines()
        if '"retention sweep done"' in text
    ]
    assert (line["stale_working_months"], line["stale_months"]) == (1, ["acme 2025-01"])


def test_the_sweep_names_a_missing_variable() -> None:
    with pytest.raises(SettingsError, match="RAW_BUCKET"):
        SweepSettings.from_environ({"QUARANTINE_BUCKET": "q", "AUDIT_TABLE": "a"})


def test_working_months_that_outlived_their_month_are_counted_not_deleted(
    stack: CleanupStack,
) -> None:
    # Given working telemetry of months that ended more than STALE_AFTER ago (October
    # ended 28 days before NOW), of the month just ended, and of this month
    kept = {
        sanitized_key("acme", "2026-10", next(BATCHES)),
        certificate_key("orbital", "2026-10", next(BATCHES)),
        analytics_key("acme", "2026-10", 3, next(BATCHES)),
        analytics_key("acme", "2026-09", 30, next(BATCHES)),
        sanitized_key("acme", "2026-11", next(BATCHES)),
        analytics_key("orbital", "2026-11", 2, next(BATCHES)),
    }
    for key in kept:
        stack.put("analytics" if key.startswith("analytics/") else "sanitized", key)
    # ...and folders the key layout never makes
    stack.put("sanitized", "sanitized/partner=Not A Partner/month=2026-01/x.parquet")
    stack.put("analytics", "analytics/events/partner=acme/month=last-year/x.parquet")

    report = sweep(Clients(stack.s3, stack.ddb), settings(), NOW)

    # ...each stale partner-month is counted once across both buckets, nothing is deleted
    assert report.stale_months == ("acme 2026-09", "acme 2026-10", "orbital 2026-10")
    assert report.as_dict()["stale_working_months"] == 3
    assert kept <= stack.keys("sanitized") | stack.keys("analytics")
    (summary,) = [
        event
        for event in stack.audit.system_events(NOW - timedelta(days=1))
        if event.event_type is AuditEventType.RETENTION_SWEEP
    ]
    assert summary.detail["stale_working_months"] == 3


def test_a_month_is_stale_only_once_its_grace_has_passed(stack: CleanupStack) -> None:
    stack.put("sanitized", sanitized_key("acme", "2026-11", next(BATCHES)))
    november_end = datetime(2026, 12, 1, tzinfo=UTC)

    on_time = sweep(Clients(stack.s3, stack.ddb), settings(), november_end + STALE_AFTER)
    late = sweep(
        Clients(stack.s3, stack.ddb), settings(), november_end + STALE_AFTER + timedelta(hours=1)
    )

    assert (on_time.stale_months, late.stale_months) == ((), ("acme 2026-11",))


def test_without_the_working_buckets_the_check_is_skipped(stack: CleanupStack) -> None:
    stack.put("sanitized", sanitized_key("acme", "2026-01", next(BATCHES)))

    report = sweep(Clients(stack.s3, stack.ddb), settings(working=False), NOW)

    assert report.stale_months == ()
