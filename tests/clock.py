"""The clock tests move: the system's time plus however far the test has moved it, so real
processes (the simulator, the database) and the code under test still agree on "now" until
the test jumps ahead."""

from __future__ import annotations

from datetime import datetime, timedelta

from service.clock import SYSTEM


class MovableClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return SYSTEM.now() + self.offset

    def move_to(self, when: datetime) -> None:
        """From now on it is `when` (naive UTC), and time goes on from there."""
        self.offset = when - SYSTEM.now()

    def advance(self, by: timedelta) -> None:
        """Move every later `now()` forward by `by` (leases run out, keys unlock, retries
        fall due) without waiting for it."""
        self.offset += by
