"""Fault injection for tests: make a real boto3 client fail on chosen calls.

Every stage's fault tests use this one harness, so "S3 SlowDown on the second PutObject"
or "crash just before the RAW delete" is one line in a parametrized table::

    faults = inject(s3, [Fault("PutObject", "SlowDown", call=2)])
    ...
    assert faults.fired == [("PutObject", 2)]

It hooks botocore's ``before-call`` event, so the failure happens where the real call
would have been made — after parameter validation, before anything is sent — and the
client (moto-backed in tests) is otherwise untouched. An AWS error is raised as the
``ClientError`` botocore would raise once its retries are exhausted; ``CRASH`` raises
:class:`SimulatedCrash` instead, standing for the process dying at that point (between
the previous write and this one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ryuzen_contracts.bundle_state import STATE_SK

CRASH = "CRASH"

# HTTP status botocore reports with each error code the harness is used with.
_STATUS = {
    "SlowDown": 503,
    "ServiceUnavailable": 503,
    "InternalError": 500,
    "ProvisionedThroughputExceededException": 400,
    "ThrottlingException": 400,
    "RequestLimitExceeded": 400,
    "ConditionalCheckFailedException": 400,
    "TransactionConflictException": 400,
    "KMSInternalException": 500,
    "KMSInvalidStateException": 400,
    "DependencyTimeoutException": 503,
    "InternalException": 500,
}


class SimulatedCrash(RuntimeError):  # noqa: N818 -- names what it simulates
    """The process "died" just before this call: nothing of the call happened."""


@dataclass(frozen=True)
class Fault:
    """Fail the ``call``-th (1-based) call of ``operation``, and the ``times - 1`` after it.

    ``operation`` is the botocore operation name (``PutObject``, ``PutItem``, ``Sign``,
    ``PutEvents``...); ``error`` an AWS error code, or ``CRASH``.
    """

    operation: str
    error: str = "InternalError"
    call: int = 1
    times: int = 1

    def __post_init__(self) -> None:
        if self.call < 1 or self.times < 1:
            raise ValueError("call and times count from 1")

    def matches(self, operation: str, number: int) -> bool:
        """Whether the ``number``-th call of ``operation`` fails."""
        return operation == self.operation and self.call <= number < self.call + self.times

    def exception(self, exceptions: Any = None) -> Exception:
        """What the failing call raises: the client's own modeled class for the code when
        ``exceptions`` (a client's ``.exceptions``) knows it — so ``except
        ddb.exceptions.ConditionalCheckFailedException`` catches it as it would a real
        race — else a plain ``ClientError``, as botocore raises for unmodeled codes."""
        if self.error == CRASH:
            return SimulatedCrash(f"simulated crash before {self.operation}")
        status = _STATUS.get(self.error, 500)
        response: Any = {
            "Error": {"Code": self.error, "Message": f"injected {self.error}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        error_class = exceptions.from_code(self.error) if exceptions is not None else ClientError
        return error_class(response, self.operation)


@dataclass
class InjectedFaults:
    """The faults installed on one client, and what they did."""

    faults: list[Fault]
    exceptions: Any = None  # the client's modeled exception classes
    calls: Counter[str] = field(default_factory=Counter)
    fired: list[tuple[str, int]] = field(default_factory=list)

    def before_call(self, model: Any, **_: Any) -> None:
        """botocore ``before-call`` handler: count the call, raise if a fault matches."""
        operation = model.name
        self.calls[operation] += 1
        number = self.calls[operation]
        for fault in self.faults:
            if fault.matches(operation, number):
                self.fired.append((operation, number))
                raise fault.exception(self.exceptions)


def inject(client: Any, faults: list[Fault]) -> InjectedFaults:
    """Install ``faults`` on ``client`` (a boto3 client); returns the record of calls."""
    injected = InjectedFaults(list(faults), client.exceptions)
    client.meta.events.register("before-call.*.*", injected.before_call)
    return injected


def remove(client: Any, injected: InjectedFaults) -> None:
    """Take the faults off ``client`` again (the redelivery then runs clean)."""
    client.meta.events.unregister("before-call.*.*", injected.before_call)


# --- Hooks: faults chosen by parameters, landed writes and rivals -------------------------
#
# ``inject`` fails the n-th call of an operation. The bundle and cleanup fault tables also
# need:
# * ``where`` — count only the calls whose parameters include these values (a nested subset:
#   ``{"Item": {"state": {"S": "BUILT"}}}``, ``{"Bucket": "sanitized"}``), because a stage
#   may read on several threads in no fixed order, and "the DELIVERED write" is clearer
#   than "the fifth PutItem";
# * ``landed`` — the call goes through and only then fails: a write whose answer was lost
#   (botocore's retry then meets the write's own effect, e.g. a conditional-check failure);
# * ``rival`` — another writer acts just before the call, which then goes through (a real
#   race, lost for real, with the store's own condition failing).


@dataclass(frozen=True)
class Hook:
    """One fault on one of a stage's clients (named by the test: ``"s3"``, ``"dynamodb"``...)."""

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
        error = self.hook.fault.exception(self.client.exceptions)
        self.raised.append(type(error).__name__)
        return error

    def remove(self) -> None:
        """Take the hook off the client (the next run is clean)."""
        self.client.meta.events.unregister("before-parameter-build.*.*", self._before)
        self.client.meta.events.unregister("after-call.*.*", self._after)


class StateRecorder:
    """Every bundle-state write DynamoDB accepted, in order: the path the state machine took
    (a fault table asserts it never skips a step).

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
        if item.get("sk", {}).get("S") == STATE_SK:
            context[self._mark] = item["state"]["S"]

    def _after(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        state = context.pop(self._mark, None)
        if state is not None and http_response.status_code < 300:
            self.states.append(state)
