"""The audit trail: writes and reads the ``TelemetryAudit`` DynamoDB table.

Items are keyed ``pk = PARTNER#{p}#MONTH#{m}`` (or ``SYSTEM``) and
``sk = {iso8601}#{event_id}``; the ``event_type-sk-index`` GSI answers "recent events of
a type". The key is a pure function of the event, and the put is conditional on the key
not existing, so writing the same event twice stores it once.

Details are the one place a careless caller could leak data, so they are checked: only
short scalars (or short lists / one-level maps of them), never a URL.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from itertools import islice
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import validate_month, validate_partner_id
from ryuzen_contracts.tables import AUDIT_EVENT_TYPE_INDEX, AUDIT_TTL_ATTRIBUTE

SYSTEM_PK = "SYSTEM"
DETAIL_MAX_KEYS = 32
DETAIL_MAX_STRING = 256
DETAIL_MAX_LIST = 64
# Anything with a scheme separator ("https://", "s3://") or a presigned-URL parameter is
# refused. "://" alone, not "scheme://": the scheme pattern backtracked quadratically on
# long letter runs (0.5 ms for 256 letters), and no audit value needs a "://" anyway.
_URL_RE = re.compile(r"://|X-Amz-(?:Signature|Credential)", re.IGNORECASE)
_DETAIL_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Keys inside a count map may also be rule ids such as "EMAIL" or "IPV4".
_INNER_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


class AuditEventType(StrEnum):
    """What happened. The first five are the lifecycle DESIGN §3 names."""

    BUNDLE_CREATED = "BUNDLE_CREATED"
    BUNDLE_DELIVERED = "BUNDLE_DELIVERED"
    TELEMETRY_DELETED = "TELEMETRY_DELETED"
    SCRUB_VIOLATION = "SCRUB_VIOLATION"
    ERROR = "ERROR"
    BATCH_SANITIZED = "BATCH_SANITIZED"
    RETENTION_SWEEP = "RETENTION_SWEEP"


Scalar = str | int | float | bool | None
DetailValue = Scalar | list[Scalar] | dict[str, Scalar]


class InvalidAuditDetail(ValueError):  # noqa: N818 -- public name, kept
    """A detail value is too long, nested too deep, or looks like a URL."""


class AuditEvent(BaseModel):
    """One audit record. Details hold counts, rule ids, hashes and object keys — never content."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: AuditEventType
    stage: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,31}$")]
    partner: str | None = None
    month: str | None = None
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    event_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{8,64}$")] = Field(
        default_factory=new_ulid
    )
    detail: dict[str, DetailValue] = Field(default_factory=dict)

    @field_validator("partner")
    @classmethod
    def _partner_id(cls, value: str | None) -> str | None:
        return None if value is None else validate_partner_id(value)

    @field_validator("month")
    @classmethod
    def _month(cls, value: str | None) -> str | None:
        return None if value is None else validate_month(value)

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")
        return value.astimezone(UTC)

    @field_validator("detail")
    @classmethod
    def _safe_detail(cls, detail: dict[str, DetailValue]) -> dict[str, DetailValue]:
        check_detail(detail)
        return detail

    @model_validator(mode="after")
    def _partner_and_month_together(self) -> AuditEvent:
        if (self.partner is None) != (self.month is None):
            raise ValueError("partner and month are given together or not at all")
        return self

    @property
    def pk(self) -> str:
        """The partition key: the partner-month, or SYSTEM."""
        return (
            partner_month_pk(self.partner, self.month) if self.partner and self.month else SYSTEM_PK
        )

    @property
    def sk(self) -> str:
        """The sort key: ISO time (millisecond, UTC) then the event id."""
        return f"{iso_millis(self.occurred_at)}#{self.event_id}"


def partner_month_pk(partner: str, month: str) -> str:
    """``PARTNER#{p}#MONTH#{m}``, validating both parts."""
    return f"PARTNER#{validate_partner_id(partner)}#MONTH#{validate_month(month)}"


