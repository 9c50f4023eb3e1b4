"""Faults the shared harness cannot express, on top of its ``Fault`` (one line per case).

A copy of the bundle stage's ``bundle_fault_hooks`` (a stage's tests never import
another stage's). ``ryuzen_contracts.fault_injection.inject`` fails the n-th call of an
operation with a plain ``ClientError``. The cleanup fault table also needs:

* ``where`` — count only the calls whose parameters include these values (a nested
  subset: ``{"Item": {"event_type": {"S": "TELEMETRY_DELETED"}}}``), because "the
  ``CLEANED`` write" is clearer than "the second PutItem";
* the client's *modeled* error (``client.exceptions.ConditionalCheckFailedException``),
  which is what the code under test catches — a plain ``ClientError`` with that code
  slips past ``except ddb.exceptions.ConditionalCheckFailedException``;
* ``landed`` — the call goes through and only then fails: a write whose answer was lost
  (botocore's retry then meets the write's own effect, e.g. as a conditional-check
  failure);
* ``rival`` — another writer acts just before the call, which then goes through (a real
  race, lost for real, with the store's own condition failing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ryuzen_contracts.fault_injection import CRASH, Fault


@dataclass(frozen=True)
class Hook:
    """One fault on one of the stage's clients (``"s3"``, ``"dynamodb"``)."""

    client: str
    fault: Fault
    where: Mapping[str, Any] = field(default_factory=dict)
    landed: bool = False
    rival: Callable[[], None] | None = None


def includes(params: Any, where: Any) -> bool:
    """Whether ``params`` holds every value of ``where`` (nested mappings compared as subsets)."""
    if isinstance(where, Mapping):
        return isinstance(params, Mapping) and all(
            key in params and includes(params[key], value) for key, value in where.items()
        )
    return bool(params == where)


def error_for(client: Any, fault: Fault) -> Exception:
    """What botocore would raise for ``fault`` on ``client``: its modeled error class."""
    error = fault.exception()
    if fault.error == CRASH:
        return error
    modeled = client.exceptions.from_code(fault.error)
    return modeled(error.response, fault.operation)  # type: ignore[attr-defined]


class Installed:
    """A hook on a client, and what it did (``fired``: ``(operation, n)`` per failure)."""

    def __init__(self, client: Any, hook: Hook) -> None:
        self.client = client
        self.hook = hook
        self.calls = 0
        self.fired: list[tuple[str, int]] = []
        self.raised: list[str] = []  # the type of each error raised
        self._busy = False
        self._pending = f"{__name__}.pending.{id(self)}"  # this hook's mark on a call
        client.meta.events.register("before-parameter-build.*.*", self._before)
        client.meta.events.register("after-call.*.*", self._after)

    def _before(self, params: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        fault = self.hook.fault
        if self._busy or model.name != fault.operation or not includes(params, self.hook.where):
            return
        self.calls += 1
        if not fault.matches(model.name, self.calls):
            return
        if self.hook.landed:
            context[self._pending] = self.calls  # fail once the call has gone through
            return
        self.fired.append((model.name, self.calls))
        if self.hook.rival is not None:
            self._busy = True  # the rival's own calls on this client pass untouched
            try:
                self.hook.rival()
            finally:
                self._busy = False
            return
        raise self._error()

    def _after(self, http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        number = context.pop(self._pending, None)
        if number is None or http_response.status_code >= 300:
            return
        self.fired.append((model.name, number))
        raise self._error()

    def _error(self) -> Exception:
        error = error_for(self.client, self.hook.fault)
        self.raised.append(type(error).__name__)
        return error

    def remove(self) -> None:
        """Take the hook off the client (the next run is clean)."""
        self.client.meta.events.unregister("before-parameter-build.*.*", self._before)
        self.client.meta.events.unregister("after-call.*.*", self._after)


class StateRecorder:
    """Every bundle-state write that DynamoDB accepted, in order (the state machine's path).

    Registered first, so it sees a write that landed before a ``landed`` hook fails it.
    """

    def __init__(self, dynamodb: Any) -> None:
        self.states: list[str] = []
        self._mark = f"{__name__}.state.{id(self)}"
        self._events = dynamodb.meta.events
        self._events.register_first("before-parameter-build.*.*", self._before)
        self._events.register_first("after-call.*.*", self._after)

    def remove(self) -> None:
        """Stop recording."""
        self._events.unregister("before-parameter-build.*.*", self._before)
        self._events.unregister("after-call.*.*", self._after)

    def _before(self, params: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        item = params.get("Item", {}) if model.name == "PutItem" else {}
        if item.get("sk", {}).get("S") == "STATE#BUNDLE":
            context[self._mark] = item["state"]["S"]

    def _after(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        state = context.pop(self._mark, None)
        if state is not None and http_response.status_code < 300:
            self.states.append(state)
