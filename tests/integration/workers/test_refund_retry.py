"""Refunds the provider left unanswered stay pending and are retried by the payment worker
with backoff until the provider answers; every call is in payment_attempts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from service.db.models import Payment, PaymentAttempt, PaymentRefund
from service.services.context import Context
from service.services.payments import PaymentService
from service.services.refunds import RefundService
from service.workers.backoff import Backoff
from service.workers.refunds import RefundRetrier
from service.workers.verification import PaymentWorker
from tests.clock import MovableClock
from tests.integration.workers.conftest import ACCOUNTANT, create_payments, wait_for


def _refund(ctx: Context, pid: int) -> tuple[int, str]:
    with ctx.sessions() as session:
        public_id = session.scalars(select(Payment.public_id).where(Payment.id == pid)).one()
    outcome = RefundService(PaymentService(ctx)).refund(ACCOUNTANT, public_id, None,
                                                         "patient discharged")
    return outcome.status, outcome.body["id"]


def _refund_row(ctx: Context, public_id: str) -> PaymentRefund:
    with ctx.sessions() as session:
        return session.scalars(select(PaymentRefund)
                               .where(PaymentRefund.public_id == public_id)).one()


def _refund_calls(ctx: Context, pid: int) -> list[str]:
    with ctx.sessions() as session:
        return list(session.scalars(select(PaymentAttempt.outcome).where(
            PaymentAttempt.payment_id == pid, PaymentAttempt.operation == "refund")
            .order_by(PaymentAttempt.id)))


def _come_due(ctx: Context, clock: MovableClock, public_id: str) -> None:
    """Move the clock to the refund's next attempt, as waiting for it would."""
    due = _refund_row(ctx, public_id).next_attempt_at
    assert due is not None and due > clock.now()
    clock.advance(due - clock.now())


def _payment_status(ctx: Context, pid: int) -> str:
    with ctx.sessions() as session:
        return session.scalars(select(Payment.status).where(Payment.id == pid)).one()


def test_a_refund_to_a_provider_that_is_down_is_retried_with_backoff_until_it_answers(
        ctx: Context, clock: MovableClock, control: Callable[..., None]) -> None:
    control("zain_cash", settle_after_seconds=0, send_webhooks=False)
    [pid] = create_payments(ctx, 1)
    control("zain_cash", mode="down")
    status, refund_id = _refund(ctx, pid)
    assert status == 202 and _refund_row(ctx, refund_id).status == "pending"
    assert _refund_calls(ctx, pid) == ["error"]

    backoff = Backoff()
    retrier = RefundRetrier(ctx, backoff, timedelta(seconds=60))
    assert retrier.run_once() == 0  # not due yet: the first retry waits 30 s
    _come_due(ctx, clock, refund_id)
    before = clock.now()
    assert retrier.run_once() == 1  # still down
    row = _refund_row(ctx, refund_id)
    assert row.status == "pending" and row.attempts == 2 and row.next_attempt_at is not None
    waited = row.next_attempt_at - before
    assert backoff.refund_delay(2) <= waited < backoff.refund_delay(2) + timedelta(seconds=5)
    assert retrier.run_once() == 0  # backing off
    assert _refund_calls(ctx, pid) == ["error", "error"]

    control("zain_cash", mode="healthy")
    _come_due(ctx, clock, refund_id)
    assert retrier.run_once() == 1
    row = _refund_row(ctx, refund_id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("completed", 3, None)
    assert row.provider_reference and row.completed_at is not None
    assert _refund_calls(ctx, pid) == ["error", "error", "success"]
    assert _payment_status(ctx, pid) == "refunded"
    assert retrier.run_once() == 0


def test_a_refund_whose_answer_was_lost_is_completed_once_by_the_running_worker(
        ctx: Context, clock: MovableClock, control: Callable[..., None]) -> None:
    control("mtn_money", settle_after_seconds=0, send_webhooks=False)
    [pid] = create_payments(ctx, 1, provider="mtn_money", amount="300.00")
    # Slower than our 2 s timeout: the provider refunds, but we never hear it.
    control("mtn_money", latency_ms=2500)
    status, refund_id = _refund(ctx, pid)
    assert status == 202 and _refund_calls(ctx, pid) == ["timeout"]
    time.sleep(0.7)  # the provider finishes the refund we gave up on
    control("mtn_money", latency_ms=0)
    _come_due(ctx, clock, refund_id)

    worker = PaymentWorker(ctx, owner="w-refunds", backoff=Backoff().scaled(0.01))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: _refund_row(ctx, refund_id).status != "pending", 15,
                 "the worker to retry the refund")
    finally:
        stop.set()
        thread.join(10)
    # The whole amount again under the same refund_reference: had the provider refunded
    # twice it would have refused ("refund exceeds the payment") and the refund failed.
    row = _refund_row(ctx, refund_id)
    assert row.status == "completed" and row.amount == Decimal("300.00")
    assert _refund_calls(ctx, pid) == ["timeout", "success"]
    assert _payment_status(ctx, pid) == "refunded"
