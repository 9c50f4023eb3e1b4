"""S3 key layout (DESIGN §3): exact formats, round trips, and no hostile part ever reaches a key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from ryuzen_contracts import key_layout
from ryuzen_contracts.key_layout import (
    InvalidKeyPart,
    RawKey,
    SanitizedKey,
    analytics_key,
    analytics_prefix,
    bundle_key,
    bundle_prefix,
    certificate_key,
    month_of,
    parse_raw_key,
    parse_sanitized_key,
    quarantine_key,
    raw_key,
    sanitized_key,
    sanitized_prefix,
)

BATCH = "01JDQ3ZK9M8X7V6T5S4R3Q2P1N"
RECEIVED = datetime(2026, 11, 28, 5, 7, 9, 123456, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))


# --- exact formats ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param(
            lambda: raw_key(RECEIVED, BATCH), f"raw/2026/11/28/05/{BATCH}.ndjson.gz", id="raw"
        ),
        pytest.param(
            lambda: sanitized_key("acme", "2026-11", BATCH),
            f"sanitized/partner=acme/month=2026-11/{BATCH}.parquet",
            id="sanitized",
        ),
        pytest.param(
            lambda: certificate_key("acme", "2026-11", BATCH),
            f"sanitized/partner=acme/month=2026-11/{BATCH}.certificate.dsse.json",
            id="certificate",
        ),
        pytest.param(
            lambda: quarantine_key(date(2026, 11, 28), BATCH),
            f"quarantine/2026-11-28/{BATCH}.ndjson.gz",
            id="quarantine",
        ),
        pytest.param(
            lambda: analytics_key("nimbus-ai", "2026-11", 3, BATCH),
            f"analytics/events/partner=nimbus-ai/month=2026-11/day=03/{BATCH}.parquet",
            id="analytics",
        ),
        pytest.param(
            lambda: bundle_key("acme", "2026-11"),
            "acme/2026-11/ryuzen-telemetry-acme-2026-11.zip",
            id="bundle",
        ),
        pytest.param(
            lambda: sanitized_prefix("acme", "2026-11"),
            "sanitized/partner=acme/month=2026-11/",
            id="sanitized-prefix",
        ),
        pytest.param(
            lambda: analytics_prefix("acme", "2026-11"),
            "analytics/events/partner=acme/month=2026-11/",
            id="analytics-prefix",
        ),
        pytest.param(lambda: bundle_prefix("acme", "2026-11"), "acme/2026-11/", id="bundle-prefix"),
    ],
)
def test_exact_key_formats(key: Callable[[], str], expected: str) -> None:
    assert key() == expected


def test_keys_of_a_partner_month_live_under_its_prefixes() -> None:
    assert sanitized_key("acme", "2026-11", BATCH).startswith(sanitized_prefix("acme", "2026-11"))
    assert certificate_key("acme", "2026-11", BATCH).startswith(sanitized_prefix("acme", "2026-11"))
    assert analytics_key("acme", "2026-11", 28, BATCH).startswith(
        analytics_prefix("acme", "2026-11")
    )
    assert bundle_key("acme", "2026-11").startswith(bundle_prefix("acme", "2026-11"))


def test_keys_are_a_function_of_the_batch_id() -> None:
    # Re-running a stage must overwrite, never duplicate: same inputs, same key.
    later_same_hour = RECEIVED.replace(minute=59, second=59)

    assert raw_key(RECEIVED, BATCH) == raw_key(later_same_hour, BATCH)
    assert sanitized_key("acme", "2026-11", BATCH) == sanitized_key("acme", "2026-11", BATCH)


def test_raw_key_uses_the_utc_hour() -> None:
    local = datetime(2026, 12, 1, 1, 30, tzinfo=PLUS_TWO)  # 2026-11-30T23:30Z

    assert raw_key(local, BATCH) == f"raw/2026/11/30/23/{BATCH}.ndjson.gz"


@pytest.mark.parametrize(
    ("moment", "month"),
    [
        pytest.param(RECEIVED, "2026-11", id="utc"),
        pytest.param(
            datetime(2026, 12, 1, 1, 30, tzinfo=PLUS_TWO), "2026-11", id="local-next-month"
        ),
        pytest.param(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "2026-12", id="year-end"),
        pytest.param(date(2027, 1, 1), "2027-01", id="date"),
    ],
)
def test_month_of(moment: datetime | date, month: str) -> None:
    assert month_of(moment) == month


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: raw_key(datetime(2026, 11, 28, 5), BATCH), id="raw_key"),
        pytest.param(lambda: month_of(datetime(2026, 11, 28, 5)), id="month_of"),
        pytest.param(lambda: quarantine_key(datetime(2026, 11, 28, 5), BATCH), id="quarantine"),
    ],
)
def test_naive_datetimes_are_refused(call: Callable[[], Any]) -> None:
    # A naive time would be read as the machine's local time and could file the batch
    # under another hour, day or month.
    with pytest.raises(InvalidKeyPart, match="naive"):
        call()


def test_quarantine_key_takes_a_datetime_in_utc() -> None:
    local = datetime(2026, 12, 1, 1, 30, tzinfo=PLUS_TWO)

    assert quarantine_key(local, BATCH) == f"quarantine/2026-11-30/{BATCH}.ndjson.gz"


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "received",
    [
        pytest.param(RECEIVED, id="utc"),
        pytest.param(datetime(2026, 1, 1, 0, tzinfo=UTC), id="year-start"),
        pytest.param(datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC), id="leap-day"),
        pytest.param(datetime(2026, 12, 1, 1, tzinfo=PLUS_TWO), id="non-utc-input"),
    ],
)
def test_raw_key_round_trip(received: datetime) -> None:
    parsed = parse_raw_key(raw_key(received, BATCH))

    hour = received.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    assert parsed == RawKey(received_hour=hour, batch_id=BATCH)
    assert parsed.received_hour.tzinfo == UTC


@pytest.mark.parametrize("partner", ["acme", "nimbus-ai", "a2c", "z" * 32])
@pytest.mark.parametrize("month", ["2026-01", "2026-12", "1999-07"])
def test_sanitized_and_certificate_keys_round_trip(partner: str, month: str) -> None:
    assert parse_sanitized_key(sanitized_key(partner, month, BATCH)) == SanitizedKey(
        partner, month, BATCH, is_certificate=False
    )
    assert parse_sanitized_key(certificate_key(partner, month, BATCH)) == SanitizedKey(
        partner, month, BATCH, is_certificate=True
    )


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(f"raw/2026/11/28/05/{BATCH}.ndjson", id="no-gz"),
        pytest.param(f"raw/2026/11/28/5/{BATCH}.ndjson.gz", id="one-digit-hour"),
        pytest.param(f"raw/2026/11/28/24/{BATCH}.ndjson.gz", id="hour-24"),
        pytest.param(f"raw/2026/13/28/05/{BATCH}.ndjson.gz", id="month-13"),
        pytest.param(f"raw/2026/02/30/05/{BATCH}.ndjson.gz", id="feb-30"),
        pytest.param(f"raw/2026/11/28/05/{BATCH.lower()}.ndjson.gz", id="lowercase-batch"),
        pytest.param(f"raw/2026/11/28/05/x/{BATCH}.ndjson.gz", id="extra-segment"),
        pytest.param(f"raw/2026/11/28/05/../{BATCH}.ndjson.gz", id="traversal"),
        pytest.param(f"raw/2026/11/28/05/{BATCH}.ndjson.gz\n", id="trailing-newline"),
        pytest.param(f"/raw/2026/11/28/05/{BATCH}.ndjson.gz", id="leading-slash"),
        pytest.param(
            f"raw/\u0662\u0660\u0662\u0666/11/28/05/{BATCH}.ndjson.gz", id="arabic-indic-digits"
        ),
        pytest.param(f"sanitized/partner=acme/month=2026-11/{BATCH}.parquet", id="not-raw"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_raw_key_refuses_other_keys(key: str) -> None:
    with pytest.raises(InvalidKeyPart):
        parse_raw_key(key)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(f"sanitized/partner=acme/month=2026-13/{BATCH}.parquet", id="month-13"),
        pytest.param(f"sanitized/partner=acme/month=2026-00/{BATCH}.parquet", id="month-00"),
        pytest.param(f"sanitized/partner=Acme/month=2026-11/{BATCH}.parquet", id="partner-upper"),
        pytest.param(f"sanitized/partner=../x/month=2026-11/{BATCH}.parquet", id="traversal"),
        pytest.param(f"sanitized/partner=acme/month=2026-11/{BATCH}.csv", id="other-suffix"),
        pytest.param(f"sanitized/partner=acme/month=2026-11/{BATCH}.parquet\n", id="newline"),
        pytest.param(
            f"sanitized/partner=acme/month=\u0662\u0660\u0662\u0666-11/{BATCH}.parquet",
            id="arabic-year",
        ),
        pytest.param(f"sanitized/partner=acme/month=2026-11/x/{BATCH}.parquet", id="nested"),
        pytest.param(f"raw/2026/11/28/05/{BATCH}.ndjson.gz", id="not-sanitized"),
    ],
)
def test_parse_sanitized_key_refuses_other_keys(key: str) -> None:
    with pytest.raises(InvalidKeyPart):
        parse_sanitized_key(key)


# --- hostile parts never reach a key ------------------------------------------------------

HOSTILE_PARTNERS = [
    pytest.param("../x", id="traversal"),
    pytest.param("..", id="dotdot"),
    pytest.param("A", id="single-upper"),
    pytest.param("Acme", id="upper"),
    pytest.param("", id="empty"),
    pytest.param("acme/x", id="slash"),
    pytest.param("acme/../nimbus", id="inner-traversal"),
    pytest.param("ab", id="too-short"),
    pytest.param("a" * 33, id="too-long"),
    pytest.param("a" * 10_000, id="very-long"),
    pytest.param("\u0430cme", id="cyrillic-a"),
    pytest.param("acm\u00e9", id="accent"),
    pytest.param("acme\n", id="trailing-newline"),
    pytest.param("acme\x00", id="nul"),
    pytest.param(" acme", id="leading-space"),
    pytest.param("1acme", id="digit-first"),
    pytest.param("-acme", id="dash-first"),
    pytest.param("acme_co", id="underscore"),
    pytest.param("acme=x", id="equals"),
    pytest.param(None, id="none"),
]

PARTNER_FUNCTIONS = [
    pytest.param(lambda p: sanitized_key(p, "2026-11", BATCH), id="sanitized_key"),
    pytest.param(lambda p: certificate_key(p, "2026-11", BATCH), id="certificate_key"),
    pytest.param(lambda p: sanitized_prefix(p, "2026-11"), id="sanitized_prefix"),
    pytest.param(lambda p: analytics_key(p, "2026-11", 1, BATCH), id="analytics_key"),
    pytest.param(lambda p: analytics_prefix(p, "2026-11"), id="analytics_prefix"),
    pytest.param(lambda p: bundle_key(p, "2026-11"), id="bundle_key"),
    pytest.param(lambda p: bundle_prefix(p, "2026-11"), id="bundle_prefix"),
]


@pytest.mark.parametrize("build", PARTNER_FUNCTIONS)
@pytest.mark.parametrize("partner", HOSTILE_PARTNERS)
def test_hostile_partner_ids_are_refused(build: Callable[[Any], str], partner: Any) -> None:
    with pytest.raises(InvalidKeyPart, match="invalid partner id"):
        build(partner)


def test_error_message_truncates_a_very_long_partner_id() -> None:
    with pytest.raises(InvalidKeyPart) as caught:
        bundle_key("a" * 10_000, "2026-11")

    assert len(str(caught.value)) < 100


BAD_MONTHS = [
    pytest.param("2026-13", id="month-13"),
    pytest.param("2026-00", id="month-00"),
    pytest.param("26-01", id="two-digit-year"),
    pytest.param("2026-1", id="one-digit-month"),
    pytest.param("2026/01", id="slash"),
    pytest.param("2026-01-01", id="a-date"),
    pytest.param("2026-01\n", id="trailing-newline"),
    pytest.param("\u0662\u0660\u0662\u0666-01", id="arabic-indic-digits"),
    pytest.param("\uff12\uff10\uff12\uff16-01", id="fullwidth-digits"),
    pytest.param("", id="empty"),
    pytest.param("../..", id="traversal"),
    pytest.param(None, id="none"),
]

MONTH_FUNCTIONS = [
    pytest.param(lambda m: sanitized_key("acme", m, BATCH), id="sanitized_key"),
    pytest.param(lambda m: certificate_key("acme", m, BATCH), id="certificate_key"),
    pytest.param(lambda m: analytics_key("acme", m, 1, BATCH), id="analytics_key"),
    pytest.param(lambda m: bundle_key("acme", m), id="bundle_key"),
    pytest.param(key_layout.validate_month, id="validate_month"),
]


@pytest.mark.parametrize("build", MONTH_FUNCTIONS)
@pytest.mark.parametrize("month", BAD_MONTHS)
def test_bad_months_are_refused(build: Callable[[Any], str], month: Any) -> None:
    with pytest.raises(InvalidKeyPart, match="invalid month"):
        build(month)


BAD_BATCHES = [
    pytest.param("", id="empty"),
    pytest.param(BATCH.lower(), id="lowercase"),
    pytest.param(BATCH[:-1], id="25-chars"),
    pytest.param(BATCH + "A", id="27-chars"),
    pytest.param("8" + BATCH[1:], id="overflow-first-char"),
    pytest.param(BATCH[:-1] + "U", id="letter-U"),
    pytest.param(BATCH[:-1] + "L", id="letter-L"),
    pytest.param(BATCH + "\n", id="trailing-newline"),
    pytest.param("../" + BATCH[3:], id="traversal"),
    pytest.param("3f2b8c1e-9d4a-4e7b-8c2d-1a5f6e7d8c9b", id="uuid"),
    pytest.param(None, id="none"),
]

BATCH_FUNCTIONS = [
    pytest.param(lambda b: raw_key(RECEIVED, b), id="raw_key"),
    pytest.param(lambda b: sanitized_key("acme", "2026-11", b), id="sanitized_key"),
    pytest.param(lambda b: certificate_key("acme", "2026-11", b), id="certificate_key"),
    pytest.param(lambda b: quarantine_key(date(2026, 11, 28), b), id="quarantine_key"),
    pytest.param(lambda b: analytics_key("acme", "2026-11", 1, b), id="analytics_key"),
]


@pytest.mark.parametrize("build", BATCH_FUNCTIONS)
@pytest.mark.parametrize("batch_id", BAD_BATCHES)
def test_bad_batch_ids_are_refused(build: Callable[[Any], str], batch_id: Any) -> None:
    with pytest.raises(InvalidKeyPart, match="invalid batch id"):
        build(batch_id)


@pytest.mark.parametrize(
    ("month", "day"),
    [
        pytest.param("2026-11", 0, id="zero"),
        pytest.param("2026-11", 32, id="32"),
        pytest.param("2026-11", -1, id="negative"),
        pytest.param("2026-11", 31, id="november-31"),
        pytest.param("2026-02", 29, id="feb-29-non-leap"),
        pytest.param("2026-11", True, id="bool"),
        pytest.param("2026-11", "01", id="string"),
        pytest.param("2026-11", 1.0, id="float"),
        pytest.param("2026-11", None, id="none"),
    ],
)
def test_bad_days_are_refused(month: str, day: Any) -> None:
    with pytest.raises(InvalidKeyPart, match="invalid day"):
        analytics_key("acme", month, day, BATCH)


@pytest.mark.parametrize(
    ("month", "day"),
    [("2026-11", 1), ("2026-11", 30), ("2026-12", 31), ("2028-02", 29), ("2026-02", 28)],
)
def test_good_days_are_accepted(month: str, day: int) -> None:
    assert analytics_key("acme", month, day, BATCH).endswith(f"/day={day:02d}/{BATCH}.parquet")


def test_validators_return_their_input() -> None:
    assert key_layout.validate_partner_id("nimbus-ai") == "nimbus-ai"
    assert key_layout.validate_month("2026-11") == "2026-11"
    assert key_layout.validate_batch_id(BATCH) == BATCH


def test_invalid_key_part_is_a_value_error() -> None:
    # Callers catch ValueError at their edges; InvalidKeyPart must be one.
    assert issubclass(InvalidKeyPart, ValueError)
