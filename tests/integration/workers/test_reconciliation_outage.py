"""A reconciliation run whose database is killed in the middle (on MariaDB, a chunk's payments
are confirmed on two other connections while the next chunk is judged): the run fails
promptly with no thread left behind, and the run after the restart settles the statement as
if nothing had happened. Every line has one finding, every payment a clean line settled is
confirmed with one audit row, nothing else is confirmed, and the kept queue counts equal the
table. On a MariaDB of the test's own: it is killed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import and_, create_engine, func, select, text
from sqlalchemy.exc import DBAPIError

from bench.reconcile import fill_payments, write_statement
from service.db.engine import session_factory
from service.db.models import (
    BankStatement,
    LiveCount,
    Payment,
    PaymentAuditLog,
    PaymentReconciliation,
)
from service.reconciliation import runner
from tests.conftest import migrated_database
from tests.servers import mariadb_server

PAYMENTS = 4 * runner.CHUNK


def test_a_database_killed_mid_run_loses_nothing(tmp_path: Path) -> None:
    database = mariadb_server(tmp_path / "mariadb")
    database.start()
    try:
        engine = create_engine(migrated_database(database.url),
                               isolation_level="READ COMMITTED")
        fill_payments(engine, PAYMENTS)
        with engine.begin() as connection:
            # As on a server that has run for a while: the payments' statistics are on disk
            # (a crash right after a bulk fill leaves them empty, and every plan bad).
            connection.execute(text("ANALYZE TABLE payments")).all()
        inbox = tmp_path / "statements"
        write_statement(inbox / "bank_of_khartoum" / "statement.csv", PAYMENTS)
        sessions = session_factory(engine)
        confirms: list[str] = []
        killed: list[int] = []

        def kill_after_the_first_chunk(done: int, _total: int) -> None:
            confirms.extend(t.name for t in threading.enumerate()
                            if t.name.startswith("confirm"))
            if done >= runner.CHUNK and not killed:
                killed.append(done)
                database.kill()  # the first chunk's confirm may still be running

        started = time.monotonic()
        with pytest.raises(DBAPIError):
            runner.run(sessions, inbox, progress=kill_after_the_first_chunk)
        assert time.monotonic() - started < 60
        assert confirms, "the chunk was confirmed on threads of its own"
        assert not [t for t in threading.enumerate() if t.name.startswith("confirm")]

        database.start()
        engine.dispose()  # the old server's connections are gone
        with sessions() as session:
            checkpoint = session.scalar(select(BankStatement.matched_through))
        assert (checkpoint or 0) < PAYMENTS - PAYMENTS // 997, "the run really stopped"
        resumed = runner.run(sessions, inbox)
        assert resumed.lines == PAYMENTS - PAYMENTS // 997  # the lines that reach the bank

        matched = and_(PaymentReconciliation.payment_id == Payment.id,
                       PaymentReconciliation.result == "matched",
                       PaymentReconciliation.statement_line_id.is_not(None))
        with sessions() as session:
            lines_judged = session.execute(
                select(func.count(), func.count(func.distinct(
                    PaymentReconciliation.statement_line_id)))
                .where(PaymentReconciliation.statement_line_id.is_not(None))).one()
            settled = set(session.scalars(select(Payment.id).where(
                select(PaymentReconciliation.id).where(matched).exists())))
            confirmed = set(session.scalars(select(Payment.id).where(
                Payment.status == "confirmed")))
            moves = session.execute(
                select(PaymentAuditLog.entity_id, func.count())
                .where(PaymentAuditLog.action == "status_change",
                       PaymentAuditLog.new_value == "confirmed")
                .group_by(PaymentAuditLog.entity_id)).all()
            waiting = session.scalar(select(func.count()).select_from(Payment).where(
                Payment.status == "awaiting_verification"))
            kept = session.scalar(select(func.coalesce(func.sum(LiveCount.n), 0)).where(
                LiveCount.kind == "waiting", LiveCount.label_b == "awaiting_verification"))
        assert lines_judged == (resumed.lines, resumed.lines)
        assert confirmed == settled and len(confirmed) > PAYMENTS * 9 // 10
        assert {entity for entity, _ in moves} == confirmed and all(n == 1 for _, n in moves)
        assert kept == waiting == PAYMENTS - len(confirmed)
        engine.dispose()
    finally:
        database.stop()
