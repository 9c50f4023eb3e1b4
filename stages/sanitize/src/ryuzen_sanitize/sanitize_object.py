"""Sanitizing one RAW object in S3: read, transform, write, audit, delete.

The order is chosen so that a crash at any point is healed by redelivery:
1. ``transform`` computes everything in memory and fails closed (second scan,
   conservation) before any write;
2. quarantine, then SANITIZED Parquet and its certificate per partner, then the audit
   events — all at keys and ids derived from the batch id, so a rerun overwrites;
3. only then the RAW object is deleted. A missing RAW object means an earlier delivery
   finished the job: nothing to do.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ryuzen_contracts.attestation import Signer
from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog
from ryuzen_contracts.key_layout import parse_raw_key
from ryuzen_contracts.pipeline_steps import step
from ryuzen_contracts.stack_config import StackConfig

from ryuzen_sanitize.quarantine import ValueHasher
from ryuzen_sanitize.transform import PartnerOutput, TransformResult, transform

STAGE = "sanitize"
# uuid5 namespace for audit event ids derived from a batch: a redelivery writes the
# same ids, and the audit log stores each once.
_AUDIT_NAMESPACE = uuid.UUID("8d0b1f5e-2f44-4c6a-9a57-5b0c1f7e9a10")


@dataclass(frozen=True)
class SanitizeTarget:
    """Where the stage reads and writes, and under which policy."""

    raw_bucket: str
    sanitized_bucket: str
    quarantine_bucket: str
    quarantine_kms_key_id: str | None
    config: StackConfig
    # Keys the hash of quarantined values; None records no value hash (quarantine.py).
    value_hasher: ValueHasher | None = None


@dataclass
class ObjectReport:
    """What sanitizing one RAW object did (counts only)."""

    batch_id: str
    received: int = 0
    sanitized: dict[str, int] = field(default_factory=dict)
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    redactions_by_rule: dict[str, int] = field(default_factory=dict)
    written_keys: list[str] = field(default_factory=list)
    already_done: bool = False


def put_with_checksum(
    s3: Any, bucket: str, key: str, body: bytes, content_type: str, **extra: Any
) -> None:
    """PutObject with a SHA-256 checksum S3 verifies before it acknowledges the write."""
    digest = hashlib.sha256(body).digest()
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=content_type,
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
        **extra,
    )


def audit_id(batch_id: str, partner: str, kind: str) -> str:
    """A deterministic audit event id for one (batch, partner, kind)."""
    return str(uuid.uuid5(_AUDIT_NAMESPACE, f"{batch_id}:{partner}:{kind}"))


def write_outputs(
    s3: Any, audit: AuditLog, target: SanitizeTarget, result: TransformResult
) -> list[str]:
    """Write quarantine, SANITIZED and certificates, then the audit events; return the keys."""
    written = []
    encryption = (
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": target.quarantine_kms_key_id}
        if target.quarantine_kms_key_id
        else {}
    )
    for key, body in result.quarantine_objects.items():
        with step("write_quarantine"):
            put_with_checksum(
                s3, target.quarantine_bucket, key, body, "application/x-ndjson", **encryption
            )
        written.append(key)
    for output in result.partners:
        with step("write_sanitized"):
            put_with_checksum(
                s3,
                target.sanitized_bucket,
                output.parquet_key,
                output.parquet,
                "application/vnd.apache.parquet",
            )
        with step("write_certificate"):
            put_with_checksum(
                s3,
                target.sanitized_bucket,
                output.certificate_key,
                output.certificate,
                "application/json",
            )
        written += [output.parquet_key, output.certificate_key]
    for output in result.partners:
        if not (output.redactions_by_rule or output.quarantined_by_reason):
            continue
        with step("audit_scrub_violation"):
            _audit_scrub_violation(audit, result, output)
    return written


def _audit_scrub_violation(audit: AuditLog, result: TransformResult, output: PartnerOutput) -> None:
    audit.write(
        AuditEvent(
            event_type=AuditEventType.SCRUB_VIOLATION,
            stage=STAGE,
            partner=output.partner,
            month=result.month,
            occurred_at=result.received_at,
            event_id=audit_id(result.batch_id, output.partner, "SCRUB_VIOLATION"),
            detail={
                "batch_id": result.batch_id,
                "quarantined_by_reason": output.quarantined_by_reason,
                "quarantined_by_rule": output.quarantined_by_rule,
                "redactions_by_rule": output.redactions_by_rule,
            },
        )
    )


def sanitize_object(
    s3: Any,
    audit: AuditLog,
    signer: Signer,
    target: SanitizeTarget,
    key: str,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ObjectReport:
    """Sanitize the RAW object at ``key``; raise on any failure so the message is redelivered."""
    report = ObjectReport(batch_id=parse_raw_key(key).batch_id)
    try:
        with step("read_raw"):
            body = s3.get_object(Bucket=target.raw_bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        report.already_done = True
        return report
    with step("transform"):
        result = transform(body, key, target.config, signer, now, value_hasher=target.value_hasher)
    report.written_keys = write_outputs(s3, audit, target, result)
    with step("delete_raw"):
        s3.delete_object(Bucket=target.raw_bucket, Key=key)
    report.received = result.received
    report.sanitized = {output.partner: output.sanitized for output in result.partners}
    report.quarantined_by_reason = result.quarantined_by_reason
    report.redactions_by_rule = result.redactions_by_rule
    return report
