"""SIGTERM/SIGINT as a flag a worker loop checks between items, so it stops gracefully."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import structlog

log = structlog.get_logger()


def install(stop: threading.Event) -> None:
    """Set `stop` on SIGTERM or SIGINT (main thread only)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("worker.stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
