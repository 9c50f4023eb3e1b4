"""The audit trail against moto DynamoDB: idempotent writes, the three read paths, safe details."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError
from ryuzen_contracts.audit_log import (
    DETAIL_MAX_KEYS,
    DETAIL_MAX_LIST,
    DETAIL_MAX_STRING,
    AuditEvent,
    AuditEventType,
    AuditLog,
    InvalidAuditDetail,
    check_detail,
    iso_millis,
    partner_month_pk,
)
from ryuzen_contracts.bundle_state import BundleState, BundleStateStore
from ryuzen_contracts.key_layout import InvalidKeyPart
from ryuzen_contracts.tables import AUDIT_EVENT_TYPE_INDEX, AUDIT_TTL_ATTRIBUTE

TABLE = "TelemetryAudit"
T0 = datetime(2026, 11, 28, 5, 0, 0, 123000, tzinfo=UTC)
SHA = "a" * 64


@pytest.fixture
def audit(ddb: Any) -> AuditLog:
    return AuditLog(ddb, TABLE)


def event(
    event_type: AuditEventType = AuditEventType.BUNDLE_CREATED,
    *,
    at: datetime = T0,
    partner: str | None = "acme",
    month: str | None = "2026-11",
    stage: str = "bundle",
    **detail: Any,
) -> AuditEvent:
    return AuditEvent(
        event_type=event_type,
        stage=stage,
        partner=partner,
        month=month,
        occurred_at=at,
        detail=detail,
    )


def all_items(ddb: Any) -> list[dict[str, Any]]:
    return list(ddb.scan(TableName=TABLE)["Items"])


# --- the event model ---------------------------------------------------------------------


def test_keys_follow_the_design() -> None:
    partner_event = event()
    system_event = event(AuditEventType.ERROR, partner=None, month=None, stage="cleanup")

    assert partner_event.pk == "PARTNER#acme#MONTH#2026-11"
    assert partner_event.sk == f"2026-11-28T05:00:00.123Z#{partner_event.event_id}"
    assert system_event.pk == "SYSTEM"


def test_occurred_at_is_stored_in_utc() -> None:
    local = datetime(2026, 11, 28, 7, 0, 0, 123000, tzinfo=timezone(timedelta(hours=2)))

    assert event(at=local).occurred_at == T0
    assert event(at=local).sk.startswith("2026-11-28T05:00:00.123Z#")


def test_iso_millis_sorts_like_time() -> None:
    moments = [T0 + timedelta(microseconds=1500 * i) for i in range(50)]

    texts = [iso_millis(moment) for moment in moments]

    assert sorted(texts) == texts
    assert iso_millis(T0) == "2026-11-28T05:00:00.123Z"
    with pytest.raises(ValueError, match="naive"):
        iso_millis(datetime(2026, 11, 28))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"partner": "../x"}, "invalid partner id", id="partner-traversal"),
        pytest.param({"partner": "Acme"}, "invalid partner id", id="partner-upper"),
        pytest.param({"partner": "acme\n"}, "invalid partner id", id="partner-newline"),
        pytest.param({"month": "2026-13"}, "invalid month", id="month-13"),
        pytest.param({"month": "26-11"}, "invalid month", id="month-short-year"),
        pytest.param({"month": None}, "together", id="partner-without-month"),
        pytest.param({"partner": None}, "together", id="month-without-partner"),
        pytest.param({"at": datetime(2026, 11, 28)}, "timezone-aware", id="naive-time"),
        pytest.param({"stage": "Bundle Stage"}, "stage", id="bad-stage"),
    ],
)
def test_invalid_events_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        event(**fields)


def test_unknown_event_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        AuditEvent(event_type=AuditEventType.ERROR, stage="ingest", payload="x")  # type: ignore[call-arg]


def test_event_types_include_the_design_lifecycle() -> None:
    names = {member.value for member in AuditEventType}

    assert names >= {
        "BUNDLE_CREATED",
        "BUNDLE_DELIVERED",
        "TELEMETRY_DELETED",
        "SCRUB_VIOLATION",
        "ERROR",
    }


# --- details: counts, rule ids, hashes and keys; never content, URLs or secrets ------------

GOOD_DETAIL: dict[str, Any] = {
    "files": 3,
    "ratio": 0.25,
    "verified": True,
    "note": None,
    "sha256": SHA,
    "object_key": "sanitized/partner=acme/month=2026-11/01JDQ3ZK9M8X7V6T5S4R3Q2P1N.parquet",
    "rule_ids": ["email", "phone", 3],
    "counts_by_rule": {"email": 2, "phone": 0},
    "longest": "x" * DETAIL_MAX_STRING,
}


@pytest.mark.parametrize(
    ("detail", "message"),
    [
        pytest.param({"s": "x" * (DETAIL_MAX_STRING + 1)}, "257 characters", id="string-257"),
        pytest.param({"l": ["x" * (DETAIL_MAX_STRING + 1)]}, "characters", id="list-item-257"),
        pytest.param({"m": {"k": "x" * (DETAIL_MAX_STRING + 1)}}, "'m.k'", id="map-value-257"),
        pytest.param({"u": "https://bucket.s3.amazonaws.com/k"}, "URL", id="https-url"),
        pytest.param({"u": "see http://example.com"}, "URL", id="http-url-in-text"),
        pytest.param({"u": "s3://raw-bucket/raw/2026/11"}, "URL", id="s3-url"),
        pytest.param({"u": "HTTPS://EXAMPLE.COM"}, "URL", id="upper-case-url"),
        pytest.param({"u": "k?X-Amz-Signature=abc123"}, "URL", id="x-amz-signature"),
        pytest.param({"u": "x-amz-credential=AKIA/2026"}, "URL", id="x-amz-credential-lower"),
        pytest.param({"l": ["ok", "ftp://host/file"]}, "URL", id="url-in-list"),
        pytest.param({"m": {"link": "s3://b/k"}}, "URL", id="url-in-map"),
        pytest.param({"m": {"inner": {"deeper": 1}}}, "detail", id="map-nested-two-levels"),
        pytest.param({"l": [{"a": 1}]}, "detail", id="map-inside-list"),
        pytest.param({"l": [[1]]}, "detail", id="list-inside-list"),
        pytest.param({f"k{i}": i for i in range(DETAIL_MAX_KEYS + 1)}, "33 keys", id="33-keys"),
        pytest.param({"l": list(range(DETAIL_MAX_LIST + 1))}, "65 items", id="list-65"),
        pytest.param(
            {"m": {f"k{i}": i for i in range(DETAIL_MAX_LIST + 1)}}, "65 keys", id="map-65"
        ),
        pytest.param({"Bad": 1}, "snake_case", id="key-upper"),
        pytest.param({"with space": 1}, "snake_case", id="key-space"),
        pytest.param({"1st": 1}, "snake_case", id="key-digit-first"),
        pytest.param({"a" * 65: 1}, "snake_case", id="key-65-chars"),
        pytest.param({"count\n": 1}, "snake_case", id="key-trailing-newline"),
        pytest.param({"user.email": 1}, "snake_case", id="key-dot"),
        pytest.param({"m": {"Bad Key": 1}}, "snake_case", id="inner-key"),
        pytest.param({"f": float("nan")}, "finite", id="nan"),
        pytest.param({"f": float("inf")}, "finite", id="inf"),
    ],
)
def test_unsafe_details_are_refused(detail: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        event(**detail)


@pytest.mark.parametrize(
    "detail",
    [
        pytest.param({"s": "x" * (DETAIL_MAX_STRING + 1)}, id="too-long"),
        pytest.param({"u": "s3://b/k"}, id="url"),
        pytest.param({"m": {"inner": {"deeper": 1}}}, id="too-deep"),
        pytest.param({f"k{i}": i for i in range(DETAIL_MAX_KEYS + 1)}, id="too-many-keys"),
        pytest.param({"Bad": 1}, id="bad-key"),
        pytest.param({"b": b"bytes"}, id="bytes"),
        pytest.param({"o": object()}, id="object"),
    ],
)
def test_check_detail_raises_invalid_audit_detail(detail: dict[str, Any]) -> None:
    with pytest.raises(InvalidAuditDetail):
        check_detail(detail)


def test_details_at_their_bounds_are_accepted() -> None:
    detail = {
        **{f"k{i}": i for i in range(DETAIL_MAX_KEYS - 2)},
        "l": list(range(DETAIL_MAX_LIST)),
        "m": {f"k{i}": i for i in range(DETAIL_MAX_LIST)},
    }

    assert len(detail) == DETAIL_MAX_KEYS
    check_detail(detail)
    check_detail(GOOD_DETAIL)


# --- writing and reading back ---------------------------------------------------------------


def test_write_and_read_back(audit: AuditLog, ddb: Any) -> None:
    written = event(**GOOD_DETAIL)

    assert audit.write(written) is True

    assert audit.for_partner_month("acme", "2026-11") == [written]
    (item,) = all_items(ddb)
    assert item["pk"] == {"S": "PARTNER#acme#MONTH#2026-11"}
    assert item["sk"] == {"S": written.sk}
    assert item["event_type"] == {"S": "BUNDLE_CREATED"}
    assert item["detail"]["M"]["ratio"] == {"N": "0.25"}


def test_read_back_keeps_detail_types(audit: AuditLog) -> None:
    audit.write(event(count=3, ratio=1.0, flag=False, nothing=None))

    (back,) = audit.for_partner_month("acme", "2026-11")

    assert back.detail == {"count": 3, "ratio": 1.0, "flag": False, "nothing": None}
    assert type(back.detail["count"]) is int
    assert type(back.detail["ratio"]) is float
    assert type(back.detail["flag"]) is bool


def test_writing_the_same_event_twice_stores_it_once(audit: AuditLog, ddb: Any) -> None:
    once = event(files=3)

    assert audit.write(once) is True
    assert audit.write(once) is False
    # A copy read back from the table is the same event too (same keys).
    (back,) = audit.for_partner_month("acme", "2026-11")
    assert audit.write(back) is False

    assert len(all_items(ddb)) == 1


def test_two_distinct_events_at_the_same_instant_are_both_stored(audit: AuditLog) -> None:
    assert audit.write(event()) is True
    assert audit.write(event()) is True  # a new event_id each time

    assert len(audit.for_partner_month("acme", "2026-11")) == 2


def test_for_partner_month_is_oldest_first_and_scoped(audit: AuditLog) -> None:
    mine = [event(at=T0 + timedelta(minutes=m)) for m in (5, 1, 3)]
    others = [
        event(partner="nimbus-ai"),
        event(month="2026-10"),
        event(AuditEventType.ERROR, partner=None, month=None),
    ]
    for written in mine + others:
        audit.write(written)

    found = audit.for_partner_month("acme", "2026-11")

    assert found == sorted(mine, key=lambda e: e.occurred_at)


def test_for_partner_month_validates_its_arguments(audit: AuditLog) -> None:
    with pytest.raises(InvalidKeyPart):
        audit.for_partner_month("../x", "2026-11")
    with pytest.raises(InvalidKeyPart):
        audit.for_partner_month("acme", "2026-13")


def test_recent_is_newest_first_limited_and_since_filtered(audit: AuditLog) -> None:
    errors = [
        event(AuditEventType.ERROR, at=T0 + timedelta(hours=h), partner=p, month=m)
        for h, p, m in [
            (1, "acme", "2026-11"),
            (2, None, None),
            (3, "nimbus-ai", "2026-11"),
            (4, None, None),
            (5, "orbital", "2026-12"),
        ]
    ]
    for written in errors:
        audit.write(written)
    audit.write(event(AuditEventType.BUNDLE_CREATED, at=T0 + timedelta(hours=6)))
    newest_first = sorted(errors, key=lambda e: e.occurred_at, reverse=True)

    assert audit.recent(AuditEventType.ERROR, since=T0) == newest_first
    assert audit.recent(AuditEventType.ERROR, since=T0, limit=2) == newest_first[:2]
    assert audit.recent(AuditEventType.ERROR, since=T0 + timedelta(hours=3)) == newest_first[:3]
    assert audit.recent(AuditEventType.ERROR, since=T0 + timedelta(hours=7)) == []
    assert audit.recent(AuditEventType.ERROR, since=T0, limit=0) == []
    assert audit.recent(AuditEventType.TELEMETRY_DELETED, since=T0) == []


def test_recent_since_is_inclusive_to_the_millisecond(audit: AuditLog) -> None:
    written = event(AuditEventType.ERROR)
    audit.write(written)

    assert audit.recent(AuditEventType.ERROR, since=T0) == [written]
    assert audit.recent(AuditEventType.ERROR, since=T0 + timedelta(milliseconds=1)) == []


def test_system_events(audit: AuditLog) -> None:
    sweeps = [
        event(
            AuditEventType.RETENTION_SWEEP, at=T0 + timedelta(minutes=m), partner=None, month=None
        )
        for m in (10, 0, 20)
    ]
    for written in sweeps:
        audit.write(written)
    audit.write(event(AuditEventType.ERROR))  # a partner-month event: not a system event

    oldest_first = sorted(sweeps, key=lambda e: e.occurred_at)
    assert audit.system_events(since=T0) == oldest_first
    assert audit.system_events(since=T0 + timedelta(minutes=5)) == oldest_first[1:]


def test_bundle_state_item_never_shows_in_audit_reads(audit: AuditLog, ddb: Any) -> None:
    audit.write(event(AuditEventType.BUNDLE_CREATED))
    store = BundleStateStore(ddb, TABLE)
    store.transition("acme", "2026-11", BundleState.BUILDING, attributes={"note": "x"})

    # The state item sits in the same partition as the partner-month's events...
    assert any(item["sk"]["S"] == "STATE#BUNDLE" for item in all_items(ddb))
    # ...but neither the partition read nor the event-type index returns it.
    assert [e.event_type for e in audit.for_partner_month("acme", "2026-11")] == [
        AuditEventType.BUNDLE_CREATED
    ]
    for event_type in AuditEventType:
        for found in audit.recent(event_type, since=datetime(2000, 1, 1, tzinfo=UTC)):
            assert found.event_type is event_type
    index_items = ddb.scan(TableName=TABLE, IndexName=AUDIT_EVENT_TYPE_INDEX)["Items"]
    assert all(item["sk"]["S"] != "STATE#BUNDLE" for item in index_items)


def test_items_carry_a_ttl(ddb: Any) -> None:
    AuditLog(ddb, TABLE, retention_days=30).write(event())

    (item,) = all_items(ddb)
    expected = int((T0 + timedelta(days=30)).timestamp())
    assert item[AUDIT_TTL_ATTRIBUTE] == {"N": str(expected)}


def test_no_ttl_when_retention_is_off(ddb: Any) -> None:
    AuditLog(ddb, TABLE, retention_days=None).write(event())

    (item,) = all_items(ddb)
    assert AUDIT_TTL_ATTRIBUTE not in item


def test_partner_month_pk_validates() -> None:
    assert partner_month_pk("nimbus-ai", "2026-01") == "PARTNER#nimbus-ai#MONTH#2026-01"
    with pytest.raises(InvalidKeyPart):
        partner_month_pk("acme#MONTH#2026-01", "2026-02")
