"""The counts the writes keep (live_counts) equal what a COUNT(*) over the tables says,
after every kind of write the system makes: inserts, status moves in and out of the queue
(by the app and by the refund trigger), a provider change, deletes, issues opened, resolved
and reopened. On MariaDB and on SQLite, whose triggers are written separately."""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import Engine, delete, func, insert, select, text, update
from sqlalchemy.exc import OperationalError

from service.clock import utcnow
from service.db import migrate
from service.db.availability import is_busy, is_unavailable
from service.db.models import LiveCount, Payment, PaymentReconciliation, PaymentRefund
from service.domain.status import PaymentStatus
from service.reconciliation import storage
from service.reconciliation.rules import ISSUE_TYPES
from service.workers.exporter import WAITING

STATUSES = [s.value for s in PaymentStatus]
PROVIDERS = ["visa", "zain_cash", "bank_transfer"]


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    return migrated_engine


def _kept(engine: Engine, kind: str) -> dict[tuple[str, str], int]:
    with engine.connect() as c:
        return {(a, b): int(n) for a, b, n in c.execute(
            select(LiveCount.label_a, LiveCount.label_b, func.sum(LiveCount.n))
            .where(LiveCount.kind == kind)
            .group_by(LiveCount.label_a, LiveCount.label_b)) if n}


def _counted(engine: Engine) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    with engine.connect() as c:
        waiting = {(p, s): int(n) for p, s, n in c.execute(
            select(Payment.provider_code, Payment.status, func.count())
            .where(Payment.status.in_(WAITING))
            .group_by(Payment.provider_code, Payment.status))}
        issues = {(t, ""): int(n) for t, n in c.execute(
            select(PaymentReconciliation.issue_type, func.count())
            .where(PaymentReconciliation.status == "open",
                   PaymentReconciliation.issue_type.is_not(None))
            .group_by(PaymentReconciliation.issue_type))}
    return waiting, issues


def _payments(engine: Engine, rng: random.Random, count: int) -> list[int]:
    now = utcnow()
    rows = [{"public_id": f"pay_lc_{n}", "reference": f"NC-LC-{n}",
             "provider_code": rng.choice(PROVIDERS), "facility_id": "f1", "patient_id": "p",
             "amount": Decimal("100.00"), "currency": "SDG", "total_fees": Decimal("0"),
             "net_amount": Decimal("0"), "refunded_amount": Decimal("0"),
             "status": rng.choice(STATUSES), "created_by": "t", "updated_by": "t",
             "created_at": now, "updated_at": now, "check_attempts": 0}
            for n in range(count)]
    with engine.begin() as c:
        c.execute(insert(Payment), rows)
        return list(c.execute(select(Payment.id).order_by(Payment.id)).scalars())


def test_the_kept_counts_equal_the_tables_after_every_kind_of_write(engine: Engine) -> None:
    rng = random.Random(7)
    ids = _payments(engine, rng, 300)
    assert sum(_kept(engine, "waiting").values()) > 0
    assert _kept(engine, "waiting") == _counted(engine)[0]
    with engine.begin() as c:
        for payment_id in rng.sample(ids, 150):  # one row at a time, as the workers do
            c.execute(update(Payment).where(Payment.id == payment_id)
                      .values(status=rng.choice(STATUSES), updated_by="w"))
        # A set at once, as reconciliation confirms a chunk.
        c.execute(update(Payment).where(Payment.id.in_(ids[:60]),
                                        Payment.status == "awaiting_verification")
                  .values(status="confirmed", updated_by="reconciliation"))
        c.execute(update(Payment).where(Payment.id.in_(ids[60:80]))
                  .values(provider_code="visa", updated_by="ops"))
        # A write that moves nothing the counts see.
        c.execute(update(Payment).where(Payment.id.in_(ids[80:120]))
                  .values(description="touched"))
    # The refund trigger moves a payment, not the app.
    refundable = ids[200]
    with engine.begin() as c:
        c.execute(update(Payment).where(Payment.id == refundable)
                  .values(status="processing", updated_by="t"))
        c.execute(update(Payment).where(Payment.id == refundable)
                  .values(status="confirmed", updated_by="t"))
        c.execute(insert(PaymentRefund).values(
            public_id="re_lc", payment_id=refundable, amount=Decimal("100.00"),
            status="completed", requested_by="t", created_at=utcnow()))
    with engine.begin() as c:
        c.execute(delete(Payment).where(Payment.id.in_(ids[250:])))

    now = utcnow()
    with engine.begin() as c:
        c.execute(insert(PaymentReconciliation), [
            {"run_id": "run_lc", "payment_id": None, "result": "issue" if n % 3 else "matched",
             "issue_type": rng.choice(ISSUE_TYPES) if n % 3 else None,
             "status": "open" if n % 3 else "closed", "created_at": now}
            for n in range(120)])
        issue_ids = list(c.execute(select(PaymentReconciliation.id)
                                   .where(PaymentReconciliation.result == "issue")).scalars())
        c.execute(update(PaymentReconciliation)
                  .where(PaymentReconciliation.id.in_(issue_ids[:30]))
                  .values(status="resolved", resolved_by="fin"))
        c.execute(update(PaymentReconciliation)
                  .where(PaymentReconciliation.id.in_(issue_ids[:5]))
                  .values(status="open"))
        c.execute(update(PaymentReconciliation)
                  .where(PaymentReconciliation.id.in_(issue_ids[40:50]))
                  .values(issue_type="amount"))
        c.execute(delete(PaymentReconciliation)
                  .where(PaymentReconciliation.id.in_(issue_ids[60:70])))

    waiting, issues = _counted(engine)
    assert _kept(engine, "waiting") == waiting
    assert _kept(engine, "open_issue") == issues
    assert sum(issues.values()) > 0


