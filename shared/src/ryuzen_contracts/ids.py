"""Identifiers: ULIDs for batches and audit events, and the patterns ids must match.

A ULID is 48 bits of milliseconds and 80 random bits in Crockford base32: sortable by
time (S3 listings and audit timelines come out in order) and safe in an S3 key.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

ULID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
EVENT_ID_PATTERN = (
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-7][0-9A-HJKMNP-TV-Z]{25})$"
)
PARTNER_ID_PATTERN = r"^[a-z][a-z0-9-]{2,31}$"

_ULID_RE = re.compile(ULID_PATTERN)


def new_ulid(now: datetime | None = None) -> str:
    """Return a new ULID whose time part is ``now`` (default: the current UTC time)."""
    moment = now or datetime.now(UTC)
    millis = int(moment.timestamp() * 1000)
    value = (millis << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))


def is_ulid(value: str) -> bool:
    """True when ``value`` is a canonical (upper-case) ULID."""
    return bool(_ULID_RE.match(value))


def ulid_time(value: str) -> datetime:
    """The UTC time encoded in a ULID, to the millisecond."""
    if not is_ulid(value):
        raise ValueError("not a ULID")
    millis = 0
    for char in value[:10]:
        millis = millis * 32 + _CROCKFORD.index(char)
    return datetime.fromtimestamp(millis / 1000, tz=UTC)
