"""Whether the database answered: which errors mean it did not, and a memory of it."""

# A database that refuses connections fails a request at once; one that hangs (a stopped server
# keeps its sockets open) costs each request the full connect and read timeouts. So once a request
# has seen the database fail, the gateway answers the next ones with 503 at once for `hold`
# seconds, then lets a request try again: recovery needs nobody.

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import exc as sa_exc

from service.errors import Unavailable

# Seconds a client is told to wait before retrying a request the database could not serve.
RETRY_AFTER_SECONDS = 5
# MySQL/MariaDB error codes that say "not now" rather than "this request is wrong": too
# many connections, shutting down, lock wait timeout, deadlock, connection killed, cannot
# connect, server gone away, connection lost (also a read timeout), commands out of sync,
# lost at handshake.
UNAVAILABLE_CODES = frozenset({1040, 1053, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2014,
                               2055})


# Of those, the ones that say "busy" (a contended row), not "down": they answer 503 but say
# nothing about the next request.
BUSY_CODES = frozenset({1205, 1213})


def is_busy(error: BaseException) -> bool:
    """True when `error` is MySQL's deadlock or lock wait timeout: the work may be retried."""
    args: tuple[object, ...] = getattr(getattr(error, "orig", None), "args", ())
    return len(args) > 0 and args[0] in BUSY_CODES


def is_down(error: BaseException) -> bool:
    """True when `error` means the database itself is not answering (refused, gone, hung),
    so the next requests would fail the same way."""
    if not is_unavailable(error):
        return False
    args = getattr(getattr(error, "orig", None), "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    if code in BUSY_CODES:
        return False
    # SQLite's "database is locked" is a busy database, not a missing one.
    return not (code is None and "locked" in str(getattr(error, "orig", "")))


def is_unavailable(error: BaseException) -> bool:
    """True when `error` means the database did not serve the request (down, hung, busy)."""
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection came free in time
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
        return False
    args = getattr(error.orig, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    # No numeric code: SQLite's "database is locked", a socket error below the protocol.
    return code is None or code == 0 or code in UNAVAILABLE_CODES


def unavailable(detail: str = "the payment database is not answering; retry shortly",
                ) -> Unavailable:
    return Unavailable(detail, field=None, retry_after=RETRY_AFTER_SECONDS,
                       dependency="database")


class Breaker:
    """Remembers for `hold` seconds that the database failed a request."""

    def __init__(self, hold: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.hold = hold
        self.clock = clock
        self._open_until = 0.0
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        return self.clock() < self._open_until

    def check(self) -> None:
        """Raise 503 while the database is known not to answer."""
        if self.open:
            raise unavailable()

    def trip(self) -> None:
        with self._lock:
            self._open_until = self.clock() + self.hold

    def close(self) -> None:
        """The database answered (a readiness probe): let requests through again."""
        with self._lock:
            self._open_until = 0.0