def test_a_reconciliation_confirm_counts_its_own_moves_and_only_them(engine: Engine) -> None:
    """On MySQL a confirm takes what it moved off the count in one statement, with the
    trigger told to leave those moves out: what it counts is what moved (not what it was
    asked to move), and the same connection's next moves are counted by the trigger again."""
    rng = random.Random(5)
    ids = _payments(engine, rng, 240)
    with engine.begin() as c:
        c.execute(update(Payment).where(Payment.id.in_(ids[:120]))
                  .values(provider_code="bank_transfer", status="awaiting_verification"))
        # Moved by others since the statement named them: out of the confirm's reach.
        c.execute(update(Payment).where(Payment.id.in_(ids[:10])).values(status="confirmed"))
        c.execute(update(Payment).where(Payment.id.in_(ids[10:20])).values(status="unknown"))
        c.execute(update(Payment).where(Payment.id.in_(ids[20:30])).values(provider_code="visa"))
    asked = ids[:60] + ids[130:200]  # with payments of any provider and status
    with engine.connect() as c:
        will_move = c.scalar(select(func.count()).where(
            Payment.id.in_(asked), Payment.provider_code == "bank_transfer",
            Payment.status == "awaiting_verification"))
    assert will_move
    with engine.begin() as c:
        assert storage.confirm_payments(c, asked, shard=1) == will_move
        if engine.dialect.name == "mysql":
            assert c.scalar(text("SELECT @confirms_counted_by_statement")) is None
        # The same connection and transaction, as a verification worker's confirm would be.
        c.execute(update(Payment).where(Payment.id.in_(ids[60:90]),
                                        Payment.status == "awaiting_verification")
                  .values(status="confirmed", updated_by="worker"))
    if engine.dialect.name == "mysql":
        # Only awaiting_verification -> confirmed is the writer's to count: other moves made
        # while the variable is set are counted by the trigger.
        with engine.begin() as c:
            c.execute(text("SET @confirms_counted_by_statement = 1"))
            c.execute(update(Payment).where(Payment.id.in_(ids[10:20]))  # unknown ones
                      .values(status="confirmed"))
            c.execute(update(Payment).where(Payment.id.in_(ids[90:100]))
                      .values(status="processing"))
            c.execute(text("SET @confirms_counted_by_statement = NULL"))
    waiting, _ = _counted(engine)
    assert _kept(engine, "waiting") == waiting
    assert waiting[("bank_transfer", "awaiting_verification")] > 0


def _awaiting_bank_transfers(engine: Engine, rng: random.Random, count: int) -> list[int]:
    """`count` payments reconciliation may confirm (bank transfers awaiting verification)."""
    ids = _payments(engine, rng, count)
    with engine.begin() as c:
        c.execute(update(Payment).where(Payment.id.in_(ids))
                  .values(provider_code="bank_transfer", status="awaiting_verification"))
    return ids


def _confirmed_and_counted(engine: Engine, ids: list[int]) -> None:
    """The confirm tried again, with nothing in its way, moves them all, and the kept
    counts equal the table's."""
    with engine.begin() as c:
        assert storage.confirm_payments(c, ids, shard=0) == len(ids)
    waiting, _ = _counted(engine)
    assert _kept(engine, "waiting") == waiting


