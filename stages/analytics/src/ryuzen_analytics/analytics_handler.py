"""Lambda entry point: SQS messages carrying S3 event notifications from the SANITIZED bucket.

Thin on purpose: read settings once, build clients once, and hand each SANITIZED Parquet
key to ``normalize_object``. powertools' batch processor reports partial failures, so one
bad object is redelivered alone and never drags the rest of the batch with it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import Field
from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog
from ryuzen_contracts.aws_clients import make_client
from ryuzen_contracts.key_layout import InvalidKeyPart, SanitizedKey, parse_sanitized_key
from ryuzen_contracts.log_safety import error_fields
from ryuzen_contracts.pipeline_steps import failure_detail, step_of
from ryuzen_contracts.s3_notifications import s3_keys
from ryuzen_contracts.settings import StageSettings

from ryuzen_analytics.analytics_object import STAGE, AnalyticsTarget, normalize_object

logger = Logger(service="ryuzen-analytics")
processor = BatchProcessor(event_type=EventType.SQS)


class AnalyticsSettings(StageSettings):
    """Environment of the analytics Lambda."""

    sanitized_bucket: str = Field(alias="SANITIZED_BUCKET")
    analytics_bucket: str = Field(alias="ANALYTICS_BUCKET")
    audit_table: str = Field(alias="AUDIT_TABLE")


class _Runtime:
    """Everything built once per Lambda container."""

    def __init__(self, settings: AnalyticsSettings) -> None:
        self.s3 = make_client("s3")
        self.dynamodb = make_client("dynamodb")
        self.audit = AuditLog(self.dynamodb, settings.audit_table)
        self.settings = settings
        self.target = AnalyticsTarget(
            sanitized_bucket=settings.sanitized_bucket,
            analytics_bucket=settings.analytics_bucket,
        )


@cache
def runtime() -> _Runtime:
    """The container's runtime, built on first use (settings fail fast, with their names)."""
    return _Runtime(AnalyticsSettings.from_environ())


def reset_runtime() -> None:
    """Forget the cached settings and clients (the local stack restarts stages in-process)."""
    runtime.cache_clear()


def sanitized_parquet_key(key: str) -> SanitizedKey | None:
    """What ``key`` says when it is SANITIZED Parquet; None for a certificate or anything else."""
    try:
        parsed = parse_sanitized_key(key)
    except InvalidKeyPart:
        return None
    return None if parsed.is_certificate else parsed


def record_handler(record: SQSRecord) -> None:
    """Normalize every SANITIZED object one SQS message names; raise to have it redelivered."""
    rt = runtime()
    for key in s3_keys(record.body, rt.target.sanitized_bucket):
        if sanitized_parquet_key(key) is None:
            # Certificates, or objects no stage writes: retrying cannot make them Parquet.
            logger.info(
                "ignoring an object that is not SANITIZED Parquet",
                extra={"message_id": record.message_id},
            )
            continue
        try:
            report = normalize_object(rt.s3, rt.target, key)
        except Exception as error:
            logger.error("analytics failed", extra={**error_fields(error), "step": step_of(error)})
            _audit_error(rt.audit, failure_detail(error), key)
            raise
        logger.info(
            "normalized",
            extra={
                "batch_id": report.batch_id,
                "partner": report.partner,
                "month": report.month,
                "rows_in": report.rows_in,
                "rows_out": report.rows_out,
                "duplicates": report.duplicates,
                "late": report.late,
                "objects_written": len(report.written_keys),
            },
        )


def _audit_error(audit: AuditLog, failure: dict[str, str], key: str) -> None:
    # The step and the error type only: an exception's message can quote event data.
    detail: dict[str, str | None] = {
        **failure,
        "sanitized_key": key if len(key) < 200 else None,
    }
    try:
        audit.write(AuditEvent(event_type=AuditEventType.ERROR, stage=STAGE, detail=detail))
    except Exception as audit_error:  # the audit trail must not mask the original failure
        logger.error("could not write the ERROR audit event", extra=error_fields(audit_error))


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch in, ``batchItemFailures`` out."""
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
