"""``state.json`` and ``stages.json``: how other ``ryuzen local`` commands find a running stack.

``state.json`` is the ready line (endpoints, keys, resource names, the pid); it is written
once when the stack is ready and removed on a clean shutdown. ``stages.json`` holds the
per-stage invocation and error counters; the running stack rewrites it at most once a
second and on shutdown, so ``status`` can read them from another process without a control
endpoint. Both are written atomically (temp file in the same directory + ``os.replace``),
so a reader never sees half a file, and with mode 0600: ``state.json`` holds the local API
keys.

``environment.json`` is the process environment the stack's stages run with (the same
values ``environment.stage_environment`` gave them), written beside ``state.json`` and
removed with it: ``ryuzen local bundle`` runs the bundle task in another process, and
gives it exactly this environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
STAGES_FILE = "stages.json"
ENVIRONMENT_FILE = "environment.json"
DEFAULT_STATE_DIR = Path(".ryuzen") / "local"


class StackNotRunningError(RuntimeError):
    """No live stack is recorded in the state directory."""


def state_path(state_dir: Path) -> Path:
    """``DIR/state.json``."""
    return state_dir / STATE_FILE


def stages_path(state_dir: Path) -> Path:
    """``DIR/stages.json``."""
    return state_dir / STAGES_FILE


def environment_path(state_dir: Path) -> Path:
    """``DIR/environment.json``."""
    return state_dir / ENVIRONMENT_FILE


def read_environment(state_dir: Path) -> dict[str, str]:
    """The stages' environment of the live stack; StackNotRunningError when it is absent."""
    read_state(state_dir)  # a live stack first, or the error that says why not
    path = environment_path(state_dir)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        raise StackNotRunningError(
            f"{path} is missing or unreadable (restart the stack with `ryuzen local up`)"
        ) from None
    return {str(name): str(value) for name, value in dict(document).items()}


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` (mode 0600) so readers see the old or the new file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:  # mkstemp: mode 0600
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.write("\n")
        Path(temp_name).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(temp_name).unlink()
        raise


def write_state(state_dir: Path, state: dict[str, Any]) -> Path:
    """Record a ready stack."""
    path = state_path(state_dir)
    write_json_atomically(path, state)
    return path


def read_state(state_dir: Path) -> dict[str, Any]:
    """The recorded state of a live stack; StackNotRunningError (naming the file) otherwise."""
    path = state_path(state_dir)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StackNotRunningError(
            f"no local stack is running: {path} does not exist (start one with `ryuzen local up`)"
        ) from None
    except json.JSONDecodeError as error:
        raise StackNotRunningError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(state, dict):
        raise StackNotRunningError(f"{path} does not hold a JSON object")
    pid = state.get("pid")
    if not isinstance(pid, int) or not process_alive(pid):
        raise StackNotRunningError(
            f"{path} names process {pid}, which is not running (stale file from a crash; delete it)"
        )
    return state


def read_stage_counters(state_dir: Path) -> dict[str, Any]:
    """The last counters the stack wrote, or ``{}`` before the first write."""
    try:
        return dict(json.loads(stages_path(state_dir).read_text(encoding="utf-8")))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def remove_state(state_dir: Path) -> None:
    """Forget the stack (clean shutdown). ``stages.json`` stays for a post-mortem look."""
    with contextlib.suppress(FileNotFoundError):
        state_path(state_dir).unlink()
    with contextlib.suppress(FileNotFoundError):
        environment_path(state_dir).unlink()


def process_alive(pid: int) -> bool:
    """True when a process with this pid exists (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
