"""Two builders of one month: the one whose first write lands second loses, untouched.

The builder checks its refusal rules on one read of the month's state and writes
``BUILDING`` after. A rival that wrote ``BUILDING`` in between leaves a state from which
``BUILDING`` is a legal retry, so without the version the checks were made on, the late
builder would carry on and upload over the rival's bundle. These tests run two real
builds in two threads and stop the first one exactly in that gap.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from bundle_build_stack import BundleStack
from bundle_build_support import MONTH, NOW, batch
from ryuzen_bundle import bundle_builder
from ryuzen_bundle.bundle_builder import BuildRefused, BuildRequest, BundleReport, build_bundle
from ryuzen_contracts.audit_log import AuditEventType
from ryuzen_contracts.bundle_state import BundleState, ConcurrentTransition

WAIT_SECONDS = 60  # only reached if a build hangs: the test then fails instead


class RecordingS3:
    """The real client, noting the name of every operation called on it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attribute(*args, **kwargs)

        return call


def start_from(stack: BundleStack, state: BundleState | None) -> None:
    if state is BundleState.BUILT:  # a build that failed before delivery left it there
        stack.states.transition("acme", MONTH, BundleState.BUILDING)
        stack.states.transition("acme", MONTH, BundleState.BUILT)


@pytest.mark.parametrize(
    "start",
    [pytest.param(None, id="new-month"), pytest.param(BundleState.BUILT, id="retry-of-built")],
)
def test_the_builder_that_writes_second_loses_and_touches_nothing(
    stack: BundleStack, monkeypatch: pytest.MonkeyPatch, start: BundleState | None
) -> None:
    stack.put_batch(batch(12, datetime(2026, 10, 3, tzinfo=UTC), seed=3))
    start_from(stack, start)
    before = stack.state()

    rival_building = threading.Event()  # the rival has written BUILDING
    late_done = threading.Event()  # the late builder has finished (lost)
    rival: dict[str, Any] = {}
    late_thread = threading.current_thread()

    # The rival pauses once it has written BUILDING, until the late builder is done.
    real_prepare = bundle_builder._prepare

    def prepare(build: Any) -> None:
        if threading.current_thread() is not late_thread:
            rival_building.set()
            assert late_done.wait(WAIT_SECONDS)
        real_prepare(build)

    def run_rival() -> None:
        try:
            rival["report"] = stack.build()
        except Exception as error:  # reported by the assertions below
            rival["error"] = error

    # The late builder reads the state (its refusal checks pass), then the rival starts
    # and writes BUILDING before the late builder's own first write.
    real_check: Callable[..., Any] = bundle_builder.check_request

    def check_request(*args: Any, **kwargs: Any) -> Any:
        current = real_check(*args, **kwargs)
        if threading.current_thread() is late_thread:
            threading.Thread(target=run_rival, name="rival-builder").start()
            assert rival_building.wait(WAIT_SECONDS)
        return current

    monkeypatch.setattr(bundle_builder, "_prepare", prepare)
    monkeypatch.setattr(bundle_builder, "check_request", check_request)

    # When the late builder runs (with its own view of S3, to see what it touches)
    late_s3 = RecordingS3(stack.s3)
    try:
        with pytest.raises(BuildRefused) as refused:
            build_bundle(
                dataclasses.replace(stack.services, s3=late_s3),
                stack.target,
                BuildRequest("acme", MONTH),
                now=lambda: NOW,
                tuning=stack.tuning(),
            )
    finally:
        late_done.set()
    rival_thread = next(t for t in threading.enumerate() if t.name == "rival-builder")
    rival_thread.join(WAIT_SECONDS)

    # Then the late builder lost the race: refused, before any S3 call
    assert isinstance(refused.value.__cause__, ConcurrentTransition)
    expected = before.version if before is not None else 0
    assert f"expected version {expected}" in str(refused.value)
    assert late_s3.calls == []

    # And the rival built and delivered the month undisturbed
    assert "error" not in rival, rival.get("error")
    report: BundleReport = rival["report"]
    assert report.events == 12
    state = stack.state()
    assert state is not None and state.state is BundleState.DELIVERED
    assert state.version == expected + 3  # the rival's BUILDING, BUILT, DELIVERED only
    assert state.attributes["sha256"] == report.sha256
    kinds = [event.event_type for event in stack.audit_events()]
    assert kinds.count(AuditEventType.BUNDLE_CREATED) == 1
    assert AuditEventType.ERROR not in kinds
    assert stack.bundle_keys() == [report.bundle_key]
    assert stack.open_uploads() == []
