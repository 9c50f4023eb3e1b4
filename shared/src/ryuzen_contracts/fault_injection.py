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
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

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
