"""Identifiers: ULIDs for batches and audit events, and the patterns ids must match.

A ULID is 48 bits of milliseconds and 80 random bits in Crockford base32: sortable by
time (S3 listings and audit timelines come out in order) and safe in an S3 key.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
EVENT_ID_PATTERN = (
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-7][0-9A-HJKMNP-TV-Z]{25})$"
)
PARTNER_ID_PATTERN = r"^[a-z][a-z0-9-]{2,31}$"

_ULID_RE = re.compile(ULID_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_MAX_ULID_MILLIS = 2**48 - 1


def new_ulid(now: datetime | None = None) -> str:
    """Return a new ULID whose time part is ``now`` (default: the current UTC time)."""
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        # A naive time would be read as the machine's local time: refuse it.
        raise ValueError("new_ulid needs a timezone-aware time")
    # Integer arithmetic: a float timestamp can land a millisecond off.
    millis = (moment - _EPOCH) // _ONE_MS
    if not 0 <= millis <= _MAX_ULID_MILLIS:
        raise ValueError("a ULID cannot encode a time before 1970")
    value = (millis << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))


def is_ulid(value: str) -> bool:
    """True when ``value`` is a canonical (upper-case) ULID."""
    # fullmatch: "$" alone would also accept a trailing newline.
    return isinstance(value, str) and bool(_ULID_RE.fullmatch(value))


def ulid_time(value: str) -> datetime:
    """The UTC time encoded in a ULID, to the millisecond."""
    if not is_ulid(value):
        raise ValueError("not a ULID")
    millis = 0
    for char in value[:10]:
        millis = millis * 32 + _CROCKFORD.index(char)
    return _EPOCH + millis * _ONE_MS
