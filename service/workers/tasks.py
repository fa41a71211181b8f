"""The payment worker's scheduled tasks: pending expiry, idempotency-key cleanup and the
daily summary, each run at most once per period across all workers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import structlog
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import IdempotencyKey, Payment
from service.domain.status import PaymentStatus
from service.services import idempotency
from service.services.context import Context
from service.services.transitions import Transitions

log = structlog.get_logger()
TASK_SCOPE = "task"


def expire_pending(ctx: Context, max_age: timedelta, limit: int = 500) -> int:
    """Cancel payments still `pending` after `max_age`.

    The gateway moves a payment to `processing` before it calls the provider, so a
    `pending` one was never sent: cancelling it cannot lose money that moved.
    """
    cutoff = ctx.clock.now() - max_age
    with ctx.sessions() as session:
        ids = list(session.scalars(
            select(Payment.id).where(Payment.status == PaymentStatus.PENDING.value,
                                     Payment.created_at < cutoff).limit(limit)))
    transitions = Transitions(ctx)
    minutes = int(max_age.total_seconds() // 60)
    moved = sum(
        transitions.move(pid, PaymentStatus.CANCELLED, "worker",
                         failure_reason=f"expired: pending for more than {minutes} minutes")
        for pid in ids
    )
    if moved:
        log.info("task.expired_pending", count=moved)
    return moved


def purge_idempotency(ctx: Context) -> int:
    with ctx.sessions.begin() as session:
        count = idempotency.purge_expired(session, ctx.clock.now())
    if count:
        log.info("task.purged_idempotency_keys", count=count)
    return count


def claim_once(sessions: sessionmaker[Session], name: str, keep: timedelta,
               now: datetime) -> bool:
    """True for exactly one caller per `name` (across processes): a unique row in
    idempotency_keys, kept for `keep` past `now` so the purge does not reopen it too early."""
    try:
        with sessions.begin() as session:
            session.add(IdempotencyKey(scope=TASK_SCOPE, key=name, request_hash="-",
                                       state="completed", locked_until=now, created_at=now,
                                       expires_at=now + keep))
    except IntegrityError:
        return False
    return True


def unclaim(sessions: sessionmaker[Session], name: str) -> None:
    with sessions.begin() as session:
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.scope == TASK_SCOPE,
                                                     IdempotencyKey.key == name))


@dataclass
class Scheduler:
    """Runs each task when its interval has passed; the daily one once per local day."""

    ctx: Context
    daily_summary: Callable[[date], None] | None = None
    summary_hour: int = 6
    intervals: dict[str, float] = field(default_factory=lambda: {
        "expire_pending": 60.0, "purge_idempotency": 3600.0, "daily_summary": 300.0})
    _last: dict[str, datetime] = field(default_factory=dict)

    def run_due(self) -> list[str]:
        """Run the tasks whose interval has passed on the context's clock."""
        now = self.ctx.clock.now()
        ran = []
        for name, every in self.intervals.items():
            last = self._last.get(name)
            if last is not None and (now - last).total_seconds() < every:
                continue
            self._last[name] = now
            try:
                self._run(name, now)
                ran.append(name)
            except Exception:  # one failing task must not stop the worker
                log.exception("task.failed", task=name)
        return ran

    def _run(self, name: str, now: datetime) -> None:
        settings = self.ctx.settings
        if name == "expire_pending":
            expire_pending(self.ctx, timedelta(minutes=settings.pending_expiry_minutes))
        elif name == "purge_idempotency":
            purge_idempotency(self.ctx)
        elif name == "daily_summary" and self.daily_summary:
            # FEATURE_DAILY_SUMMARY and the SMTP settings are checked by the sender, which
            # logs the skip once for the day it claimed.
            local = now.replace(tzinfo=UTC).astimezone(settings.zone)
            if local.hour < self.summary_hour:
                return
            day = local.date() - timedelta(days=1)
            key = f"daily-summary:{day.isoformat()}"
            if not claim_once(self.ctx.sessions, key, timedelta(days=3), now):
                return
            try:
                self.daily_summary(day)
            except Exception:
                unclaim(self.ctx.sessions, key)
                raise
