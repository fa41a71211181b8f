"""The reconciliation run queue: runs are requested, then executed one at a time."""

# The database keeps them apart: a run's `slot` is 'queued' while it waits and 'active' while it
# runs, and a unique key on `slot` admits one of each. A request while one is queued joins it; a
# claim while one is active fails. A run whose worker died (its lease ran out) is taken over and
# resumed by the next worker.

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.clock import SYSTEM, Clock
from service.db.models import ReconciliationRun
from service.db.results import rowcount
from service.domain.views import RunView
from service.services.idempotency import Attach

# How long a worker holds a run between renewals (it renews every third of this).
RUN_LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class ClaimedRun:
    id: int
    public_id: str
    resumed: bool


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex[:20]}"


def request(sessions: sessionmaker[Session], requested_by: str,
            attach: Attach | None = None, *, clock: Clock = SYSTEM) -> tuple[str, bool]:
    """Queue a run, or join the one already waiting: (its public id, whether it is new)."""
    for _ in range(5):
        public_id = new_run_id()
        try:
            with sessions.begin() as session:
                session.add(ReconciliationRun(
                    public_id=public_id, status="requested", slot="queued",
                    requested_by=requested_by[:64], requested_at=clock.now(), statements=0,
                    lines=0, matched=0))
                session.flush()
                if attach is not None:
                    attach(session, public_id)
            return public_id, True
        except IntegrityError:  # one is queued already: this request joins it
            with sessions.begin() as session:
                queued = session.scalars(select(ReconciliationRun.public_id)
                                         .where(ReconciliationRun.slot == "queued")).first()
                if queued is not None:
                    if attach is not None:
                        attach(session, queued)
                    return queued, False
        # It started between our insert and our read: queue a new one.
    raise RuntimeError("could not queue a reconciliation run")


def request_scheduled(sessions: sessionmaker[Session], day: date, *,
                      clock: Clock = SYSTEM) -> str | None:
    """Queue the run of `day` (or mark the queued one as it) unless that day has one: the
    unique `scheduled_for` keeps it to one, however many workers ask."""
    for _ in range(5):
        with sessions() as session:
            if session.scalars(select(ReconciliationRun.id)
                               .where(ReconciliationRun.scheduled_for == day)).first():
                return None
        public_id = new_run_id()
        try:
            with sessions.begin() as session:
                session.add(ReconciliationRun(
                    public_id=public_id, status="requested", slot="queued",
                    requested_by="schedule", requested_at=clock.now(), scheduled_for=day,
                    statements=0, lines=0, matched=0))
            return public_id
        except IntegrityError:  # a run is queued already (or another worker scheduled it)
            try:
                with sessions.begin() as session:
                    queued = session.scalars(select(ReconciliationRun.public_id).where(
                        ReconciliationRun.slot == "queued",
                        ReconciliationRun.scheduled_for.is_(None))).first()
                    if queued is not None and rowcount(session.execute(
                            update(ReconciliationRun)
                            .where(ReconciliationRun.public_id == queued,
                                   ReconciliationRun.slot == "queued")
                            .values(scheduled_for=day))):
                        return queued
            except IntegrityError:  # another worker marked a run for the day first
                return None
    raise RuntimeError("could not queue the scheduled reconciliation run")


def claim(sessions: sessionmaker[Session], owner: str,
          lease: timedelta = RUN_LEASE, *, clock: Clock = SYSTEM) -> ClaimedRun | None:
    """The run this worker should execute now: one whose worker died, else the queued one;
    None when another run is active or nothing is queued."""
    now = clock.now()
    with sessions.begin() as session:
        orphan = session.execute(
            select(ReconciliationRun.id, ReconciliationRun.public_id,
                   ReconciliationRun.lease_expires_at)
            .where(ReconciliationRun.slot == "active")).first()
        if orphan is not None:
            if orphan.lease_expires_at is not None and orphan.lease_expires_at >= now:
                return None  # running elsewhere
            taken = rowcount(session.execute(
                update(ReconciliationRun)
                .where(ReconciliationRun.id == orphan.id, ReconciliationRun.slot == "active",
                       ReconciliationRun.lease_expires_at == orphan.lease_expires_at)
                .values(lease_owner=owner[:64], lease_expires_at=now + lease)))
            return ClaimedRun(orphan.id, orphan.public_id, True) if taken else None
    try:
        with sessions.begin() as session:
            queued = session.execute(
                select(ReconciliationRun.id, ReconciliationRun.public_id)
                .where(ReconciliationRun.slot == "queued")).first()
            if queued is None:
                return None
            taken = rowcount(session.execute(
                update(ReconciliationRun)
                .where(ReconciliationRun.id == queued.id, ReconciliationRun.slot == "queued")
                .values(slot="active", status="running", started_at=now,
                        lease_owner=owner[:64], lease_expires_at=now + lease)))
    except IntegrityError:  # another worker made a run active first
        return None
    return ClaimedRun(queued.id, queued.public_id, False) if taken else None


def renew(sessions: sessionmaker[Session], run: ClaimedRun, owner: str,
          lease: timedelta = RUN_LEASE, *, clock: Clock = SYSTEM) -> bool:
    with sessions.begin() as session:
        return bool(rowcount(session.execute(
            update(ReconciliationRun)
            .where(ReconciliationRun.id == run.id, ReconciliationRun.slot == "active",
                   ReconciliationRun.lease_owner == owner[:64])
            .values(lease_expires_at=clock.now() + lease))))


def finish(sessions: sessionmaker[Session], run: ClaimedRun, owner: str, *,
           statements: int = 0, lines: int = 0, matched: int = 0,
           issues: dict[str, int] | None = None, error: str | None = None,
           clock: Clock = SYSTEM) -> bool:
    """Record how the run ended and free the active slot for the next one."""
    with sessions.begin() as session:
        return bool(rowcount(session.execute(
            update(ReconciliationRun)
            .where(ReconciliationRun.id == run.id, ReconciliationRun.lease_owner == owner[:64])
            .values(status="failed" if error else "completed", slot=None,
                    finished_at=clock.now(), lease_owner=None, lease_expires_at=None,
                    statements=statements, lines=lines, matched=matched,
                    issues=json.dumps(issues or {}, sort_keys=True),
                    error=error[:255] if error else None))))


def view(session: Session, public_id: str) -> RunView | None:
    run = session.scalars(select(ReconciliationRun)
                          .where(ReconciliationRun.public_id == public_id)).first()
    if run is None:
        return None
    return {
        "run_id": run.public_id,
        "status": run.status,
        "requested_by": run.requested_by,
        "requested_at": run.requested_at.replace(microsecond=0).isoformat() + "Z",
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "statements": run.statements,
        "lines": run.lines,
        "matched": run.matched,
        "issues_found": json.loads(run.issues) if run.issues else {},
        "error": run.error,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"

