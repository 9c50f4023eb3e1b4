"""A failure at any step leaves the state at BUILDING or BUILT with an ERROR audit event.

Each case injects one failure into a real (moto) client at one step of the build, then
checks the state, the audit trail, the bucket and the bus — and that a retry with
healthy clients delivers. The object is verified before anything records it: a failed
verification leaves the month BUILDING with no BUNDLE_CREATED.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from bundle_build_stack import BundleStack
from bundle_build_support import MONTH, NOW, batch
from ryuzen_bundle import bundle_builder
from ryuzen_bundle.bundle_builder import BuildFailed, BuildRequest, BundleServices, build_bundle
from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog
from ryuzen_contracts.bundle_state import BundleState, BundleStateStore


def client_error(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, operation)


class Faulty:
    """A client whose ``method`` fails when ``when`` says so — or, given ``answer``, answers
    with ``answer(real_call)`` instead (which may or may not make the real call)."""

    def __init__(
        self,
        client: Any,
        method: str,
        *,
        when: Callable[[dict[str, Any]], bool] = lambda _: True,
        answer: Callable[[Callable[[], Any]], Any] | None = None,
    ) -> None:
        self._client = client
        self._method = method
        self._when = when
        self._answer = answer

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name != self._method:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if not self._when(kwargs):
                return attribute(*args, **kwargs)
            if self._answer is None:
                raise client_error(name)
            return self._answer(lambda: attribute(*args, **kwargs))

        return call


class FaultyAudit(AuditLog):
    def __init__(self, inner: AuditLog, failing: AuditEventType) -> None:
        self._inner = inner
        self._failing = failing

    def write(self, event: AuditEvent) -> bool:
        if event.event_type is self._failing:
            raise client_error("PutItem")
        return self._inner.write(event)


@dataclass
class Case:
    step: str
    state: BundleState
    services: Callable[[BundleStack], BundleServices]
    object_left: bool = False
    event_sent: bool = False
    created: bool = False  # BUNDLE_CREATED was audited before the failure


def swap(stack: BundleStack, **changes: Any) -> BundleServices:
    values = {
        "s3": stack.s3,
        "events": stack.events,
        "audit": stack.audit,
        "states": stack.states,
        "signer": stack.signer,
    }
    values.update(changes)
    return BundleServices(**values)


def wrong_checksum(real: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return {**real(), "ChecksumSHA256": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=-1"}


def failed_entry(real: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    # EventBridge answers 200 with the entry failed; nothing reaches the bus.
    return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]}


def delivered_put(kwargs: dict[str, Any]) -> bool:
    return kwargs.get("Item", {}).get("state", {}).get("S") == "DELIVERED"


def built_put(kwargs: dict[str, Any]) -> bool:
    return kwargs.get("Item", {}).get("state", {}).get("S") == "BUILT"


CASES = [
    Case(
        "list_analytics",
        BundleState.BUILDING,
        lambda s: swap(s, s3=Faulty(s.s3, "get_paginator")),
    ),
    Case(
        "download_analytics",
        BundleState.BUILDING,
        lambda s: swap(
            s, s3=Faulty(s.s3, "get_object", when=lambda kw: kw["Key"].startswith("analytics/"))
        ),
    ),
    Case(
        "start_upload",
        BundleState.BUILDING,
        lambda s: swap(s, s3=Faulty(s.s3, "create_multipart_upload")),
    ),
    Case("upload_part", BundleState.BUILDING, lambda s: swap(s, s3=Faulty(s.s3, "upload_part"))),
    Case(
        "complete_upload",
        BundleState.BUILDING,
        lambda s: swap(s, s3=Faulty(s.s3, "complete_multipart_upload")),
    ),
    Case(
        "verify_upload",
        BundleState.BUILDING,
        lambda s: swap(s, s3=Faulty(s.s3, "head_object", answer=wrong_checksum)),
        object_left=True,
    ),
    Case(
        "store_metadata",
        BundleState.BUILDING,
        lambda s: swap(s, s3=Faulty(s.s3, "copy_object")),
        object_left=True,
    ),
    Case(
        "mark_built",
        BundleState.BUILDING,
        lambda s: swap(
            s, states=BundleStateStore(Faulty(s.ddb, "put_item", when=built_put), "audit")
        ),
        object_left=True,
    ),
    Case(
        "audit_created",
        BundleState.BUILT,
        lambda s: swap(s, audit=FaultyAudit(s.audit, AuditEventType.BUNDLE_CREATED)),
        object_left=True,
    ),
    Case(
        "audit_delivered",
        BundleState.BUILT,
        lambda s: swap(s, audit=FaultyAudit(s.audit, AuditEventType.BUNDLE_DELIVERED)),
        object_left=True,
        created=True,
    ),
    Case(
        "emit_event",
        BundleState.BUILT,
        lambda s: swap(s, events=Faulty(s.events, "put_events", answer=failed_entry)),
        object_left=True,
        created=True,
    ),
    Case(
        "emit_event",
        BundleState.BUILT,
        lambda s: swap(s, events=Faulty(s.events, "put_events")),
        True,
        created=True,
    ),
    Case(
        "mark_delivered",
        BundleState.BUILT,
        lambda s: swap(
            s, states=BundleStateStore(Faulty(s.ddb, "put_item", when=delivered_put), "audit")
        ),
        object_left=True,
        event_sent=True,
        created=True,
    ),
]


@pytest.mark.parametrize(
    "case",
    CASES,
    ids=[
        "list",
        "download",
        "create-upload",
        "upload-part",
        "complete-upload",
        "checksum-mismatch",
        "metadata-copy",
        "built-transition",
        "audit-created",
        "audit-delivered",
        "event-failed-entry",
        "event-error",
        "delivered-transition",
    ],
)
def test_a_failure_at_each_step_never_reaches_delivered(stack: BundleStack, case: Case) -> None:
    # Given a month with events and a certificate
    batch_id = stack.put_batch(batch(20, datetime(2026, 10, 9, tzinfo=UTC), seed=5))
    stack.put_certificate(batch_id, 1)

    # When one step fails
    with pytest.raises(BuildFailed) as failure:
        build_bundle(
            case.services(stack),
            stack.target,
            BuildRequest("acme", MONTH),
            now=lambda: NOW,
            tuning=stack.tuning(),
        )

    # Then the state stops short of DELIVERED, and an ERROR names the step
    assert failure.value.step == case.step
    state = stack.state()
    assert state is not None and state.state is case.state
    errors = [e for e in stack.audit_events() if e.event_type is AuditEventType.ERROR]
    assert len(errors) == 1
    assert errors[0].detail["step"] == case.step
    assert errors[0].detail["bundle_key"] == "acme/2026-10/ryuzen-telemetry-acme-2026-10.zip"
    kinds = {e.event_type for e in stack.audit_events()}
    assert (AuditEventType.BUNDLE_CREATED in kinds) is case.created
    assert AuditEventType.BUNDLE_DELIVERED not in kinds or case.step in (
        "emit_event",
        "mark_delivered",
    )
    assert bool(stack.bundle_keys()) is case.object_left
    assert stack.open_uploads() == []
    assert bool(stack.delivered_events()) is case.event_sent

    # And a retry with healthy clients delivers
    report = stack.build()
    assert report.events == 20
    final = stack.state()
    assert final is not None and final.state is BundleState.DELIVERED


def test_a_build_that_lost_the_month_to_another_stops_at_built(
    stack: BundleStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another build that takes the month over while this one is uploading
    write_zip = bundle_builder._write_zip

    def racing(build: Any, stream: Any) -> None:
        write_zip(build, stream)
        stack.states.transition("acme", MONTH, BundleState.BUILDING)

    monkeypatch.setattr(bundle_builder, "_write_zip", racing)

    # When this build tries to move the month to BUILT
    with pytest.raises(BuildFailed) as failure:
        stack.build()

    # Then it stops; the other build's record stands
    assert failure.value.step == "mark_built"
    state = stack.state()
    assert state is not None and state.state is BundleState.BUILDING and state.version == 2


def test_an_error_audit_that_cannot_be_written_does_not_mask_the_failure(
    stack: BundleStack,
) -> None:
    class Broken(AuditLog):
        def __init__(self) -> None:
            pass

        def write(self, event: AuditEvent) -> bool:
            raise client_error("PutItem")

    with pytest.raises(BuildFailed) as failure:
        build_bundle(
            swap(stack, audit=Broken()),
            stack.target,
            BuildRequest("acme", MONTH),
            now=lambda: NOW,
            tuning=stack.tuning(),
        )
    assert failure.value.step == "audit_created"
    assert isinstance(failure.value.error, ClientError)
