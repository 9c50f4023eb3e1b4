"""Lambda entry point of the hourly retention sweep (an EventBridge Scheduler target).

The schedule's event carries nothing the sweep needs; the time is the clock's. The local
stack calls ``retention_sweep.sweep`` directly with its own clients and settings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog
from ryuzen_contracts.log_safety import error_fields
from ryuzen_contracts.pipeline_steps import failure_detail

from ryuzen_cleanup.cleanup_settings import Clients, SweepSettings
from ryuzen_cleanup.retention_sweep import STAGE, sweep

logger = Logger(service="ryuzen-cleanup")


@cache
def runtime() -> tuple[Clients, SweepSettings]:
    """Settings and clients, built once per container (settings fail fast, with their names)."""
    settings = SweepSettings.from_environ()
    settings.retention()  # an invalid STACK_CONFIG fails here, at start
    return Clients.from_environment(), settings


def reset_runtime() -> None:
    """Forget the cached settings and clients."""
    runtime.cache_clear()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Run one sweep; return (and log) its counts."""
    clients, settings = runtime()
    try:
        report = sweep(clients, settings, datetime.now(UTC))
    except Exception as error:
        failure = failure_detail(error)
        logger.error("retention sweep failed", extra={**error_fields(error), **failure})
        _audit_error(AuditLog(clients.dynamodb, settings.audit_table), failure)
        raise
    logger.info(
        "retention sweep done",
        extra={**report.as_dict(), "stale_months": list(report.stale_months)},
    )
    return report.as_dict()


def _audit_error(audit: AuditLog, failure: dict[str, str]) -> None:
    # The step and the error type only; the next scheduled sweep finds what is still old.
    try:
        audit.write(
            AuditEvent(
                event_type=AuditEventType.ERROR,
                stage=STAGE,
                detail=dict(failure),
            )
        )
    except Exception as audit_error:  # the audit trail must not mask the original failure
        logger.error("could not write the ERROR audit event", extra=error_fields(audit_error))
