"""ULIDs: time-sortable, carry their time to the millisecond, and match their pattern."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from ryuzen_contracts.ids import (
    EVENT_ID_PATTERN,
    PARTNER_ID_PATTERN,
    ULID_PATTERN,
    UUID_PATTERN,
    is_ulid,
    new_ulid,
    ulid_time,
)

T0 = datetime(2026, 11, 28, 5, 0, 0, 123000, tzinfo=UTC)


def test_new_ulid_matches_the_pattern() -> None:
    for _ in range(200):
        value = new_ulid()
        assert len(value) == 26
        assert re.fullmatch(ULID_PATTERN, value)
        assert re.fullmatch(EVENT_ID_PATTERN, value)
        assert is_ulid(value)


def test_ulids_sort_by_time() -> None:
    # One millisecond apart, and across years: string order is time order.
    moments = [T0 + timedelta(milliseconds=i) for i in range(300)]
    moments += [datetime(year, 1, 1, tzinfo=UTC) for year in (2030, 2100, 3000, 9999)]
    ulids = [new_ulid(moment) for moment in moments]

    assert sorted(ulids) == ulids


def test_ulids_made_in_the_same_millisecond_are_distinct() -> None:
    assert len({new_ulid(T0) for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(T0, id="millis"),
        pytest.param(datetime(1970, 1, 1, tzinfo=UTC), id="epoch"),
        pytest.param(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), id="year-9999"),
        pytest.param(datetime(2026, 11, 28, 7, tzinfo=timezone(timedelta(hours=2))), id="offset"),
        pytest.param(datetime(2023, 11, 14, 22, 13, 20, 124000, tzinfo=UTC), id="float-prone"),
    ],
)
def test_ulid_time_round_trip(moment: datetime) -> None:
    decoded = ulid_time(new_ulid(moment))

    assert decoded == moment
    assert decoded.tzinfo == UTC


def test_ulid_time_round_trip_for_every_millisecond_of_a_second() -> None:
    # Float timestamps (t.timestamp() * 1000) can land a millisecond low; integers cannot.
    base = datetime(2026, 11, 28, 5, 0, 0, tzinfo=UTC)
    for millis in range(1000):
        moment = base + timedelta(milliseconds=millis)
        assert ulid_time(new_ulid(moment)) == moment


def test_ulid_time_truncates_to_the_millisecond() -> None:
    moment = T0.replace(microsecond=123999)

    assert ulid_time(new_ulid(moment)) == T0


def test_new_ulid_defaults_to_now() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    value = new_ulid()
    after = datetime.now(UTC)

    assert before <= ulid_time(value) <= after


def test_known_ulid_decodes() -> None:
    # The ulid reference implementation's example: decodeTime("01ARYZ6S41...") = 1469918176385.
    assert ulid_time("01ARYZ6S41TSV4RRFFQ69G5FAV") == datetime(
        2016, 7, 30, 22, 36, 16, 385000, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(datetime(2026, 11, 28, 5), id="naive"),
        pytest.param(datetime(1969, 12, 31, 23, 59, tzinfo=UTC), id="before-epoch"),
    ],
)
def test_new_ulid_refuses_times_it_cannot_encode(moment: datetime) -> None:
    with pytest.raises(ValueError):
        new_ulid(moment)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("01arz3ndektsv4rrffq69g5fav", id="lowercase"),
        pytest.param("01ARZ3NDEKTSV4RRFFQ69G5FA", id="25-chars"),
        pytest.param("01ARZ3NDEKTSV4RRFFQ69G5FAVX", id="27-chars"),
        pytest.param("81ARZ3NDEKTSV4RRFFQ69G5FAV", id="overflow"),
        pytest.param("01ARZ3NDEKTSV4RRFFQ69G5FAU", id="letter-U"),
        pytest.param("01ARZ3NDEKTSV4RRFFQ69G5FAI", id="letter-I"),
        pytest.param("01ARZ3NDEKTSV4RRFFQ69G5FAO", id="letter-O"),
        pytest.param("01ARZ3NDEKTSV4RRFFQ69G5FAV\n", id="trailing-newline"),
        pytest.param("3f2b8c1e-9d4a-4e7b-8c2d-1a5f6e7d8c9b", id="uuid"),
    ],
)
def test_not_ulids(value: str) -> None:
    assert not is_ulid(value)
    with pytest.raises(ValueError, match="not a ULID"):
        ulid_time(value)


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        pytest.param(UUID_PATTERN, "3f2b8c1e-9d4a-4e7b-8c2d-1a5f6e7d8c9b", True, id="uuid"),
        pytest.param(UUID_PATTERN, "3f2b8c1e9d4a4e7b8c2d1a5f6e7d8c9b", False, id="uuid-no-dash"),
        pytest.param(EVENT_ID_PATTERN, "3F2B8C1E-9D4A-4E7B-8C2D-1A5F6E7D8C9B", True, id="ev-uuid"),
        pytest.param(EVENT_ID_PATTERN, "01ARZ3NDEKTSV4RRFFQ69G5FAV", True, id="ev-ulid"),
        pytest.param(EVENT_ID_PATTERN, "01ARZ3NDEKTSV4RRFFQ69G5FA", False, id="ev-short"),
        pytest.param(PARTNER_ID_PATTERN, "acme", True, id="partner"),
        pytest.param(PARTNER_ID_PATTERN, "nimbus-ai", True, id="partner-dash"),
        pytest.param(PARTNER_ID_PATTERN, "a" * 32, True, id="partner-32"),
        pytest.param(PARTNER_ID_PATTERN, "a" * 33, False, id="partner-33"),
        pytest.param(PARTNER_ID_PATTERN, "ab", False, id="partner-2"),
        pytest.param(PARTNER_ID_PATTERN, "Acme", False, id="partner-upper"),
        pytest.param(PARTNER_ID_PATTERN, "../x", False, id="partner-traversal"),
    ],
)
def test_patterns(pattern: str, value: str, matches: bool) -> None:
    assert bool(re.fullmatch(pattern, value)) is matches
