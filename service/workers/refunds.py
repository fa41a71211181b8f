"""Pending refunds: the provider did not answer, so the payment worker asks it again with
backoff until it does. Claimed like payments (SKIP LOCKED, then a conditional UPDATE that
pushes next_attempt_at out by the lease and writes a fresh lease token), renewed while the
batch is worked on, and written back only under that token: two workers never call about
one refund at once, a killed worker's claim simply comes due again, and a worker whose
claim passed to another changes nothing. The refund's own id travels as
refund_reference, which the adapter contract makes idempotent at the provider: a retry of
a call that did reach it returns the first answer instead of refunding twice."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import Payment, PaymentRefund
from service.db.results import rowcount
from service.providers.contract import ProviderUnavailable
from service.services.calls import ProviderCalls
from service.services.context import Context
from service.workers.backoff import Backoff
from service.workers.leases import LeaseKeeper

log = structlog.get_logger()


@dataclass(frozen=True)
class ClaimedRefund:
    id: int
    public_id: str
    payment_id: int
    provider_code: str
    reference: str
    amount: Decimal
    currency: str
    attempts: int
    held_until: datetime
    token: str


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(PaymentRefund.status == "pending", PaymentRefund.next_attempt_at.is_not(None),
                PaymentRefund.next_attempt_at <= now)


def claim(sessions: sessionmaker[Session], limit: int, lease: timedelta,
          now: datetime) -> list[ClaimedRefund]:
    until = now + lease
    token = uuid.uuid4().hex
    with sessions.begin() as session:
        query = (select(PaymentRefund.id).where(_due(now))
                 .order_by(PaymentRefund.next_attempt_at).limit(limit))
        if session.get_bind().dialect.name != "sqlite":
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if not ids:
            return []
        session.execute(update(PaymentRefund).where(PaymentRefund.id.in_(ids), _due(now))
                        .values(next_attempt_at=until, lease_token=token)
                        .execution_options(synchronize_session=False))
        rows = session.execute(
            select(PaymentRefund.id, PaymentRefund.public_id, PaymentRefund.payment_id,
                   PaymentRefund.amount, PaymentRefund.attempts, Payment.provider_code,
                   Payment.reference, Payment.currency)
            .join(Payment, Payment.id == PaymentRefund.payment_id)
            .where(PaymentRefund.id.in_(ids), PaymentRefund.lease_token == token)).all()
    return [ClaimedRefund(r.id, r.public_id, r.payment_id, r.provider_code, r.reference,
                          r.amount, r.currency, r.attempts, until, token) for r in rows]


def renew(sessions: sessionmaker[Session], ids: list[int], token: str, lease: timedelta,
          now: datetime) -> int:
    """Push the claim out by another lease for those of `ids` still held under `token`."""
    if not ids:
        return 0
    with sessions.begin() as session:
        result = session.execute(
            update(PaymentRefund)
            .where(PaymentRefund.id.in_(ids), PaymentRefund.lease_token == token,
                   PaymentRefund.status == "pending")
            .values(next_attempt_at=now + lease)
            .execution_options(synchronize_session=False))
    return rowcount(result)


class RefundRetrier:
    def __init__(self, ctx: Context, backoff: Backoff, lease: timedelta) -> None:
        self.ctx = ctx
        self.backoff = backoff
        self.lease = lease
        self.calls = ProviderCalls(ctx)

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Retry the due pending refunds; returns how many were asked about."""
        clock = self.ctx.clock
        batch = claim(self.ctx.sessions, self.ctx.settings.worker_batch_size, self.lease,
                      clock.now())
        if not batch:
            return 0
        held = [item.id for item in batch]
        keeper = LeaseKeeper(
            lambda: renew(self.ctx.sessions, list(held), batch[0].token, self.lease,
                          clock.now()) > 0
            or not held, self.lease, "refunds")
        done = 0
        with keeper.held():
            for index, item in enumerate(batch):
                if (stop is not None and stop.is_set()) or keeper.lost:
                    for rest in batch[index:]:  # give them back, due at once
                        self._finish(rest, next_attempt_at=self.ctx.clock.now())
                    break
                self.retry(item)
                held.remove(item.id)
                done += 1
        return done

    def retry(self, item: ClaimedRefund) -> None:
        with self.ctx.sessions() as session:
            token = session.scalar(select(PaymentRefund.lease_token)
                                   .where(PaymentRefund.id == item.id))
        if token != item.token:  # frozen past our claim: another worker has it
            self.ctx.metrics.leases_lost.inc()
            log.warning("refund.lease_lost", refund=item.public_id)
            return
        adapter = self.ctx.providers.adapter(item.provider_code)
        attempts = item.attempts + 1
        if adapter is None:  # its credentials were removed: keep it, ask again later
            self._finish(item, next_attempt_at=(self.ctx.clock.now()
                                                + self.backoff.refund_delay(attempts)))
            log.warning("refund.no_adapter", refund=item.public_id, provider=item.provider_code)
            return
        reply, error = self.calls.call_refund(
            item.payment_id, item.provider_code,
            lambda: adapter.refund(item.reference, item.public_id, item.amount, item.currency))
        now = self.ctx.clock.now()
        if reply is None and isinstance(error, ProviderUnavailable):
            wait = self.backoff.refund_delay(attempts)
            self._finish(item, attempts=attempts, next_attempt_at=now + wait)
            log.info("refund.still_unanswered", refund=item.public_id,
                     provider=item.provider_code, attempts=attempts,
                     next_in_seconds=wait.total_seconds())
            return
        status = "completed" if reply is not None and reply.completed else "failed"
        self._finish(item, attempts=attempts, next_attempt_at=None, status=status,
                     completed_at=now,
                     provider_reference=reply.provider_reference if reply else None)
        (log.info if status == "completed" else log.warning)(
            "refund.retried", refund=item.public_id, provider=item.provider_code,
            status=status, attempts=attempts, error=str(error)[:200] if error else None)

    def _finish(self, item: ClaimedRefund, **values: Any) -> bool:
        """Write the result while the claim is still ours (nobody re-claimed it)."""
        with self.ctx.sessions.begin() as session:
            result = session.execute(
                update(PaymentRefund)
                .where(PaymentRefund.id == item.id, PaymentRefund.status == "pending",
                       PaymentRefund.lease_token == item.token)
                .values(lease_token=None, **values)
                .execution_options(synchronize_session=False))
        kept = bool(rowcount(result))
        if not kept:
            self.ctx.metrics.leases_lost.inc()
            log.warning("refund.lease_lost", refund=item.public_id)
        return kept
