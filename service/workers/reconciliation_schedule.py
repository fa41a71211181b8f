"""The reconciliation worker's clock: one run per local day at RECONCILIATION_TIME."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy.orm import Session, sessionmaker

from service.metrics import EventMetrics
from service.settings import Settings
from service.workers import heartbeat, reconciliation, statements
from service.workers.tasks import claim_once, unclaim

log = structlog.get_logger()


def run_daily(settings: Settings, sessions: sessionmaker[Session], stop: threading.Event,
              beat: Path, metrics: EventMetrics | None = None) -> None:
    log.info("reconciliation_worker.started", at=str(settings.reconciliation_time),
             timezone=settings.timezone)
    while not stop.is_set():
        heartbeat.beat(beat)
        local = datetime.now(settings.zone)
        due = local.replace(hour=settings.reconciliation_time.hour,
                            minute=settings.reconciliation_time.minute, second=0, microsecond=0)
        key = f"reconciliation:{local.date().isoformat()}"
        # Once per day across replicas: the first to claim the day runs it.
        if local >= due and claim_once(sessions, key, timedelta(days=3)):
            try:
                # Beat per chunk, so a long run does not look like a hung worker.
                reconciliation.run(sessions, statements.inbox_for(settings),
                                   progress=lambda _done, _total: heartbeat.beat(beat),
                                   metrics=metrics)
            except Exception:  # the process boundary: log and let tomorrow try again
                log.exception("reconciliation.failed")
                unclaim(sessions, key)
        stop.wait(30)
