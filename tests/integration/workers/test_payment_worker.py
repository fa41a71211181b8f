"""The payment worker on real MariaDB against the provider simulator."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from service.db.models import Payment, PaymentAttempt, PaymentAuditLog
from service.domain.status import PaymentStatus
from service.providers.contract import ProviderReply
from service.services.context import Context
from service.services.transitions import Transitions
from service.workers import queue
from service.workers.backoff import Backoff
from service.workers.verification import PaymentWorker
from tests.clock import MovableClock
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


def _overlaps(calls: list[dict[str, Any]]) -> list[tuple[str, float, float]]:
    """Status calls about one payment that the provider served at the same time."""
    found = []
    by_reference: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        by_reference.setdefault(call["reference"], []).append(call)
    for reference, served in by_reference.items():
        served.sort(key=lambda c: c["started"])
        for before, after in itertools.pairwise(served):
            if after["started"] < before["finished"]:
                found.append((reference, before["finished"], after["started"]))
    return found


def test_a_provider_slower_than_the_lease_is_never_polled_twice_at_once(
        ctx: Context, worker_env: dict[str, str], control: Callable[..., None],
        spawn: Callable[..., Process], simulator_url: str) -> None:
    # Each status call takes 3.5 s and a worker claims 4 at a time: a batch outlives its
    # 5 s lease four times over. Renewals keep the payments the first worker's; without
    # them the second worker would claim and poll them again mid-batch.
    ids = _prepare_settled(ctx, control, 8, latency_ms=3500)
    with ctx.sessions() as session:
        references = set(session.scalars(select(Payment.reference).where(Payment.id.in_(ids))))
    env = {**worker_env, "WORKER_LEASE_SECONDS": "5", "WORKER_BATCH_SIZE": "4",
           "WORKER_POLL_INTERVAL_SECONDS": "0.2", "PROVIDER_TIMEOUT_SECONDS": "10"}
    workers = [spawn(env, "worker", "--no-tasks") for _ in range(2)]
    wait_for(lambda: set(statuses(ctx, ids).values()) == {"confirmed"}, 60,
             "every payment to be confirmed")
    for process in workers:
        process.terminate()
    calls = [c for c in httpx.get(f"{simulator_url}/_calls").json()
             if c["operation"] == "status" and c["reference"] in references]
    assert _overlaps(calls) == []
    # Each payment was asked exactly once, at the provider and in our records.
    assert Counter(c["reference"] for c in calls) == dict.fromkeys(references, 1)
    assert all(n == 1 for n in status_polls(ctx, ids).values())
    assert sum(len(_checked(p)) for p in workers) == len(ids)


def test_a_worker_that_lost_its_lease_cannot_apply_its_answer(
        ctx: Context, clock: MovableClock, control: Callable[..., None]) -> None:
    """Fencing: the first worker's claim runs out while it waits on the provider; the second
    claims the payment (a new token). The first one's answer then changes nothing."""
    control("zain_cash", settle_after_seconds=0.2, send_webhooks=False)
    [pid] = create_payments(ctx, 1)
    make_due(ctx, [pid])
    lease = timedelta(seconds=30)
    [first] = queue.claim(ctx.sessions, "w-first", 1, lease, clock.now())
    assert queue.claim(ctx.sessions, "w-second", 1, lease, clock.now()) == []  # leased
    clock.advance(lease + timedelta(seconds=1))  # the first worker was frozen past its lease
    [second] = queue.claim(ctx.sessions, "w-second", 1, lease, clock.now())
    assert second.token != first.token
    service = Transitions(ctx)
    declined = ProviderReply(PaymentStatus.FAILED, "sim-ref", Decimal("150.00"), "SDG", 200,
                             "insufficient funds")
    before = ctx.metrics.registry.get_sample_value("nilecare_worker_leases_lost_total")
    assert not service.apply_reply(pid, declined, "worker", fence=first.token)
    assert not queue.finish(ctx.sessions, pid, first.token, None)
    assert ctx.metrics.registry.get_sample_value(
        "nilecare_worker_leases_lost_total") == (before or 0) + 1
    assert statuses(ctx, [pid]) == {pid: "processing"}
    confirmed = ProviderReply(PaymentStatus.CONFIRMED, "sim-ref", Decimal("150.00"), "SDG", 200)
    assert service.apply_reply(pid, confirmed, "worker", fence=second.token)
    assert queue.finish(ctx.sessions, pid, second.token, None)
    assert statuses(ctx, [pid]) == {pid: "confirmed"}
    with ctx.sessions() as session:
        row = session.get(Payment, pid)
        assert row is not None and row.lease_token is None and row.failure_reason is None
