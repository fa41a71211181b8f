"""The payment worker: asks providers about open payments it has leased, then schedules
the next check with backoff; retries refunds the provider left unanswered; between batches
it runs the scheduled tasks."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import structlog
from sqlalchemy import select

from service.db.availability import is_unavailable
from service.db.models import Payment
from service.domain.status import OPEN, PaymentStatus
from service.services.calls import ProviderCalls
from service.services.context import Context
from service.services.transitions import Transitions
from service.workers import heartbeat, queue
from service.workers.backoff import Backoff
from service.workers.leases import LeaseKeeper
from service.workers.outage import OutageNotice
from service.workers.refunds import RefundRetrier
from service.workers.tasks import Scheduler

log = structlog.get_logger()


def worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class PaymentWorker:
    def __init__(self, ctx: Context, *, owner: str | None = None, backoff: Backoff | None = None,
                 heartbeat_path: Path | None = None, scheduler: Scheduler | None = None) -> None:
        self.ctx = ctx
        self.owner = owner or worker_id()
        self.backoff = backoff or Backoff()
        self.calls = ProviderCalls(ctx)
        self.transitions = Transitions(ctx)
        self.heartbeat_path = heartbeat_path
        self.scheduler = scheduler
        self.lease = timedelta(seconds=ctx.settings.worker_lease_seconds)
        self.refunds = RefundRetrier(ctx, self.backoff, self.lease)

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop` is set; the item in hand is finished, the rest released."""
        log.info("worker.started", worker=self.owner)
        outage = OutageNotice("worker", self.ctx.metrics.database_unavailable, worker=self.owner)
        while not stop.is_set():
            try:
                if self.scheduler is not None:
                    self.scheduler.run_due()
                worked = self.run_once(stop) + self.refunds.run_once(stop)
                outage.succeeded()
            except Exception as exc:  # the process boundary: log, wait, carry on
                worked = 0
                if is_unavailable(exc):
                    # Expected during an outage; the next loop tries again, and leases held
                    # meanwhile run out so the work comes due again.
                    outage.failed(exc)
                else:
                    log.exception("worker.loop_failed", worker=self.owner)
            if self.heartbeat_path is not None:
                heartbeat.beat(self.heartbeat_path)
            if worked < self.ctx.settings.worker_batch_size:
                stop.wait(self.ctx.settings.worker_poll_interval_seconds)
        log.info("worker.stopped", worker=self.owner)

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Claim one batch and check each payment; returns how many were checked. The batch's
        leases are renewed while it is worked on, however slow the providers are."""
        clock = self.ctx.clock
        batch = queue.claim(self.ctx.sessions, self.owner, self.ctx.settings.worker_batch_size,
                            self.lease, clock.now())
        if not batch:
            return 0
        log.info("worker.claimed", worker=self.owner, count=len(batch))
        token = batch[0].token
        held = [item.id for item in batch]
        keeper = LeaseKeeper(lambda: queue.renew(self.ctx.sessions, list(held), token,
                                                 self.lease, clock.now()) > 0 or not held,
                             self.lease, self.owner)
        done = 0
        with keeper.held():
            for item in batch:
                if stop is not None and stop.is_set():
                    released = queue.release(self.ctx.sessions, held, token)
                    log.info("worker.released", worker=self.owner, count=released)
                    break
                if keeper.lost:  # frozen past the lease: the rest belongs to others now
                    log.warning("worker.batch_lost", worker=self.owner, count=len(held))
                    break
                self.check(item)
                held.remove(item.id)
                done += 1
        return done

    def check(self, item: queue.Claimed) -> None:
        started = time.time()
        with self.ctx.sessions() as session:
            found = session.execute(select(Payment.amount, Payment.currency, Payment.lease_token)
                                    .where(Payment.id == item.id)).one()
        if found.lease_token != item.token:
            # Frozen past our lease (the renewals stopped with us): another worker has it.
            self.ctx.metrics.leases_lost.inc()
            log.warning("payment.lease_lost", worker=self.owner, payment_id=item.id,
                        provider=item.provider_code)
            return
        amount, currency = found.amount, found.currency
        adapter = self.ctx.providers.adapter(item.provider_code)
        outcome = "no_adapter"
        if adapter is not None:
            reply, error = self.calls.call(
                item.id, item.provider_code, "status",
                lambda: adapter.status(item.reference, amount, currency))
            if reply is not None:
                # apply_reply goes through the state machine: a report of `unknown` or a
                # step backwards never overwrites what we already know; and only while our
                # lease token still holds the payment.
                self.transitions.apply_reply(item.id, reply, "worker", fence=item.token)
                outcome = reply.status.value
            else:
                outcome = f"error: {error}"[:200]
        with self.ctx.sessions() as session:
            status = PaymentStatus(session.scalars(
                select(Payment.status).where(Payment.id == item.id)).one())
        next_check = (self.ctx.clock.now() + self.backoff.delay(status, item.check_attempts + 1)
                      if status in OPEN else None)
        kept = queue.finish(self.ctx.sessions, item.id, item.token, next_check)
        if not kept:
            log.warning("payment.lease_lost", worker=self.owner, payment_id=item.id,
                        provider=item.provider_code)
        log.info("payment.checked", worker=self.owner, payment_id=item.id,
                  provider=item.provider_code, previous=item.status.value, status=status.value,
                  outcome=outcome, started=round(started, 6), finished=round(time.time(), 6),
                  lease_kept=kept)
