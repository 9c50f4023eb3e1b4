"""ScheduledInvoker: a stage invoked on a rate, as EventBridge Scheduler does it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from ryuzen_tools.local_stack.lambda_runtime import StageRuntime
from ryuzen_tools.local_stack.schedule import ScheduledInvoker

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


class ScriptedSweep:
    """Answers like the sweep Lambda; raises on the runs listed in ``fail_on``."""

    def __init__(self, fail_on: tuple[int, ...] = ()) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail_on = fail_on
        self.ran = threading.Event()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        self.ran.set()
        if len(self.events) in self.fail_on:
            raise RuntimeError("moto hiccup")
        return {"raw_deleted": 2, "quarantine_deleted": 1, "raw_retention_hours": 2}


def invoker(handler: ScriptedSweep, interval_s: float) -> ScheduledInvoker:
    runtime = StageRuntime("retention-sweep", handler, region="eu-west-1", stack="t")
    return ScheduledInvoker(
        runtime,
        interval_s=interval_s,
        region="eu-west-1",
        counted=("raw_deleted", "quarantine_deleted"),
        clock=lambda: NOW,
    )


def test_a_run_passes_a_scheduled_event_and_adds_up_the_counted_numbers() -> None:
    handler = ScriptedSweep()
    schedule = invoker(handler, interval_s=60)

    for _ in range(3):
        schedule.run_once()

    (event, *_) = handler.events
    assert event["detail-type"] == "Scheduled Event"
    assert event["time"] == "2026-11-28T09:30:00Z"
    assert event["region"] == "eu-west-1"
    assert event["resources"] == [
        "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/ryuzen-t-retention-sweep"
    ]
    counters = schedule.runtime.counters()
    assert counters["invocations"] == 3
    # only the counted names: retention hours are a setting, not an amount
    assert counters["outcomes"] == {"quarantine_deleted": 3, "raw_deleted": 6, "runs": 3}


def test_a_failed_run_is_counted_and_the_schedule_goes_on() -> None:
    handler = ScriptedSweep(fail_on=(1,))
    schedule = invoker(handler, interval_s=0.05)
    schedule.start()
    try:
        deadline = time.monotonic() + 10
        while len(handler.events) < 3:
            assert time.monotonic() < deadline, "the schedule stopped after a failed run"
            time.sleep(0.02)
    finally:
        schedule.stop()
    counters = schedule.runtime.counters()
    assert counters["errors"] == 1
    assert counters["outcomes"]["runs_failed"] == 1
    assert counters["outcomes"]["runs"] == counters["invocations"] - 1

    # and once stopped, it runs no more
    runs = len(handler.events)
    time.sleep(0.2)
    assert len(handler.events) == runs


def test_the_first_run_comes_one_interval_after_the_start() -> None:
    handler = ScriptedSweep()
    schedule = invoker(handler, interval_s=0.5)
    started = time.monotonic()
    schedule.start()
    try:
        assert handler.ran.wait(10)
    finally:
        schedule.stop()
    assert time.monotonic() - started >= 0.5


def test_an_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_s must be positive"):
        invoker(ScriptedSweep(), interval_s=0)
