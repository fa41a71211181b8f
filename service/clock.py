"""Time, passed in: the Clock every lease, expiry, retry and schedule reads (tests move one
instead of sleeping), and UTC as the database stores it (naive UTC) and the API shows it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time as stored: naive UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)


SYSTEM: Clock = SystemClock()


def utcnow() -> datetime:
    """The system clock's time, for what no test moves (a row's own creation time)."""
    return SYSTEM.now()


def iso(value: datetime) -> str:
    """A stored time as the API shows it: seconds, UTC, `Z`."""
    return value.replace(microsecond=0).isoformat() + "Z"


# RFC 3339 date-time (JSON Schema's "date-time" format): an offset is required.
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
                      r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})")


def parse_instant(raw: str) -> datetime:
    """An RFC 3339 date-time from a client, as stored (naive UTC); ValueError says what is
    wrong."""
    try:
        if not _RFC3339.fullmatch(raw):
            raise ValueError
        # In UTC, year 1 and year 9999 may step out of what a datetime holds.
        return datetime.fromisoformat(raw.upper()).astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        raise ValueError(f"{shown!r} is not an RFC 3339 date-time such as "
                         "2026-12-01T00:00:00Z") from None
