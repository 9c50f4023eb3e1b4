"""Lambda entry point: SQS messages carrying S3 event notifications from the RAW bucket.

Thin on purpose: read settings once, build clients once, and hand each S3 record to
``sanitize_object``. powertools' batch processor reports partial failures, so one bad
object is redelivered alone and never drags the rest of the batch with it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import Field
from ryuzen_contracts.attestation import Signer
from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog
from ryuzen_contracts.aws_clients import make_client
from ryuzen_contracts.key_layout import InvalidKeyPart, parse_raw_key
from ryuzen_contracts.log_safety import error_fields
from ryuzen_contracts.pipeline_steps import failure_detail, step_of
from ryuzen_contracts.s3_notifications import s3_keys
from ryuzen_contracts.settings import StageSettings
from ryuzen_contracts.signing import KmsSigner, LocalSigner
from ryuzen_contracts.stack_config import StackConfig

from ryuzen_sanitize.quarantine import ValueHasher, value_hasher_from_kms
from ryuzen_sanitize.sanitize_object import STAGE, ObjectReport, SanitizeTarget, sanitize_object
from ryuzen_sanitize.validation import Reason

logger = Logger(service="ryuzen-sanitize")
processor = BatchProcessor(event_type=EventType.SQS)
# Quarantine reasons that mean PII (or a field that could carry it, such as ``prompt``)
# arrived; the other reasons are malformed telemetry, not a privacy signal.
PII_REASONS = frozenset({Reason.PII_IN_IDENTIFIER, Reason.PII_IN_TEXT, Reason.UNKNOWN_FIELD})


class SanitizeSettings(StageSettings):
    """Environment of the sanitize Lambda."""

    raw_bucket: str = Field(alias="RAW_BUCKET")
    sanitized_bucket: str = Field(alias="SANITIZED_BUCKET")
    quarantine_bucket: str = Field(alias="QUARANTINE_BUCKET")
    quarantine_kms_key_id: str | None = Field(default=None, alias="QUARANTINE_KMS_KEY_ID")
    # The KMS HMAC key behind the quarantined-value hash (quarantine.py); unset, quarantine
    # records carry no value hash at all.
    quarantine_hash_kms_key_id: str | None = Field(default=None, alias="QUARANTINE_HASH_KMS_KEY_ID")
    audit_table: str = Field(alias="AUDIT_TABLE")
    stack_config: str = Field(alias="STACK_CONFIG")
    signing_kms_key_id: str | None = Field(default=None, alias="SIGNING_KMS_KEY_ID")
    signing_key_file: str | None = Field(default=None, alias="SIGNING_KEY_FILE")


class _Runtime:
    """Everything built once per Lambda container."""

    def __init__(self, settings: SanitizeSettings) -> None:
        self.s3 = make_client("s3")
        self.dynamodb = make_client("dynamodb")
        self.audit = AuditLog(self.dynamodb, settings.audit_table)
        self.signer = _signer(settings)
        self.settings = settings
        self.target = SanitizeTarget(
            raw_bucket=settings.raw_bucket,
            sanitized_bucket=settings.sanitized_bucket,
            quarantine_bucket=settings.quarantine_bucket,
            quarantine_kms_key_id=settings.quarantine_kms_key_id,
            config=StackConfig.from_json(settings.stack_config),
            value_hasher=_value_hasher(settings),
        )


def _value_hasher(settings: SanitizeSettings) -> ValueHasher | None:
    if not settings.quarantine_hash_kms_key_id:
        return None
    return value_hasher_from_kms(make_client("kms"), settings.quarantine_hash_kms_key_id)


def _signer(settings: SanitizeSettings) -> Signer:
    if settings.signing_kms_key_id:
        return KmsSigner(make_client("kms"), settings.signing_kms_key_id)
    if settings.signing_key_file:
        return LocalSigner.from_file(Path(settings.signing_key_file))
    raise RuntimeError("set SIGNING_KMS_KEY_ID (AWS) or SIGNING_KEY_FILE (local stack)")


@cache
def runtime() -> _Runtime:
    """The container's runtime, built on first use (settings fail fast, with their names)."""
    return _Runtime(SanitizeSettings.from_environ())


def reset_runtime() -> None:
    """Forget the cached settings and clients (the local stack restarts stages in-process)."""
    runtime.cache_clear()


def record_handler(record: SQSRecord) -> None:
    """Sanitize every RAW object one SQS message names; raise to have it redelivered."""
    rt = runtime()
    for key in s3_keys(record.body, rt.target.raw_bucket):
        try:
            parse_raw_key(key)
        except InvalidKeyPart:
            # Not an object ingest writes: retrying cannot help, the retention sweep removes it.
            logger.warning(
                "ignoring an object that is not a RAW batch",
                extra={"message_id": record.message_id},
            )
            _audit_error(rt.audit, {"step": "parse_key", "error": "not_a_raw_key"}, None)
            continue
        try:
            report = sanitize_object(rt.s3, rt.audit, rt.signer, rt.target, key)
        except Exception as error:
            logger.error("sanitize failed", extra={**error_fields(error), "step": step_of(error)})
            _audit_error(rt.audit, failure_detail(error), key)
            raise
        logger.info(
            "sanitized",
            extra={
                "batch_id": report.batch_id,
                "received": report.received,
                "sanitized": report.sanitized,
                "quarantined": report.quarantined_by_reason,
                "redactions": report.redactions_by_rule,
                "scrub_violations": scrub_violations(report),
                "already_done": report.already_done,
            },
        )


def scrub_violations(report: ObjectReport) -> int:
    """PII findings in one RAW object: each redaction plus each PII-class quarantine.

    The counts of its ``SCRUB_VIOLATION`` audit events, as one number: the "sanitized" log
    line carries it so that the stack's SCRUB_VIOLATION alarm (a CloudWatch metric filter
    summing ``$.scrub_violations``) sees redacted PII too, which ``onPii: redact`` (the
    default) never quarantines. A count, never a value.
    """
    quarantined = sum(
        count for reason, count in report.quarantined_by_reason.items() if reason in PII_REASONS
    )
    return quarantined + sum(report.redactions_by_rule.values())


def _audit_error(audit: AuditLog, failure: dict[str, str], key: str | None) -> None:
    # The step and the error type only: an exception's message can quote event data.
    detail: dict[str, str | None] = {
        **failure,
        "raw_key": key if key and len(key) < 200 else None,
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
