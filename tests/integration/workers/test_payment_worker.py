"""The payment worker on real MariaDB against the provider simulator."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from service.db.models import PaymentAttempt, PaymentAuditLog
from service.services.context import Context
from service.workers.backoff import Backoff
from service.workers.verification import PaymentWorker
from tests.integration.workers.conftest import (
    Process,
    create_payments,
    make_due,
    statuses,
    wait_for,
)


def status_polls(ctx: Context, ids: list[int]) -> Counter[int]:
    with ctx.sessions() as session:
        rows = session.scalars(select(PaymentAttempt.payment_id).where(
            PaymentAttempt.payment_id.in_(ids), PaymentAttempt.operation == "status"))
        return Counter(rows)


def test_a_delayed_confirmation_is_settled_by_the_worker(
        ctx: Context, control: Callable[..., None]) -> None:
    # No webhooks: only the worker's polling can learn that the payment settled.
    control("zain_cash", settle_after_seconds=1.5, send_webhooks=False)
    [pid] = create_payments(ctx, 1)
    assert statuses(ctx, [pid]) == {pid: "processing"}
    make_due(ctx, [pid])
    worker = PaymentWorker(ctx, owner="w-test", backoff=Backoff().scaled(0.01))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: statuses(ctx, [pid])[pid] == "confirmed", 20, "confirmation")
    finally:
        stop.set()
        thread.join(10)
    assert status_polls(ctx, [pid])[pid] >= 2  # asked while still pending, then settled
    with ctx.sessions() as session:
        audit = session.scalars(select(PaymentAuditLog).where(
            PaymentAuditLog.entity_id == pid, PaymentAuditLog.new_value == "confirmed")).one()
    assert audit.actor == "worker"


def test_the_worker_never_downgrades_a_known_status_to_unknown(
        ctx: Context, control: Callable[..., None]) -> None:
    control("mtn_money", settle_after_seconds=30, send_webhooks=False)
    [pid] = create_payments(ctx, 1, provider="mtn_money")
    control("mtn_money", mode="down")
    make_due(ctx, [pid])
    PaymentWorker(ctx, owner="w-test").run_once()
    assert statuses(ctx, [pid]) == {pid: "processing"}
    assert status_polls(ctx, [pid])[pid] == 1


def _prepare_settled(ctx: Context, control: Callable[..., None], count: int,
                     latency_ms: int) -> list[int]:
    control("zain_cash", settle_after_seconds=0.2, send_webhooks=False)
    ids = create_payments(ctx, count)
    time.sleep(0.3)  # settled at the simulator; still processing for us
    control("zain_cash", latency_ms=latency_ms)
    make_due(ctx, ids)
    return ids


def _checked(process: Process) -> list[dict[str, Any]]:
    return process.events("payment.checked")


def test_a_killed_worker_loses_nothing_and_nothing_is_processed_twice(
        ctx: Context, worker_env: dict[str, str], control: Callable[..., None],
        spawn: Callable[..., Process]) -> None:
    ids = _prepare_settled(ctx, control, 40, latency_ms=100)
    env = {**worker_env, "WORKER_LEASE_SECONDS": "5", "WORKER_BATCH_SIZE": "20",
           "WORKER_POLL_INTERVAL_SECONDS": "0.2"}
    first = spawn(env, "worker", "--no-tasks")
    wait_for(lambda: len(_checked(first)) >= 5, 30, "the first worker to check 5 payments")
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(10)
    done_by_first = {e["payment_id"] for e in _checked(first)}
    assert 0 < len(done_by_first) < 20  # killed mid-batch, with leases still held

    second = spawn(env, "worker", "--no-tasks")
    wait_for(lambda: set(statuses(ctx, ids).values()) == {"confirmed"}, 40,
             "every payment to be confirmed")
    done_by_second = {e["payment_id"] for e in _checked(second)}
    # At most the payment in hand at the kill is in neither log (settled, not yet logged).
    assert len(set(ids) - done_by_first - done_by_second) <= 1
    assert not done_by_first & done_by_second  # finished work is never redone
    polls = status_polls(ctx, ids)
    # Only the payment in hand at the kill (asked, not yet recorded as done) may be asked
    # twice; every other payment exactly once.
    assert all(polls[i] == 1 for i in ids if i in done_by_first or i in done_by_second)
    assert sum(1 for i in ids if polls[i] > 1) <= 1
    with ctx.sessions() as session:
        confirmations = Counter(session.scalars(select(PaymentAuditLog.entity_id).where(
            PaymentAuditLog.entity_id.in_(ids), PaymentAuditLog.new_value == "confirmed")))
    assert all(confirmations[i] == 1 for i in ids)
    second.terminate()
    assert second.events("worker.stopped")


def test_two_workers_never_poll_the_same_payment_at_once(
        ctx: Context, worker_env: dict[str, str], control: Callable[..., None],
        spawn: Callable[..., Process]) -> None:
    ids = _prepare_settled(ctx, control, 60, latency_ms=40)
    env = {**worker_env, "WORKER_BATCH_SIZE": "5", "WORKER_POLL_INTERVAL_SECONDS": "0.1"}
    workers = [spawn(env, "worker", "--no-tasks") for _ in range(2)]
    wait_for(lambda: set(statuses(ctx, ids).values()) == {"confirmed"}, 40,
             "every payment to be confirmed")
    for process in workers:
        process.terminate()
    checks = [e for process in workers for e in _checked(process)]
    by_worker = Counter(e["worker"] for e in checks)
    assert len(by_worker) == 2 and min(by_worker.values()) > 0  # both took part
    per_payment = Counter(e["payment_id"] for e in checks)
    assert set(per_payment) == set(ids)
    assert max(per_payment.values()) == 1  # no payment was polled by both
    assert all(n == 1 for n in status_polls(ctx, ids).values())
