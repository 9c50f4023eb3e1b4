"""The S3 key layout: the only module that formats or parses an S3 key.

Every derived key is a function of the batch id, so re-running a stage overwrites its
own output instead of duplicating it. The month in a key is the *receipt* month (when
ingest accepted the batch): late events fall into the next open month, never into one
that was already bundled and deleted. Every part is validated before it reaches a key,
so a hostile partner id such as ``../x`` can never address another prefix.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from ryuzen_contracts.ids import PARTNER_ID_PATTERN, ULID_PATTERN

# Every pattern is applied with fullmatch (a bare "$" also matches before a trailing
# newline) and spells digits [0-9] (in Python, \d also matches non-ASCII digits such as
# "٢"), so nothing but the exact ASCII form can reach a key.
_PARTNER_RE = re.compile(PARTNER_ID_PATTERN)
_BATCH_RE = re.compile(ULID_PATTERN)
_MONTH_RE = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")

_RAW_RE = re.compile(
    r"raw/([0-9]{4})/([0-9]{2})/([0-9]{2})/([0-9]{2})/([0-7][0-9A-HJKMNP-TV-Z]{25})\.ndjson\.gz"
)
_SANITIZED_RE = re.compile(
    r"sanitized/partner=([a-z][a-z0-9-]{2,31})/month=([0-9]{4}-[0-9]{2})/"
    r"([0-7][0-9A-HJKMNP-TV-Z]{25})\.(parquet|certificate\.dsse\.json)"
)


class InvalidKeyPart(ValueError):  # noqa: N818 -- public name, kept
    """A value that would reach an S3 key does not match its pattern."""


@dataclass(frozen=True)
class RawKey:
    """What a RAW key says: the receipt hour and the batch."""

    received_hour: datetime
    batch_id: str


@dataclass(frozen=True)
class SanitizedKey:
    """What a SANITIZED key says: partner, receipt month, batch and which file it is."""

    partner: str
    month: str
    batch_id: str
    is_certificate: bool


def validate_partner_id(partner: str) -> str:
    """Return ``partner`` when it is a valid partner id, else raise InvalidKeyPart."""
    if not isinstance(partner, str) or not _PARTNER_RE.fullmatch(partner):
        raise InvalidKeyPart(f"invalid partner id {partner!r:.40}")
    return partner


def validate_batch_id(batch_id: str) -> str:
    """Return ``batch_id`` when it is a ULID, else raise InvalidKeyPart."""
    if not isinstance(batch_id, str) or not _BATCH_RE.fullmatch(batch_id):
        raise InvalidKeyPart(f"invalid batch id {batch_id!r:.40}")
    return batch_id


def validate_month(month: str) -> str:
    """Return ``month`` when it is ``YYYY-MM``, else raise InvalidKeyPart."""
    if not isinstance(month, str) or not _MONTH_RE.fullmatch(month):
        raise InvalidKeyPart(f"invalid month {month!r:.20} (expected YYYY-MM)")
    return month


def _utc(moment: datetime) -> datetime:
    # A naive datetime would be taken as the machine's local time by astimezone(), and a
    # laptop east of UTC would then file a batch under another hour, day or month.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidKeyPart(f"naive datetime {moment.isoformat()} (a key needs a UTC time)")
    return moment.astimezone(UTC)


def month_of(moment: datetime | date) -> str:
    """The ``YYYY-MM`` month of a UTC time or date (a naive datetime is refused)."""
    if isinstance(moment, datetime):
        moment = _utc(moment)
    return f"{moment.year:04d}-{moment.month:02d}"


def raw_key(received_at: datetime, batch_id: str) -> str:
    """``raw/{yyyy}/{mm}/{dd}/{hh}/{batch_id}.ndjson.gz`` for the receipt time."""
    at = _utc(received_at)
    return f"raw/{at:%Y/%m/%d/%H}/{validate_batch_id(batch_id)}.ndjson.gz"


def parse_raw_key(key: str) -> RawKey:
    """The receipt hour and batch id of a RAW key; InvalidKeyPart when it is not one."""
    match = _RAW_RE.fullmatch(key)
    if not match:
        raise InvalidKeyPart(f"not a RAW key: {key!r:.120}")
    year, month, day, hour, batch_id = match.groups()
    try:
        hour_start = datetime(int(year), int(month), int(day), int(hour), tzinfo=UTC)
    except ValueError:
        raise InvalidKeyPart(f"not a RAW key: {key!r:.120}") from None
    return RawKey(received_hour=hour_start, batch_id=batch_id)


def sanitized_prefix(partner: str, month: str) -> str:
    """The prefix holding one partner-month's SANITIZED Parquet and certificates."""
    return f"sanitized/partner={validate_partner_id(partner)}/month={validate_month(month)}/"