def iso_millis(moment: datetime) -> str:
    """``2026-11-28T05:00:00.123Z``: sorts lexically in time order. ``moment`` must be aware."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        # astimezone() would read a naive time as the machine's local time.
        raise ValueError(f"naive datetime {moment.isoformat()}: audit times must be aware")
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def check_detail(detail: Mapping[str, Any]) -> None:
    """Raise InvalidAuditDetail unless every value is a short scalar, list or flat map.

    Strings are bounded and never look like a URL; numbers are finite.
    """
    if len(detail) > DETAIL_MAX_KEYS:
        raise InvalidAuditDetail(f"detail has {len(detail)} keys (at most {DETAIL_MAX_KEYS})")
    for key, value in detail.items():
        _check_key(key)
        if isinstance(value, list):
            if len(value) > DETAIL_MAX_LIST:
                raise InvalidAuditDetail(
                    f"detail '{key}' lists {len(value)} items (at most {DETAIL_MAX_LIST})"
                )
            for item in value:
                _check_scalar(key, item)
        elif isinstance(value, dict):
            if len(value) > DETAIL_MAX_LIST:
                raise InvalidAuditDetail(
                    f"detail '{key}' maps {len(value)} keys (at most {DETAIL_MAX_LIST})"
                )
            for inner_key, item in value.items():
                _check_key(inner_key, _INNER_KEY_RE)
                _check_scalar(f"{key}.{inner_key}", item)
        else:
            _check_scalar(key, value)


def _check_key(key: str, pattern: re.Pattern[str] = _DETAIL_KEY_RE) -> None:
    # fullmatch: "$" alone would also accept a trailing newline in the key.
    if not isinstance(key, str) or not pattern.fullmatch(key):
        raise InvalidAuditDetail(f"detail key {key!r:.40} is not a short snake_case name")


def _check_scalar(where: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        # DynamoDB cannot store NaN or infinity; refuse here rather than fail the put.
        raise InvalidAuditDetail(f"detail '{where}' is not a finite number")
    if value is None or isinstance(value, bool | int | float):
        return
    if not isinstance(value, str):
        raise InvalidAuditDetail(f"detail '{where}' must be a string, number, boolean or null")
    if len(value) > DETAIL_MAX_STRING:
        raise InvalidAuditDetail(
            f"detail '{where}' is {len(value)} characters (at most {DETAIL_MAX_STRING})"
        )
    if _URL_RE.search(value):
        raise InvalidAuditDetail(
            f"detail '{where}' looks like a URL; audit records never hold URLs"
        )


class AuditLog:
    """Reads and writes audit events. Takes an injected low-level DynamoDB client."""

    def __init__(self, dynamodb: Any, table_name: str, *, retention_days: int | None = 400) -> None:
        self._ddb = dynamodb
        self._table = table_name
        self._retention = timedelta(days=retention_days) if retention_days else None

    def write(self, event: AuditEvent) -> bool:
        """Store ``event``; True when stored now, False when the same event was already there."""
        item: dict[str, Any] = {
            "pk": event.pk,
            "sk": event.sk,
            "event_type": event.event_type.value,
            "stage": event.stage,
            "event_id": event.event_id,
            "occurred_at": iso_millis(event.occurred_at),
            "detail": event.detail,
        }
        if event.partner and event.month:
            item["partner"] = event.partner
            item["month"] = event.month
        if self._retention is not None:
            expires = int((event.occurred_at + self._retention).timestamp())
            item[AUDIT_TTL_ATTRIBUTE] = expires
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={key: _to_attribute(value) for key, value in item.items()},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def for_partner_month(self, partner: str, month: str) -> list[AuditEvent]:
        """Every audit event of one partner-month, oldest first."""
        return list(self.query_partner_month(partner, month, newest_first=False))

    def system_events(self, since: datetime) -> list[AuditEvent]:
        """SYSTEM (not partner-month) events since ``since``, oldest first."""
        return list(
            self._query(
                KeyConditionExpression="pk = :pk AND sk >= :since",
                ExpressionAttributeValues={
                    ":pk": {"S": SYSTEM_PK},
                    ":since": {"S": iso_millis(since)},
                },
            )
        )

    def recent(
        self, event_type: AuditEventType, since: datetime, limit: int = 100
    ) -> list[AuditEvent]:
        """The newest events of ``event_type`` since ``since``, newest first, at most ``limit``."""
        events: list[AuditEvent] = []
        if limit <= 0:
            return events
        for event in self._query(
            IndexName=AUDIT_EVENT_TYPE_INDEX,
            KeyConditionExpression="event_type = :type AND sk >= :since",
            ExpressionAttributeValues={
                ":type": {"S": event_type.value},
                ":since": {"S": iso_millis(since)},
            },
            ScanIndexForward=False,
        ):
            events.append(event)
            if len(events) >= limit:
                break
        return events

    def query_partner_month(
        self,
        partner: str,
        month: str,
        *,
        types: Collection[AuditEventType] = (),
        since: datetime | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> Iterator[AuditEvent]:
        """One partner-month's events, of ``types`` (all when empty), since ``since``.

        Lazy: pages are fetched as the caller reads, so ``limit`` (or the caller
        stopping) ends the query early.
        """
        values: dict[str, Any] = {
            ":pk": {"S": partner_month_pk(partner, month)},
            # ISO times start with a digit; the bundle-state item's sk starts with a letter,
            # and no event's sk is exactly "A", so BETWEEN's inclusive end is harmless.
            ":letters": {"S": "A"},
        }
        condition = "pk = :pk AND sk < :letters"
        if since is not None:
            condition = "pk = :pk AND sk BETWEEN :since AND :letters"
            values[":since"] = {"S": iso_millis(since)}
        query: dict[str, Any] = {
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
        }
        if types:
            wanted = {f":type{i}": kind.value for i, kind in enumerate(dict.fromkeys(types))}
            query["FilterExpression"] = f"event_type IN ({', '.join(wanted)})"
            values.update({name: {"S": value} for name, value in wanted.items()})
        return islice(self._query(**query), limit)

    def query_recent(
        self,
        since: datetime,
        *,
        types: Collection[AuditEventType] = (),
        limit: int | None = None,
        partner: str | None = None,
        month: str | None = None,
    ) -> Iterator[AuditEvent]:
        """Events since ``since`` of ``types`` (all when empty), newest first, via the GSI.

        The GSI is partitioned by event type, so each type is one query (newest first)
        and the streams are merged by sort key; ``partner``/``month`` narrow it
        server-side. Lazy, like ``query_partner_month``.
        """
        values: dict[str, Any] = {":since": {"S": iso_millis(since)}}
        clauses: list[str] = []
        filters: dict[str, Any] = {}
        if partner is not None:
            values[":partner"] = {"S": validate_partner_id(partner)}
            clauses.append("partner = :partner")
        if month is not None:
            values[":month"] = {"S": validate_month(month)}
            clauses.append("#month = :month")
            # MONTH is a DynamoDB reserved word: the attribute needs a placeholder name.
            filters["ExpressionAttributeNames"] = {"#month": "month"}
        if clauses:
            filters["FilterExpression"] = " AND ".join(clauses)
        streams = [
            self._query(
                IndexName=AUDIT_EVENT_TYPE_INDEX,
                KeyConditionExpression="event_type = :type AND sk >= :since",
                ExpressionAttributeValues={**values, ":type": {"S": event_type.value}},
                ScanIndexForward=False,
                **filters,
            )
            # dict.fromkeys: a type named twice must not be queried (and listed) twice
            for event_type in dict.fromkeys(types or AuditEventType)
        ]
        merged = heapq.merge(*streams, key=lambda event: event.sk, reverse=True)
        return islice(merged, limit)

    def _query(self, **query: Any) -> Iterator[AuditEvent]:
        paginator = self._ddb.get_paginator("query")
        for page in paginator.paginate(TableName=self._table, **query):
            for item in page.get("Items", []):
                yield _from_item(item)


def _to_attribute(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value (floats become exact decimals)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float | Decimal):
        return {"N": str(Decimal(str(value)))}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list):
        return {"L": [_to_attribute(item) for item in value]}
    if isinstance(value, dict):
        return {"M": {str(key): _to_attribute(item) for key, item in value.items()}}
    raise TypeError(f"cannot store {type(value).__name__} in an audit item")


def _from_attribute(attribute: Mapping[str, Any]) -> Any:
    ((kind, value),) = attribute.items()
    if kind == "NULL":
        return None
    if kind in ("S", "BOOL"):
        return value
    if kind == "N":
        number = Decimal(value)
        return (
            int(number)
            if number == number.to_integral_value() and "." not in value
            else float(number)
        )
    if kind == "L":
        return [_from_attribute(item) for item in value]
    if kind == "M":
        return {key: _from_attribute(item) for key, item in value.items()}
    raise TypeError(f"unexpected DynamoDB attribute type {kind}")


def _from_item(item: Mapping[str, Any]) -> AuditEvent:
    plain = {key: _from_attribute(value) for key, value in item.items()}
    return AuditEvent(
        event_type=AuditEventType(plain["event_type"]),
        stage=plain["stage"],
        partner=plain.get("partner"),
        month=plain.get("month"),
        occurred_at=datetime.fromisoformat(str(plain["occurred_at"]).replace("Z", "+00:00")),
        event_id=plain["event_id"],
        detail=plain.get("detail") or {},
    )
