"""Helpers the audit query and trail tests share: fake AWS, the audit table, events, the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog
from ryuzen_contracts.tables import audit_table_definition
from ryuzen_tools.cli import app
from ryuzen_tools.local_stack.provision import resource_name
from typer.testing import CliRunner, Result

REGION = "eu-west-1"
# The name `ryuzen audit` uses by default (stack "dev"), so the CLI tests need no --table.
DEFAULT_TABLE = resource_name("dev", "audit")
# Whole seconds: the table stores milliseconds, and events read back must compare equal.
NOW = datetime.now(UTC).replace(microsecond=0)
# ~200 KB of detail: five such items fill DynamoDB's (and moto's) 1 MB query page.
FAT_DETAIL: dict[str, Any] = {
    f"part_{i}": {f"k{j}": "0" * 250 for j in range(64)} for i in range(13)
}


@contextmanager
def mocked_audit_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[AuditLog]:
    """In-process moto with the audit table from the contracts' definition, and an
    environment where nothing can reach a real account or a stray endpoint."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "RYUZEN_AUDIT_TABLE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(**audit_table_definition(DEFAULT_TABLE))
        yield AuditLog(ddb, DEFAULT_TABLE)


def audit_event(
    event_type: AuditEventType,
    *,
    ago: timedelta = timedelta(minutes=5),
    partner: str | None = "acme",
    month: str | None = "2026-11",
    stage: str = "bundle",
    **detail: Any,
) -> AuditEvent:
    """An event ``ago`` before NOW; ``partner=None`` makes a SYSTEM event."""
    return AuditEvent(
        event_type=event_type,
        stage=stage,
        partner=partner,
        month=month if partner is not None else None,
        occurred_at=NOW - ago,
        detail=detail,
    )


def write_all(audit: AuditLog, *events: AuditEvent) -> None:
    for event in events:
        assert audit.write(event)


def ryuzen(*args: str) -> Result:
    """``ryuzen ARGS`` in-process (stdout and stderr apart)."""
    return CliRunner().invoke(app, list(args))


def json_ids(result: Result) -> list[str]:
    """The event ids of a ``--format json`` answer, in printed order."""
    assert result.exit_code == 0, result.output
    return [record["event_id"] for record in json.loads(result.stdout)]
