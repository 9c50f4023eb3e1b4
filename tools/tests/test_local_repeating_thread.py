"""The local stack's background chores: repeated, outliving a failed run, stopped cleanly."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from ryuzen_tools.local_stack.repeating_thread import RepeatingThread


def test_a_failed_run_is_logged_by_type_and_the_next_one_still_comes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []
    enough = threading.Event()

    def work() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise ValueError("secret-payload")
        if len(runs) >= 3:
            enough.set()

    chore = RepeatingThread("test-chore", work, interval_s=0.02)
    with caplog.at_level(logging.WARNING):
        chore.start()
        assert enough.wait(10), "the chore stopped after its failed run"
        chore.stop()
    done = len(runs)
    time.sleep(0.1)
    assert len(runs) == done  # nothing runs after stop()
    assert [r.getMessage() for r in caplog.records] == ["test-chore failed: ValueError"]
    assert not [t for t in threading.enumerate() if t.name == "test-chore"]


def test_the_first_run_waits_one_interval() -> None:
    runs: list[float] = []
    chore = RepeatingThread("slow-chore", lambda: runs.append(time.monotonic()), interval_s=60)
    chore.start()
    chore.stop()
    assert runs == []


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_s must be positive"):
        RepeatingThread("never", lambda: None, interval_s=0)
