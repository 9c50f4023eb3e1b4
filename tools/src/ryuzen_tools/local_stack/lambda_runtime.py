"""Running a stage's handler as Lambda would: a Lambda context, one invocation at a time.

Each stage gets one warm execution environment. Lambda never runs two invocations in one
environment at once, and handler code may rely on that (module-level clients, lazily read
settings, powertools' logger and idempotency state), so invocations of one stage are
serialized here; different stages run in parallel, as different functions do.

Failures are logged by exception type and code location only: exception messages can
carry payload values (pydantic puts the offending input in its messages), and logs never
contain payloads.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account

Handler = Callable[[dict[str, Any], Any], Any]

log = logging.getLogger(__name__)


@dataclass
class LambdaContext:
    """The attributes and method of the context object Lambda passes to a Python handler."""

    function_name: str
    invoked_function_arn: str
    log_group_name: str
    log_stream_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    timeout_s: float = 30.0
    _started: float = field(default_factory=time.monotonic, repr=False)

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout (never negative)."""
        left = self.timeout_s - (time.monotonic() - self._started)
        return max(0, int(left * 1000))


class StageRuntime:
    """One stage's handler, its invocation lock and its counters."""

    def __init__(
        self, name: str, handler: Handler, *, region: str, stack: str, timeout_s: float = 30.0
    ) -> None:
        self.name = name
        self.function_name = f"ryuzen-{stack}-{name}"
        self._handler = handler
        self._region = region
        self._timeout_s = timeout_s
        self._invoke_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._invocations = 0
        self._errors = 0
        self._outcomes: Counter[str] = Counter()

    def new_context(self) -> LambdaContext:
        """A fresh context for one invocation."""
        return LambdaContext(
            function_name=self.function_name,
            invoked_function_arn=(
                f"arn:aws:lambda:{self._region}:{LOCAL_ACCOUNT_ID}:function:{self.function_name}"
            ),
            log_group_name=f"/aws/lambda/{self.function_name}",
            log_stream_name=f"local/[$LATEST]{uuid.uuid4().hex}",
            timeout_s=self._timeout_s,
        )

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run the handler on ``event``; count it; re-raise what the handler raised."""
        with self._invoke_lock:
            with self._count_lock:
                self._invocations += 1
            try:
                return self._handler(event, self.new_context())
            except Exception as error:
                with self._count_lock:
                    self._errors += 1
                log.error(
                    "stage %s: handler raised %s at %s",
                    self.name,
                    type(error).__name__,
                    _where(error),
                )
                raise

    def count(self, outcome: str, amount: int = 1) -> None:
        """Add to a named outcome counter (``http_202``, ``messages_deleted``, ...)."""
        with self._count_lock:
            self._outcomes[outcome] += amount

    def counters(self) -> dict[str, Any]:
        """``{"invocations", "errors", "outcomes"}`` as plain JSON-ready values."""
        with self._count_lock:
            return {
                "invocations": self._invocations,
                "errors": self._errors,
                "outcomes": dict(sorted(self._outcomes.items())),
            }


def _where(error: BaseException) -> str:
    """The innermost frames of a traceback as ``file:line in function`` (no message, no values)."""
    frames = traceback.extract_tb(error.__traceback__)[-3:]
    return " <- ".join(
        f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}"
        for frame in reversed(frames)
    )