def sanitized_key(partner: str, month: str, batch_id: str) -> str:
    """``sanitized/partner={p}/month={yyyy-mm}/{batch_id}.parquet``."""
    return f"{sanitized_prefix(partner, month)}{validate_batch_id(batch_id)}.parquet"


def certificate_key(partner: str, month: str, batch_id: str) -> str:
    """The zero-PII certificate beside its SANITIZED object."""
    return f"{sanitized_prefix(partner, month)}{validate_batch_id(batch_id)}.certificate.dsse.json"


def parse_sanitized_key(key: str) -> SanitizedKey:
    """Partner, month and batch of a SANITIZED Parquet or certificate key."""
    match = _SANITIZED_RE.fullmatch(key)
    if not match:
        raise InvalidKeyPart(f"not a SANITIZED key: {key!r:.120}")
    partner, month, batch_id, suffix = match.groups()
    validate_month(month)
    return SanitizedKey(partner, month, batch_id, is_certificate=suffix != "parquet")


def quarantine_key(received_on: date, batch_id: str) -> str:
    """``quarantine/{yyyy-mm-dd}/{batch_id}.ndjson.gz`` (a datetime is taken in UTC)."""
    if isinstance(received_on, datetime):
        received_on = _utc(received_on).date()
    return f"quarantine/{received_on:%Y-%m-%d}/{validate_batch_id(batch_id)}.ndjson.gz"


def quarantine_raw_key(received_on: date, batch_id: str) -> str:
    """``quarantine/{yyyy-mm-dd}/{batch_id}.raw.ndjson.gz``: rejected raw lines, on request only."""
    return quarantine_key(received_on, batch_id).removesuffix(".ndjson.gz") + ".raw.ndjson.gz"


def analytics_prefix(partner: str, month: str) -> str:
    """The hive prefix of one partner-month in ANALYTICS."""
    return f"analytics/events/partner={validate_partner_id(partner)}/month={validate_month(month)}/"


def analytics_key(partner: str, month: str, day: int, batch_id: str) -> str:
    """``analytics/events/partner={p}/month={yyyy-mm}/day={dd}/{batch_id}.parquet``."""
    validate_month(month)
    # bool is an int subclass (True would become day=01); the day must exist in the month.
    if (
        not isinstance(day, int)
        or isinstance(day, bool)
        or not 1 <= day <= calendar.monthrange(int(month[:4]), int(month[5:]))[1]
    ):
        raise InvalidKeyPart(f"invalid day {day!r:.10} for month {month}")
    return f"{analytics_prefix(partner, month)}day={day:02d}/{validate_batch_id(batch_id)}.parquet"


def bundle_prefix(partner: str, month: str) -> str:
    """``{p}/{yyyy-mm}/`` in the partner bundle bucket."""
    return f"{validate_partner_id(partner)}/{validate_month(month)}/"


def bundle_key(partner: str, month: str) -> str:
    """``{p}/{yyyy-mm}/ryuzen-telemetry-{p}-{yyyy-mm}.zip``."""
    return f"{bundle_prefix(partner, month)}ryuzen-telemetry-{partner}-{month}.zip"


def deletion_receipt_key(partner: str, month: str) -> str:
    """``{p}/{yyyy-mm}/deletion-receipt.dsse.json``: cleanup's signed receipt, beside the bundle.

    It lives in the partner bundle bucket, not a working bucket, so the partner sees it
    next to the bundle it vouches for and no working-bucket sweep can ever remove it.
    """
    return f"{bundle_prefix(partner, month)}deletion-receipt.dsse.json"
