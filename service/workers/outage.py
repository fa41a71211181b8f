"""How a worker loop reports a database outage: once when it starts, once when it ends."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from prometheus_client import Counter

log = structlog.get_logger()


class OutageNotice:
    def __init__(self, name: str, counter: Counter | None = None,
                 clock: Callable[[], float] = time.monotonic, **context: str) -> None:
        self.name = name
        self.clock = clock
        self.counter = counter
        self.context = context
        self.since: float | None = None

    def failed(self, error: BaseException) -> None:
        if self.counter is not None:
            self.counter.inc()
        if self.since is None:
            self.since = self.clock()
            log.warning(f"{self.name}.database_unavailable", error=type(error).__name__,
                        **self.context)

    def succeeded(self) -> None:
        if self.since is not None:
            log.info(f"{self.name}.database_back",
                     after_seconds=round(self.clock() - self.since, 1), **self.context)
            self.since = None
