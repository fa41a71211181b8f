"""UTC time as the database stores it (naive UTC) and as the API shows it."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def iso(value: datetime) -> str:
    """A stored time as the API shows it: seconds, UTC, `Z`."""
    return value.replace(microsecond=0).isoformat() + "Z"
