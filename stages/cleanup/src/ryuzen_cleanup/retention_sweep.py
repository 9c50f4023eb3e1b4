"""The retention sweep: RAW and quarantine objects older than the stack's retention go.

RAW should live minutes (sanitize deletes each object it consumes), so a RAW object older
than ``retention.rawHours`` means sanitize failed on it: each one is deleted *and*
recorded as an ``ERROR`` audit event naming its key (never its content). Quarantine
objects simply expire after ``retention.quarantineDays``. S3 lifecycle rules stay as the
backstop, but they only count whole days (and moto never runs them).

It also looks for working telemetry that outlived its month: SANITIZED and ANALYTICS
hold a partner-month only until its bundle is delivered (built on the 1st, cleaned on
delivery), so a partner-month still there ``STALE_AFTER`` past its month's end means a
build or a cleanup stopped. The sweep deletes none of it (only a delivered bundle may
release it; a 100-day lifecycle rule is the last backstop) but counts those months, and
the stack alarms on the count (``stale_working_months`` in the log line).

Each side effect runs as a named step (``list_raw``, ``audit_raw_straggler``,
``delete_raw``, ``list_quarantine``, ``delete_quarantine``, ``list_working``,
``audit_sweep``): a failed
sweep's ``ERROR`` audit event (written by the handler) says where. A sweep that failed is
simply run again by the next schedule: whatever is still old is found again.

Ages come from S3's ``LastModified`` against an injected ``now``, so a test puts objects
at chosen times instead of sleeping, and the local stack can call ``sweep`` directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog
from ryuzen_contracts.key_layout import (
    InvalidKeyPart,
    analytics_prefix,
    parse_raw_key,
    sanitized_prefix,
    validate_month,
    validate_partner_id,
)
from ryuzen_contracts.pipeline_steps import step

from ryuzen_cleanup.cleanup_settings import Clients, SweepSettings
from ryuzen_cleanup.prefix_deletion import MAX_KEYS_PER_DELETE, RetryPolicy, delete_keys

STAGE = "cleanup"
# How long after its month's end a partner-month's working telemetry may still be there.
STALE_AFTER = timedelta(days=7)


@dataclass(frozen=True)
class SweepReport:
    """What one sweep deleted (counts only)."""

    raw_deleted: int
    quarantine_deleted: int
    raw_retention_hours: int
    quarantine_retention_days: int
    # ``partner month`` of each working partner-month past STALE_AFTER (not deleted).
    stale_months: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, int]:
        """The report as plain counts (the Lambda's return value and its log line)."""
        return {
            "raw_deleted": self.raw_deleted,
            "quarantine_deleted": self.quarantine_deleted,
            "raw_retention_hours": self.raw_retention_hours,
            "quarantine_retention_days": self.quarantine_retention_days,
            "stale_working_months": len(self.stale_months),
        }


@dataclass(frozen=True)
class _Expired:
    key: str
    last_modified: datetime


def sweep(
    clients: Clients, settings: SweepSettings, now: datetime, *, policy: RetryPolicy | None = None
) -> SweepReport:
    """Delete RAW older than ``rawHours`` (each an ``ERROR``) and quarantine older than
    ``quarantineDays``; record a ``RETENTION_SWEEP`` summary when anything went."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("sweep needs a timezone-aware now")
    retention = settings.retention()
    audit = AuditLog(clients.dynamodb, settings.audit_table)
    policy = policy or RetryPolicy()

    raw_deleted = 0
    raw_pages = _expired_pages(
        clients.s3, settings.raw_bucket, now - timedelta(hours=retention.raw_hours)
    )
    for page in _stepped(raw_pages, "list_raw"):
        # Audited before the delete: a failed delete is audited again next hour, while an
        # audit write failing after the delete would lose the only trace of the object.
        with step("audit_raw_straggler"):
            for expired in page:
                _audit_raw_straggler(audit, expired, now)
        with step("delete_raw"):
            delete_keys(clients.s3, settings.raw_bucket, [item.key for item in page], policy)
        raw_deleted += len(page)

    quarantine_deleted = 0
    quarantine_pages = _expired_pages(
        clients.s3, settings.quarantine_bucket, now - timedelta(days=retention.quarantine_days)
    )
    for page in _stepped(quarantine_pages, "list_quarantine"):
        with step("delete_quarantine"):
            keys = [item.key for item in page]
            delete_keys(clients.s3, settings.quarantine_bucket, keys, policy)
        quarantine_deleted += len(page)

    stale: set[str] = set()
    with step("list_working"):
        for bucket, layout in (
            (settings.sanitized_bucket, sanitized_prefix),
            (settings.analytics_bucket, analytics_prefix),
        ):
            if bucket is not None:
                stale.update(stale_working_months(clients.s3, bucket, layout, now))

    report = SweepReport(
        raw_deleted,
        quarantine_deleted,
        retention.raw_hours,
        retention.quarantine_days,
        tuple(sorted(stale)),
    )
    if raw_deleted or quarantine_deleted or stale:
        # Only when something went: an hourly "nothing to do" would bury the trail.
        with step("audit_sweep"):
            audit.write(
                AuditEvent(
                    event_type=AuditEventType.RETENTION_SWEEP,
                    stage=STAGE,
                    occurred_at=now,
                    detail=dict(report.as_dict()),
                )
            )
    return report


def stale_working_months(
    s3: Any, bucket: str, layout: Callable[[str, str], str], now: datetime
) -> set[str]:
    """``partner month`` of each partner-month ``bucket`` holds past STALE_AFTER.

    ``layout`` is the key layout's prefix of a partner-month in that bucket
    (``sanitized_prefix`` or ``analytics_prefix``); only ``partner=``/``month=`` folder
    names are listed (two delimiter listings deep), never the objects.
    """
    # The bucket's root: what precedes "partner=" in any partner-month's prefix.
    root, _, _ = layout("partner", "2000-01").partition("partner=")
    found = set()
    for partner_folder in _folders(s3, bucket, root):
        partner = _folder_value(partner_folder, root, "partner=", validate_partner_id)
        if partner is None:
            continue
        for month_folder in _folders(s3, bucket, partner_folder):
            month = _folder_value(month_folder, partner_folder, "month=", validate_month)
            if month is not None and _month_end(month) + STALE_AFTER < now:
                found.add(f"{partner} {month}")
    return found


def _folders(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            yield str(common["Prefix"])


def _folder_value(
    folder: str, parent: str, name: str, validate: Callable[[str], str]
) -> str | None:
    """``X`` of a folder ``{parent}{name}X/``; None for anything the layout never makes."""
    value = folder.removeprefix(parent).removesuffix("/")
    if not value.startswith(name):
        return None
    try:
        return validate(value.removeprefix(name))
    except InvalidKeyPart:
        return None


def _month_end(month: str) -> datetime:
    year, number = (int(part) for part in month.split("-"))
    return datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)


def _stepped(pages: Iterator[list[_Expired]], name: str) -> Iterator[list[_Expired]]:
    """``pages``, with a failure of the listing that produces them tagged as step ``name``."""
    while True:
        with step(name):
            page = next(pages, None)
        if page is None:
            return
        yield page


def _expired_pages(s3: Any, bucket: str, cutoff: datetime) -> Iterator[list[_Expired]]:
    """Per listed page (<= 1,000 objects), those last modified before ``cutoff``."""
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(
        Bucket=bucket, PaginationConfig={"PageSize": MAX_KEYS_PER_DELETE}
    ):
        expired = [
            _Expired(str(item["Key"]), item["LastModified"])
            for item in page.get("Contents", [])
            if item["LastModified"] < cutoff
        ]
        if expired:
            yield expired


def _audit_raw_straggler(audit: AuditLog, expired: _Expired, now: datetime) -> None:
    try:
        parse_raw_key(expired.key)
        key: str | None = expired.key
    except InvalidKeyPart:
        # Not a key ingest writes: it could hold anything (even a URL), so it is not
        # copied into the audit trail; the error says what kind of object it was.
        key = None
    audit.write(
        AuditEvent(
            event_type=AuditEventType.ERROR,
            stage=STAGE,
            occurred_at=now,
            detail={
                "error": "raw_retention_exceeded" if key else "unexpected_raw_object",
                "raw_key": key,
                "age_minutes": int((now - expired.last_modified).total_seconds() // 60),
            },
        )
    )
