"""The audit log's read side for operators: ``query_partner_month`` and ``query_recent``.

Against moto DynamoDB (the table from ``audit_table_definition``), which, like DynamoDB,
ends a query page at 1 MB: the pagination tests write items big enough to need pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog
from ryuzen_contracts.bundle_state import BundleState, BundleStateStore
from ryuzen_contracts.key_layout import InvalidKeyPart

TABLE = "TelemetryAudit"  # the name shared/tests/conftest.py's `ddb` fixture creates
T0 = datetime(2026, 11, 28, 5, 0, 0, 123000, tzinfo=UTC)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# ~200 KB of detail: five such items fill moto's (and DynamoDB's) 1 MB query page. Digits,
# not letters: the detail check's URL pattern backtracks quadratically on long letter runs.
FAT_DETAIL: dict[str, Any] = {
    f"part_{i}": {f"k{j}": "0" * 250 for j in range(64)} for i in range(13)
}


@pytest.fixture
def audit(ddb: Any) -> AuditLog:
    return AuditLog(ddb, TABLE)


@pytest.fixture
def query_calls(ddb: Any) -> Iterator[list[dict[str, Any]]]:
    """Every Query request the client sends (one per page), in order."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)

    ddb.meta.events.register("provide-client-params.dynamodb.Query", record)
    yield calls
    ddb.meta.events.unregister("provide-client-params.dynamodb.Query", record)


