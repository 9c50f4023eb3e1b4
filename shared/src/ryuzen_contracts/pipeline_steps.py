"""Named steps: a failure says *where* in a stage it happened.

A stage wraps each side effect in ``with step("write_sanitized"):``; any exception inside
is re-raised as :class:`StepFailed` carrying the step name (the original exception is
its ``__cause__``), so the handler's ``ERROR`` audit event can name the step without
ever quoting the exception's message, which may hold data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class StepFailed(RuntimeError):  # noqa: N818 -- public name, reads as a sentence
    """A named step of a stage failed; ``step`` and ``error`` (the cause's type) are safe
    to log and audit, the cause's message is not."""

    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(f"step {step} failed: {type(error).__name__}")
        self.step = step
        self.error = type(error).__name__


@contextmanager
def step(name: str) -> Iterator[None]:
    """Run the block as step ``name``; an inner ``StepFailed`` keeps its own (inner) name."""
    try:
        yield
    except StepFailed:
        raise
    except Exception as error:
        raise StepFailed(name, error) from error


def failure_detail(error: BaseException) -> dict[str, str]:
    """The audit-safe description of a failure: the step (if known) and the error type."""
    if isinstance(error, StepFailed):
        return {"step": error.step, "error": error.error}
    return {"step": "unknown", "error": type(error).__name__}
