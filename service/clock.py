"""Time, passed in: the Clock every lease, expiry, retry and schedule reads (tests move one
instead of sleeping), and UTC as the database stores it (naive UTC) and the API shows it."""

from __future__ import annotations

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