def event(
    event_type: AuditEventType = AuditEventType.BUNDLE_CREATED,
    *,
    minutes: float = 0,
    partner: str | None = "acme",
    month: str | None = "2026-11",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent(
        event_type=event_type,
        stage="bundle",
        partner=partner,
        month=month,
        occurred_at=T0 + timedelta(minutes=minutes),
        detail=detail or {},
    )


def write_all(audit: AuditLog, events: list[AuditEvent]) -> None:
    for written in events:
        assert audit.write(written)


def newest_first(events: list[AuditEvent]) -> list[AuditEvent]:
    return sorted(events, key=lambda e: e.sk, reverse=True)


# --- query_partner_month -----------------------------------------------------------------


def test_partner_month_is_newest_first_and_scoped(audit: AuditLog) -> None:
    mine = [
        event(AuditEventType.SCRUB_VIOLATION, minutes=1),
        event(AuditEventType.BUNDLE_CREATED, minutes=30),
        event(AuditEventType.BUNDLE_DELIVERED, minutes=31),
    ]
    others = [
        event(partner="nimbus-ai", minutes=2),
        event(month="2026-10", minutes=3),
        event(AuditEventType.ERROR, partner=None, month=None, minutes=4),
    ]
    write_all(audit, mine + others)

    assert list(audit.query_partner_month("acme", "2026-11")) == newest_first(mine)
    assert list(audit.query_partner_month("acme", "2026-11", newest_first=False)) == sorted(
        mine, key=lambda e: e.sk
    )


def test_partner_month_filters_by_types_since_and_limit(audit: AuditLog) -> None:
    scrubs = [event(AuditEventType.SCRUB_VIOLATION, minutes=m) for m in (1, 2, 3)]
    created = event(AuditEventType.BUNDLE_CREATED, minutes=10)
    deleted = event(AuditEventType.TELEMETRY_DELETED, minutes=20)
    write_all(audit, [*scrubs, created, deleted])

    def query(**options: Any) -> list[AuditEvent]:
        return list(audit.query_partner_month("acme", "2026-11", **options))

    assert query(types=[AuditEventType.SCRUB_VIOLATION]) == newest_first(scrubs)
    assert query(types={AuditEventType.BUNDLE_CREATED, AuditEventType.TELEMETRY_DELETED}) == [
        deleted,
        created,
    ]
    # a type named twice is one filter value, not a duplicate result
    assert query(types=[AuditEventType.BUNDLE_CREATED] * 2) == [created]
    assert query(types=[AuditEventType.ERROR]) == []
    assert query(since=T0 + timedelta(minutes=2)) == [deleted, created, scrubs[2], scrubs[1]]
    assert query(since=T0 + timedelta(minutes=3), types=[AuditEventType.SCRUB_VIOLATION]) == [
        scrubs[2]
    ]
    assert query(limit=2) == [deleted, created]
    assert query(limit=0) == []


def test_partner_month_never_returns_the_bundle_state_item(audit: AuditLog, ddb: Any) -> None:
    written = event(AuditEventType.BUNDLE_DELIVERED)
    audit.write(written)
    BundleStateStore(ddb, TABLE).transition("acme", "2026-11", BundleState.BUILDING)

    assert list(audit.query_partner_month("acme", "2026-11")) == [written]
    assert list(audit.query_partner_month("acme", "2026-11", since=EPOCH)) == [written]


def test_partner_month_validates_before_querying(audit: AuditLog) -> None:
    with pytest.raises(InvalidKeyPart):
        audit.query_partner_month("Not A Partner", "2026-11")
    with pytest.raises(InvalidKeyPart):
        audit.query_partner_month("acme", "2026-13")


def test_partner_month_reads_every_page(audit: AuditLog, query_calls: list[dict]) -> None:
    fat = [event(AuditEventType.SCRUB_VIOLATION, minutes=m, detail=FAT_DETAIL) for m in range(12)]
    write_all(audit, fat)

    found = list(audit.query_partner_month("acme", "2026-11"))

    assert found == newest_first(fat)
    assert len(query_calls) >= 3  # 12 items of ~200 KB cannot come back in one 1 MB page


def test_partner_month_limit_stops_paging(audit: AuditLog, query_calls: list[dict]) -> None:
    write_all(audit, [event(minutes=m, detail=FAT_DETAIL) for m in range(12)])

    assert len(list(audit.query_partner_month("acme", "2026-11", limit=2))) == 2
    assert len(query_calls) == 1


# --- query_recent ------------------------------------------------------------------------


def test_recent_merges_every_type_newest_first(audit: AuditLog) -> None:
    mixed = [
        event(AuditEventType.SCRUB_VIOLATION, minutes=5),
        event(AuditEventType.ERROR, minutes=1, partner=None, month=None),
        event(AuditEventType.BUNDLE_CREATED, minutes=9, partner="orbital"),
        event(AuditEventType.ERROR, minutes=7),
        event(AuditEventType.TELEMETRY_DELETED, minutes=3, month="2026-10"),
        event(AuditEventType.RETENTION_SWEEP, minutes=8, partner=None, month=None),
    ]
    write_all(audit, mixed)

    assert list(audit.query_recent(EPOCH)) == newest_first(mixed)


def test_recent_filters_by_types_since_limit_partner_and_month(audit: AuditLog) -> None:
    acme_error = event(AuditEventType.ERROR, minutes=1)
    system_error = event(AuditEventType.ERROR, minutes=2, partner=None, month=None)
    orbital_created = event(AuditEventType.BUNDLE_CREATED, minutes=3, partner="orbital")
    acme_created_october = event(AuditEventType.BUNDLE_CREATED, minutes=4, month="2026-10")
    acme_deleted = event(AuditEventType.TELEMETRY_DELETED, minutes=5)
    write_all(
        audit, [acme_error, system_error, orbital_created, acme_created_october, acme_deleted]
    )

    def query(since: datetime = EPOCH, **options: Any) -> list[AuditEvent]:
        return list(audit.query_recent(since, **options))

    assert query(types=[AuditEventType.ERROR]) == [system_error, acme_error]
    assert query(types=[AuditEventType.ERROR, AuditEventType.ERROR]) == [system_error, acme_error]
    assert query(types=[AuditEventType.BUNDLE_CREATED, AuditEventType.TELEMETRY_DELETED]) == [
        acme_deleted,
        acme_created_october,
        orbital_created,
    ]
    assert query(T0 + timedelta(minutes=3)) == [acme_deleted, acme_created_october, orbital_created]
    assert query(T0 + timedelta(minutes=3, milliseconds=1)) == [acme_deleted, acme_created_october]
    assert query(limit=2) == [acme_deleted, acme_created_october]
    assert query(partner="acme") == [acme_deleted, acme_created_october, acme_error]
    assert query(partner="acme", month="2026-11") == [acme_deleted, acme_error]
    assert query(month="2026-10") == [acme_created_october]
    assert query(partner="nimbus-ai") == []
    assert query(types=[AuditEventType.BATCH_SANITIZED]) == []


def test_recent_never_returns_the_bundle_state_item(audit: AuditLog, ddb: Any) -> None:
    BundleStateStore(ddb, TABLE).transition("acme", "2026-11", BundleState.BUILDING)

    assert list(audit.query_recent(EPOCH)) == []


def test_recent_validates_partner_and_month(audit: AuditLog) -> None:
    with pytest.raises(InvalidKeyPart):
        audit.query_recent(EPOCH, partner="ACME")
    with pytest.raises(InvalidKeyPart):
        audit.query_recent(EPOCH, month="2026-1")


def test_recent_reads_every_page_and_stays_ordered(audit: AuditLog, query_calls: list) -> None:
    # Two types interleaved in time, each needing more than one page of the index.
    fat = [
        event(
            AuditEventType.SCRUB_VIOLATION if m % 2 else AuditEventType.ERROR,
            minutes=m,
            detail=FAT_DETAIL,
        )
        for m in range(16)
    ]
    write_all(audit, fat)

    found = list(
        audit.query_recent(EPOCH, types=[AuditEventType.ERROR, AuditEventType.SCRUB_VIOLATION])
    )

    assert found == newest_first(fat)
    assert len(query_calls) >= 4  # two types, eight ~200 KB items each: two pages or more each


def test_recent_limit_stops_paging(audit: AuditLog, query_calls: list) -> None:
    write_all(audit, [event(AuditEventType.ERROR, minutes=m, detail=FAT_DETAIL) for m in range(12)])

    found = list(audit.query_recent(EPOCH, types=[AuditEventType.ERROR], limit=3))

    assert [e.occurred_at for e in found] == [T0 + timedelta(minutes=m) for m in (11, 10, 9)]
    assert len(query_calls) == 1
