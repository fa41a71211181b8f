"""The reconciliation worker's loop: request the day's run at RECONCILIATION_TIME, and
execute requested runs (the schedule's and the API's) one at a time."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from pathlib import Path

import structlog
from sqlalchemy.orm import Session, sessionmaker

from service.clock import SYSTEM, Clock
from service.db.availability import is_unavailable
from service.metrics import EventMetrics
from service.reconciliation import runner, runs, statements
from service.reconciliation.sources import Inbox
from service.settings import Settings
from service.workers import heartbeat
from service.workers.leases import LeaseKeeper
from service.workers.outage import OutageNotice

log = structlog.get_logger()
Progress = Callable[[int, int], None]
# Seconds a reconciliation statement may read or write: matching a chunk against a large
# payments table is slower than anything the gateway does, and no client waits on it.
RECONCILIATION_TIMEOUT = 30.0


class LeaseLost(Exception):
    """Another worker took the run over (ours stopped renewing it for a whole lease)."""


def worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class DailyRequest:
    """Queues the day's run once RECONCILIATION_TIME has passed: once per day across
    replicas (the database's unique key), asked of the database once per day per process."""

    settings: Settings
    clock: Clock = SYSTEM
    done_for: date | None = None

    def __call__(self, sessions: sessionmaker[Session]) -> str | None:
        """The run id it queued, or None when not due or already requested."""
        local = self.clock.now().replace(tzinfo=UTC).astimezone(self.settings.zone)
        at = self.settings.reconciliation_time
        if local.date() == self.done_for or local < local.replace(
                hour=at.hour, minute=at.minute, second=0, microsecond=0):
            return None
        run_id = runs.request_scheduled(sessions, local.date(), clock=self.clock)
        self.done_for = local.date()
        if run_id is not None:
            log.info("reconciliation.requested", run_id=run_id, by="schedule")
        return run_id


def execute_next(sessions: sessionmaker[Session], inbox: Inbox, owner: str, *,
                 progress: Progress | None = None, metrics: EventMetrics | None = None,
                 lease: timedelta = runs.RUN_LEASE,
                 clock: Clock = SYSTEM) -> runner.RunResult | None:
    """Execute the next requested run if no other is active; its result, or None."""
    run = runs.claim(sessions, owner, lease, clock=clock)
    if run is None:
        return None
    log.info("reconciliation.started", run_id=run.public_id, resumed=run.resumed, worker=owner)
    keeper = LeaseKeeper(lambda: runs.renew(sessions, run, owner, lease, clock=clock), lease,
                         run.public_id)

    def step(done: int, total: int) -> None:
        if keeper.lost:
            raise LeaseLost(run.public_id)
        if progress is not None:
            progress(done, total)

    try:
        with keeper.held():
            result = runner.run(sessions, inbox, run_id=run.public_id, progress=step,
                                        metrics=metrics)
    except LeaseLost:
        log.warning("reconciliation.taken_over", run_id=run.public_id, worker=owner)
        return None
    except Exception as exc:
        if not is_unavailable(exc):
            runs.finish(sessions, run, owner, error=f"{type(exc).__name__}: {exc}",
                        clock=clock)
        # A database outage leaves the run active: once its lease runs out, the next claim
        # takes it over and resumes after the lines already judged.
        raise
    runs.finish(sessions, run, owner, statements=result.statements, lines=result.lines,
                matched=result.matched, issues=result.issues, clock=clock)
    return result


def run_worker(settings: Settings, sessions: sessionmaker[Session], stop: threading.Event,
               beat: Path, metrics: EventMetrics | None = None,
               clock: Clock = SYSTEM) -> None:
    owner = worker_id()
    log.info("reconciliation_worker.started", at=str(settings.reconciliation_time),
             timezone=settings.timezone, worker=owner)
    request_daily = DailyRequest(settings, clock)
    outage = OutageNotice("reconciliation_worker",
                          metrics.database_unavailable if metrics is not None else None)
    while not stop.is_set():
        heartbeat.beat(beat)
        ran = None
        try:
            request_daily(sessions)
            # Beat per chunk, so a long run does not look like a hung worker.
            ran = execute_next(sessions, statements.inbox_for(settings), owner,
                               progress=lambda _done, _total: heartbeat.beat(beat),
                               metrics=metrics, clock=clock)
            outage.succeeded()
        except Exception as exc:  # the process boundary: log, and the next loop tries again
            if is_unavailable(exc):
                outage.failed(exc)
            else:
                log.exception("reconciliation.failed")
        if ran is None:
            stop.wait(settings.worker_poll_interval_seconds)
