"""A rate schedule → handler, as EventBridge Scheduler invokes a Lambda function.

One thread per scheduled stage (a ``RepeatingThread``): it waits ``interval_s``, invokes
the stage with a scheduled event, and waits again, until stopped. The first run is one
interval after the start, as a new rate schedule's is. A run that raises is counted and
logged by the stage runtime and changes nothing else: the next run comes at its time, like
Scheduler's next invocation (its retries of a failed one are left out — the next run does
the same work).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ryuzen_tools.local_stack.lambda_runtime import LOCAL_ACCOUNT_ID, StageRuntime
from ryuzen_tools.local_stack.repeating_thread import RepeatingThread


def scheduled_event(schedule_arn: str, region: str, now: datetime) -> dict[str, Any]:
    """The event a rate schedule (or a ``rate()`` rule) hands a Lambda function."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": LOCAL_ACCOUNT_ID,
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [schedule_arn],
        "detail": {},
    }


class ScheduledInvoker:
    """Invokes one stage every ``interval_s`` seconds until stopped."""

    def __init__(
        self,
        runtime: StageRuntime,
        *,
        interval_s: float,
        region: str,
        counted: tuple[str, ...] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.runtime = runtime
        self.interval_s = interval_s
        self._region = region
        self._counted = counted
        self._clock = clock
        self._schedule_arn = (
            f"arn:aws:scheduler:{region}:{LOCAL_ACCOUNT_ID}:schedule/default/"
            f"{runtime.function_name}"
        )
        self._thread = RepeatingThread(f"schedule-{runtime.name}", self.run_once, interval_s)

    def start(self) -> None:
        """Start the schedule's thread."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop; a run in progress finishes first (waited for up to ``timeout``)."""
        self._thread.stop(timeout)

    def run_once(self) -> Any:
        """Invoke the stage once now; return its answer (None when it raised)."""
        event = scheduled_event(self._schedule_arn, self._region, self._clock())
        try:
            result = self.runtime.invoke(event)
        except Exception:  # counted and logged by the runtime; the schedule goes on
            self.runtime.count("runs_failed")
            return None
        self.runtime.count("runs")
        if isinstance(result, dict):
            for name in self._counted:
                value = result.get(name)
                if isinstance(value, int) and not isinstance(value, bool):
                    self.runtime.count(name, value)
        return result
