"""Receipt months: which month a build defaults to, when a month has ended, its days."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime

from ryuzen_contracts.key_layout import month_of, validate_month


def month_start(month: str) -> datetime:
    """The first instant (UTC) of ``YYYY-MM``."""
    validate_month(month)
    return datetime(int(month[:4]), int(month[5:]), 1, tzinfo=UTC)


def next_month_start(month: str) -> datetime:
    """The first instant (UTC) after ``YYYY-MM``: when the month has ended."""
    start = month_start(month)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def previous_month(now: datetime) -> str:
    """The UTC month before the one ``now`` falls in: a build's default."""
    current = month_start(month_of(now))
    return month_of(
        current.replace(year=current.year - 1, month=12)
        if current.month == 1
        else current.replace(month=current.month - 1)
    )


def has_ended(month: str, now: datetime) -> bool:
    """Whether every receipt time of ``month`` lies before ``now`` (UTC)."""
    return now >= next_month_start(month)


def day_date(month: str, day: int) -> date:
    """The date of day ``day`` of ``month``."""
    return date(int(month[:4]), int(month[5:]), day)


def days_in(month: str) -> int:
    """How many days ``month`` has."""
    validate_month(month)
    return calendar.monthrange(int(month[:4]), int(month[5:]))[1]
