"""A daemon thread that repeats one piece of work every ``interval_s`` seconds until stopped.

The local stack's background chores share it: the rate schedules, the counters file, the
DynamoDB TTL pass and the release of moto's instance lists. The first run is one
interval after ``start()``; ``stop()`` lets a run in progress finish and never starts
another. A run that raises is logged (its type only: messages may carry data) and the
next one comes at its time, so one failure never ends a chore.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class RepeatingThread:
    """Runs ``work`` every ``interval_s`` seconds on a daemon thread named ``name``."""

    def __init__(self, name: str, work: Callable[[], object], interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s}")
        self.name = name
        self.interval_s = interval_s
        self._work = work
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread; the first run is one interval from now."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop; a run in progress finishes first (waited for up to ``timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _run(self) -> None:
        # Event.wait returns True once stop() is called: the loop ends without a last run.
        while not self._stop.wait(self.interval_s):
            try:
                self._work()
            except Exception as error:
                log.warning("%s failed: %s", self.name, type(error).__name__)
