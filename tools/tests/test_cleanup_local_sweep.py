"""The retention sweep in the local stack: its schedule, and `ryuzen local sweep`.

Each test runs its own stack with no stage but the sweep (no consumer may take a RAW
object away first). Objects are put at chosen ages by setting moto's put-time clock for
the one call (moto's server runs in this process), so nothing sleeps for hours.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from ryuzen_contracts.audit_log import AuditEventType, AuditLog
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import quarantine_key, raw_key
from ryuzen_tools.cli import app
from ryuzen_tools.local_stack.stack import LocalStack, LocalStackOptions
from ryuzen_tools.local_stack.status import count_objects
from tools_support import unique
from typer.testing import CliRunner

# Pulumi.dev.yaml's retention: rawHours 2, quarantineDays 14 (the defaults).
RAW_TOO_OLD = timedelta(hours=3)
QUARANTINE_TOO_OLD = timedelta(days=15)


def sweep_only(project_dir: Path, state_dir: Path | None, **extra: Any) -> LocalStackOptions:
    return LocalStackOptions(
        project_dir=project_dir,
        state_dir=state_dir,
        resource_prefix=unique("sweep"),
        http_stages=(),
        consumers=(),
        **extra,
    )


def put_aged(s3: Any, bucket: str, key: str, age: timedelta) -> None:
    """Put ``key`` as if written ``age`` ago (moto stamps LastModified with this clock)."""
    written = (datetime.now(UTC) - age).replace(tzinfo=None)
    with mock.patch("moto.s3.models.utcnow", return_value=written):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")


def plant(stack: LocalStack) -> dict[str, str]:
    """One RAW straggler, one expired quarantine object, and a fresh one of each."""
    s3 = stack.clients.client("s3")  # type: ignore[union-attr]
    buckets = stack.ready["buckets"]
    now = datetime.now(UTC)
    keys = {
        "old_raw": raw_key(now - RAW_TOO_OLD, new_ulid()),
        "new_raw": raw_key(now, new_ulid()),
        "old_quarantine": quarantine_key((now - QUARANTINE_TOO_OLD).date(), new_ulid()),
        "new_quarantine": quarantine_key(now.date(), new_ulid()),
    }
    put_aged(s3, buckets["raw"], keys["old_raw"], RAW_TOO_OLD)
    put_aged(s3, buckets["raw"], keys["new_raw"], timedelta(minutes=5))
    put_aged(s3, buckets["quarantine"], keys["old_quarantine"], QUARANTINE_TOO_OLD)
    put_aged(s3, buckets["quarantine"], keys["new_quarantine"], timedelta(days=1))
    return keys


def keys_in(stack: LocalStack, role: str) -> set[str]:
    s3 = stack.clients.client("s3")  # type: ignore[union-attr]
    listed = s3.list_objects_v2(Bucket=stack.ready["buckets"][role]).get("Contents", [])
    return {item["Key"] for item in listed}


def straggler_errors(stack: LocalStack) -> list[dict[str, Any]]:
    audit = AuditLog(
        stack.clients.client("dynamodb"),  # type: ignore[union-attr]
        stack.ready["tables"]["audit"],
    )
    since = datetime.now(UTC) - timedelta(hours=1)
    return [event.detail for event in audit.query_recent(since, types=[AuditEventType.ERROR])]


def test_the_stack_sweeps_on_its_schedule(project_dir: Path) -> None:
    with LocalStack(sweep_only(project_dir, None, schedule_interval_s=0.5)) as stack:
        # Given a RAW straggler and an expired quarantine object, beside fresh ones
        keys = plant(stack)

        # When the schedule has run
        runtime = stack.runtimes["retention-sweep"]
        deadline = time.monotonic() + 30
        while not {"raw_deleted", "quarantine_deleted"} <= set(runtime.counters()["outcomes"]):
            assert time.monotonic() < deadline, runtime.counters()
            time.sleep(0.2)

        # Then exactly the expired objects are gone, the straggler audited by its key
        assert keys_in(stack, "raw") == {keys["new_raw"]}
        assert keys_in(stack, "quarantine") == {keys["new_quarantine"]}
        (error,) = straggler_errors(stack)
        assert error["error"] == "raw_retention_exceeded"
        assert error["raw_key"] == keys["old_raw"]
        counters = stack.counters_document()["stages"]["retention-sweep"]
        assert counters["trigger"] == "schedule every 0.5 s"
        assert counters["errors"] == 0
        assert counters["outcomes"]["raw_deleted"] == 1
        assert counters["outcomes"]["quarantine_deleted"] == 1
    # and stopping the stack stopped the schedule with it
    runs = runtime.counters()["invocations"]
    time.sleep(1.2)
    assert runtime.counters()["invocations"] == runs


def test_local_sweep_sweeps_the_running_stack_now(project_dir: Path, tmp_path: Path) -> None:
    # the stack's own schedule (every minute) does not run during this test
    with LocalStack(sweep_only(project_dir, tmp_path)) as stack:
        keys = plant(stack)

        result = CliRunner().invoke(app, ["local", "sweep", "--state-dir", str(tmp_path)])

        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {
            "raw_deleted": 1,
            "quarantine_deleted": 1,
            "raw_retention_hours": 2,
            "quarantine_retention_days": 14,
            "stale_working_months": 0,
        }
        assert "deleted 1 RAW objects older than 2 h" in result.stderr
        assert keys_in(stack, "raw") == {keys["new_raw"]}
        assert keys_in(stack, "quarantine") == {keys["new_quarantine"]}
        assert [error["raw_key"] for error in straggler_errors(stack)] == [keys["old_raw"]]
        assert stack.runtimes["retention-sweep"].counters()["invocations"] == 0

        # a second sweep finds nothing more to do
        again = CliRunner().invoke(app, ["local", "sweep", "--state-dir", str(tmp_path)])
        assert again.exit_code == 0
        assert json.loads(again.stdout)["raw_deleted"] == 0
        s3 = stack.clients.client("s3")  # type: ignore[union-attr]
        assert count_objects(s3, stack.ready["buckets"]["raw"]) == (1, 1)


def test_local_sweep_without_a_stack_names_the_state_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["local", "sweep", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "state.json" in result.stderr
