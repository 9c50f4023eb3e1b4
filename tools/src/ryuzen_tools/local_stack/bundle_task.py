"""The monthly bundle task against the local stack: ``python -m ryuzen_bundle build``.

In AWS the builder is an ECS Fargate task — its own process, started by EventBridge
Scheduler. Locally it is a subprocess of the same interpreter, given exactly the
environment the stack's stages run with (``environment.json``; ``SIGNING_KMS_KEY_ID`` and
any session token or profile removed, as for the in-process stages), so it reads and
writes the running stack's moto and signs with the stack's key file. The task prints one
JSON line (its summary) on stdout; its logs (stderr) are kept for a failure's message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ryuzen_tools.local_stack.environment import REMOVED_VARIABLES

BUILD_COMMAND = (sys.executable, "-m", "ryuzen_bundle", "build")
# The task's exit statuses (ryuzen_bundle.command_line).
EXIT_DELIVERED, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3
STDERR_TAIL_CHARS = 2000


@dataclass(frozen=True)
class BundleTaskResult:
    """One run of the task: exit status, its JSON summary, the end of its log."""

    partner: str
    month: str
    exit_code: int
    summary: dict[str, Any]
    stderr_tail: str
    seconds: float

    @property
    def delivered(self) -> bool:
        """The task delivered and recorded the bundle."""
        return self.exit_code == EXIT_DELIVERED and self.summary.get("status") == "delivered"

    def reason(self) -> str:
        """Why it did not deliver, in one line."""
        status = self.summary.get("status")
        if status == "refused":
            return f"refused: {self.summary.get('reason')}"
        if status == "failed":
            return f"failed at step {self.summary.get('step')} ({self.summary.get('error')})"
        if status == "error":
            return f"could not start: {self.summary.get('error')}"
        last = self.stderr_tail.strip().splitlines()[-1:] or ["no output"]
        return f"exit {self.exit_code}: {last[0]}"


def task_environment(stage_environment: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without the removed names, plus the stack's stage values."""
    environment = {
        name: value for name, value in os.environ.items() if name not in REMOVED_VARIABLES
    }
    environment.update(stage_environment)
    return environment


def run_bundle_task(
    stage_environment: Mapping[str, str],
    partner: str,
    month: str | None,
    *,
    allow_open_month: bool = False,
    force_rebuild: bool = False,
    timeout_s: float = 600.0,
) -> BundleTaskResult:
    """Run the task for one partner-month (``month=None``: the task's default, last month)."""
    command = [*BUILD_COMMAND, "--partner", partner]
    if month is not None:
        command += ["--month", month]
    if allow_open_month:
        command.append("--allow-open-month")
    if force_rebuild:
        command.append("--force-rebuild")
    started = time.monotonic()
    try:
        completed = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
            command,
            env=task_environment(stage_environment),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return BundleTaskResult(
            partner,
            month or "",
            -1,
            {"status": "error", "error": f"the task did not finish within {timeout_s:.0f} s"},
            "",
            time.monotonic() - started,
        )
    summary = _last_json_line(completed.stdout)
    return BundleTaskResult(
        partner,
        str(summary.get("month") or month or ""),
        completed.returncode,
        summary,
        completed.stderr[-STDERR_TAIL_CHARS:],
        time.monotonic() - started,
    )


def _last_json_line(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict):
            return document
    return {}
