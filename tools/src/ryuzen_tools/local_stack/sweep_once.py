"""``ryuzen local sweep``: one retention sweep, now, against a running local stack.

The stack runs the sweep Lambda on its own schedule (``stage_registry.SCHEDULED_STAGES``);
this runs the same ``ryuzen_cleanup.retention_sweep.sweep`` at once from another process,
with the stack's settings (``environment.json``: RAW and quarantine buckets, audit table,
the stack config's retention) and clients on its endpoint (``state.json``; the fake
credentials, never a developer's).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ryuzen_tools.local_stack.aws import LocalClients
from ryuzen_tools.local_stack.state_file import read_environment, read_state


def sweep_once(state_dir: Path, now: datetime) -> dict[str, int]:
    """Sweep the stack recorded in ``state_dir`` as of ``now``; return the sweep's counts.

    Raises StackNotRunningError without a live stack, SettingsError when its environment
    lacks a sweep setting, botocore errors when it does not answer.
    """
    # Imported here, like every stage the stack runs (stage_registry), so the tools
    # package imports without the cleanup stage installed.
    from ryuzen_cleanup.cleanup_settings import Clients, SweepSettings
    from ryuzen_cleanup.retention_sweep import sweep

    state = read_state(state_dir)
    settings = SweepSettings.from_environ(read_environment(state_dir))
    aws = LocalClients(state["aws"], state["region"])
    clients = Clients(s3=aws.client("s3"), dynamodb=aws.client("dynamodb"))
    counts: dict[str, int] = sweep(clients, settings, now).as_dict()
    return counts
