"""Lambda entry point for ``BundleDelivered``: an EventBridge event, or an SQS batch of them.

In AWS an EventBridge rule invokes this function with the event itself (a raised error
makes Lambda's asynchronous invocation retry it, then send it to the function's DLQ). In
the local stack the rule's target is an SQS queue and each message body is the same event
JSON; powertools' batch processor then reports partial failures, so one month that must
be retried never drags the rest of the batch with it.

Thin on purpose: read settings once, build clients once, parse the event, and hand it to
``clean_partner_month``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog
from ryuzen_contracts.bundle_state import BundleStateStore
from ryuzen_contracts.log_safety import error_fields
from ryuzen_contracts.pipeline_steps import failure_detail, step_of

from ryuzen_cleanup.bundle_delivered import (
    BundleDelivered,
    InvalidBundleEvent,
    parse_bundle_delivered,
)
from ryuzen_cleanup.cleanup_settings import CleanupSettings, Clients, make_signer
from ryuzen_cleanup.delete_old_telemetry import (
    STAGE,
    CleanupReport,
    CleanupServices,
    CleanupTarget,
    NotDeliveredYet,
    clean_partner_month,
)

logger = Logger(service="ryuzen-cleanup")
processor = BatchProcessor(event_type=EventType.SQS)


class _Runtime:
    """Everything built once per Lambda container."""

    def __init__(self, settings: CleanupSettings) -> None:
        clients = Clients.from_environment()
        # Exposed so tests (and the local stack) can reach the clients the stage uses.
        self.s3 = clients.s3
        self.dynamodb = clients.dynamodb
        self.audit = AuditLog(clients.dynamodb, settings.audit_table)
        self.services = CleanupServices(
            s3=clients.s3,
            audit=self.audit,
            # Bundle states live in the audit table (one STATE#BUNDLE item per month).
            states=BundleStateStore(clients.dynamodb, settings.audit_table),
            signer=make_signer(settings),
        )
        self.target = CleanupTarget(
            sanitized_bucket=settings.sanitized_bucket,
            analytics_bucket=settings.analytics_bucket,
            bundles_bucket=settings.bundles_bucket,
        )


@cache
def runtime() -> _Runtime:
    """The container's runtime, built on first use (settings fail fast, with their names)."""
    return _Runtime(CleanupSettings.from_environ())


def reset_runtime() -> None:
    """Forget the cached settings and clients (the local stack restarts stages in-process)."""
    runtime.cache_clear()


def handle_event(event: Mapping[str, Any] | str) -> CleanupReport | None:
    """Clean the month one ``BundleDelivered`` event names; raise to have it retried.

    A malformed event is audited and acknowledged (None): no retry can fix it.
    """
    rt = runtime()
    try:
        delivered = parse_bundle_delivered(event)
    except InvalidBundleEvent as error:
        logger.error("not a BundleDelivered event", extra={"problem": str(error)})
        _audit_error(rt.audit, {"step": "parse_event", "error": "invalid_event"}, None)
        return None
    fields = {"partner": delivered.partner, "month": delivered.month}
    try:
        report = clean_partner_month(rt.services, rt.target, delivered)
    except NotDeliveredYet as waiting:
        # Expected for a moment: the builder emits the event just before writing DELIVERED.
        # Not an ERROR: if the build never gets there, the retries end in the DLQ.
        logger.warning(
            "bundle not DELIVERED yet; the event will be retried",
            extra={**fields, "step": step_of(waiting)},
        )
        raise
    except Exception as error:
        failure = failure_detail(error)
        logger.error("cleanup failed", extra={**fields, **error_fields(error), **failure})
        _audit_error(rt.audit, failure, delivered)
        raise
    logger.info("cleanup done", extra=report.log_fields())
    return report


def record_handler(record: SQSRecord) -> None:
    """One SQS message: its body is the EventBridge event."""
    handle_event(record.body)


def _audit_error(audit: AuditLog, failure: dict[str, str], event: BundleDelivered | None) -> None:
    # The step and the error type only: an exception's message can quote a key or a URL.
    try:
        audit.write(
            AuditEvent(
                event_type=AuditEventType.ERROR,
                stage=STAGE,
                partner=event.partner if event else None,
                month=event.month if event else None,
                detail=dict(failure),
            )
        )
    except Exception as audit_error:  # the audit trail must not mask the original failure
        logger.error("could not write the ERROR audit event", extra=error_fields(audit_error))


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An SQS batch (``batchItemFailures`` out) or one EventBridge event (its outcome out)."""
    if "Records" in event:
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        return dict(response)
    report = handle_event(event)
    return {"outcome": report.outcome.value if report else "INVALID_EVENT"}
