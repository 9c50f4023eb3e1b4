"""Named steps: a failure says *where* in a stage it happened.

A stage wraps each side effect in ``with step("write_sanitized"):``. An exception leaving
the block is re-raised unchanged — same type, so callers and retry logic see exactly
what they would without it — but tagged with the step's name (the innermost step wins).
The handler's ``ERROR`` audit event then names the step and the error type with
:func:`failure_detail`, never the exception's message, which may hold data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

_STEP_ATTRIBUTE = "ryuzen_step"
UNKNOWN_STEP = "unknown"


@contextmanager
def step(name: str) -> Iterator[None]:
    """Run the block as step ``name``: an escaping exception is tagged with it."""
    try:
        yield
    except Exception as error:
        if not hasattr(error, _STEP_ATTRIBUTE):
            # An exception type without a __dict__ cannot be tagged: it stays "unknown".
            with suppress(AttributeError):
                setattr(error, _STEP_ATTRIBUTE, name)
        raise


def step_of(error: BaseException) -> str:
    """The step ``error`` escaped from, or ``"unknown"``."""
    name = getattr(error, _STEP_ATTRIBUTE, UNKNOWN_STEP)
    return name if isinstance(name, str) else UNKNOWN_STEP


def failure_detail(error: BaseException) -> dict[str, str]:
    """The audit-safe description of a failure: the step and the error type, no message."""
    return {"step": step_of(error), "error": type(error).__name__[:64]}
