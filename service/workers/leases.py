"""Keeping a lease while work goes on: a thread renews it a few times per lease."""

# A worker that holds payments (or a reconciliation run) longer than one lease (a batch of slow
# provider calls, a long statement) renews them, so no other worker takes them over while it still
# works. If the whole process stops (SIGSTOP, a lost host) the renewals stop too, the lease runs
# out, and another worker takes over; what the stopped worker then tries to apply is fenced out by
# the lease token.

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import structlog

log = structlog.get_logger()
# Renew this many times per lease period: one slow or failed renewal leaves time for more.
RENEWALS_PER_LEASE = 3


class LeaseKeeper:
    """Calls `renew()` every lease / 3 until stopped. `renew` returns False once the lease
    is no longer ours; `lost` then stays True."""

    def __init__(self, renew: Callable[[], bool], lease: timedelta, name: str) -> None:
        self.renew = renew
        self.interval = lease.total_seconds() / RENEWALS_PER_LEASE
        self.name = name
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{name}", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.renew():
                    self.lost = True
                    log.warning("lease.lost", holder=self.name)
                    return
            except Exception as exc:  # noqa: BLE001 - the database may be down: try again
                log.warning("lease.renew_failed", holder=self.name, error=type(exc).__name__)

    @contextmanager
    def held(self) -> Iterator[LeaseKeeper]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=self.interval + 5)