def test_a_confirm_the_database_refuses_as_busy_leaves_its_connection_counting(
        engine: Engine) -> None:
    """A confirm whose UPDATE waits too long on a payment's lock raises the database's busy
    error (the run retries the chunk on it), not an error of its own clean-up; the
    connection is left with the variable unset, and the retry counts what it moves."""
    if engine.dialect.name != "mysql":
        pytest.skip("a MySQL lock wait")
    ids = _awaiting_bank_transfers(engine, random.Random(9), 40)
    with engine.connect() as blocker, engine.connect() as c:
        blocker.execute(select(Payment.id).where(Payment.id == ids[-1]).with_for_update())
        c.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
        c.commit()
        with pytest.raises(OperationalError) as refused, c.begin():
            storage.confirm_payments(c, ids, shard=0)
        assert is_busy(refused.value)
        assert c.scalar(text("SELECT @confirms_counted_by_statement")) is None
        c.rollback()
        c.execute(text("SET SESSION innodb_lock_wait_timeout = DEFAULT"))
        c.commit()
        blocker.rollback()
    _confirmed_and_counted(engine, ids)


def test_a_confirm_whose_connection_is_killed_reports_the_lost_connection(
        engine: Engine) -> None:
    """The server drops the confirm's connection while its UPDATE waits on a lock: the
    caller gets the lost connection (an outage the run resumes after), not the failed
    clean-up on a dead connection, and no pooled connection is left with the variable."""
    if engine.dialect.name != "mysql":
        pytest.skip("a MySQL KILL")
    ids = _awaiting_bank_transfers(engine, random.Random(13), 20)
    failed: list[BaseException] = []
    with engine.connect() as blocker:
        blocker.execute(select(Payment.id).where(Payment.id == ids[-1]).with_for_update())
        with engine.connect() as c:
            victim = c.scalar(text("SELECT CONNECTION_ID()"))
            c.commit()

            def confirm() -> None:
                try:
                    with c.begin():
                        storage.confirm_payments(c, ids, shard=0)
                except BaseException as exc:
                    failed.append(exc)

            worker = threading.Thread(target=confirm)
            worker.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not blocker.scalar(text(
                    "SELECT COUNT(*) FROM information_schema.processlist "
                    f"WHERE id = {victim} AND state LIKE '%lock%'")):
                time.sleep(0.05)
            blocker.execute(text(f"KILL {victim}"))
            worker.join(10)
        blocker.rollback()
    assert len(failed) == 1 and is_unavailable(failed[0]), failed
    with engine.connect() as c:
        assert c.scalar(text("SELECT @confirms_counted_by_statement")) is None
    _confirmed_and_counted(engine, ids)


def test_replacing_the_count_trigger_while_payments_move_loses_no_move(
        engine: Engine) -> None:
    """Migration 0007 replaces the update trigger while old gateway tasks may still be
    moving payments: a move between its DROP and its CREATE would never be counted. A
    writer moves payments without pause while the revision is taken off and put back."""
    if engine.dialect.name != "mysql":
        pytest.skip("SQLite's triggers are not replaced")
    ids = _payments(engine, random.Random(17), 40)
    stop = threading.Event()
    moves = {"n": 0}

    failed: list[BaseException] = []

    def writer() -> None:
        flip = ["processing", "awaiting_verification"]
        try:
            while not stop.is_set():
                with engine.begin() as c:
                    c.execute(update(Payment).where(Payment.id.in_(ids))
                              .values(status=flip[moves["n"] % 2]))
                moves["n"] += 1
        except BaseException as exc:
            failed.append(exc)

    worker = threading.Thread(target=writer)
    worker.start()
    try:
        for _ in range(5):
            migrate.downgrade(engine, "0006")
            migrate.upgrade(engine)
    finally:
        stop.set()
        worker.join(30)
    assert not failed and moves["n"] > 10, failed
    waiting, _ = _counted(engine)
    assert _kept(engine, "waiting") == waiting


def test_a_migrated_database_starts_with_its_existing_queue_counted(
        engine: Engine) -> None:
    migrate.downgrade(engine, "0004")
    rng = random.Random(11)
    _payments(engine, rng, 200)
    migrate.upgrade(engine)
    waiting, _ = _counted(engine)
    assert sum(waiting.values()) > 0
    assert _kept(engine, "waiting") == waiting
