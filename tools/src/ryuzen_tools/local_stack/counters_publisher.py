"""Publishes the stages' counters to ``stages.json`` for ``ryuzen local status``.

A file rather than a control endpoint: ``status`` already reads ``state.json`` from the
same directory, a file needs no extra port or protocol, and it is still there after the
stack stopped. Written at most once a second, only when something changed, and once more
on shutdown.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ryuzen_tools.local_stack.repeating_thread import RepeatingThread
from ryuzen_tools.local_stack.state_file import stages_path, write_json_atomically

PUBLISH_INTERVAL_S = 1.0


class CountersPublisher:
    """A thread that rewrites ``DIR/stages.json`` when the counters change."""

    def __init__(self, state_dir: Path, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._path = stages_path(state_dir)
        self._snapshot = snapshot
        self._thread = RepeatingThread("counters-publisher", self.publish, PUBLISH_INTERVAL_S)
        self._last: dict[str, Any] | None = None

    def start(self) -> None:
        """Write the first snapshot now, then keep it current."""
        self.publish()
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and write the final counters."""
        self._thread.stop(timeout=5)
        self.publish()

    def publish(self) -> None:
        """Write the counters if they changed since the last write."""
        current = self._snapshot()
        if current != self._last:
            write_json_atomically(self._path, current)
            self._last = current
