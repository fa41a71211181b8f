"""Reconciliation on real MariaDB and on the embedded SQLite (whose SQL for dates and money
differs): a generated 10,000-line statement with one seeded discrepancy of each type finds
exactly those, and a run killed halfway resumes without reporting twice."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pymysql
import pytest
from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.clock import utcnow
from service.db.engine import session_factory, sqlite_engine
from service.db.migrate import prepare
from service.db.models import (
    BankStatement,
    BankStatementLine,
    LiveCount,
    Payment,
    PaymentAuditLog,
    PaymentReconciliation,
)
from service.reconciliation import reports, runner, statements, storage
from service.reconciliation.sources import BankFormat, FileSource

LINES = 10_000


@pytest.fixture(params=["mariadb", "sqlite"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "mariadb":
        yield request.getfixturevalue("ctx").sessions
        return
    engine = sqlite_engine(f"sqlite:///{tmp_path / 'embedded.db'}")
    prepare(engine)
    yield session_factory(engine)
    engine.dispose()


def _seed_payments(sessions: sessionmaker[Session], day: date,
                   count: int) -> list[dict[str, object]]:
    now = utcnow()
    booked = datetime.combine(day, datetime.min.time()) + timedelta(hours=10)
    rows: list[dict[str, object]] = [{
        "public_id": f"pay_rec_{n}", "reference": f"NC-REC-{n:06d}",
        "provider_code": "bank_transfer", "facility_id": "fac-1", "patient_id": f"p-{n}",
        "amount": Decimal(1000 + n) + Decimal("0.25"), "currency": "SDG",
        "total_fees": Decimal("0"), "net_amount": Decimal("0"), "refunded_amount": Decimal("0"),
        "status": "awaiting_verification", "created_by": "t", "updated_by": "t",
        "created_at": booked, "updated_at": now, "check_attempts": 0,
    } for n in range(count)]
    with sessions.begin() as session:
        session.execute(insert(Payment), rows)
    return rows


def _ids(sessions: sessionmaker[Session], references: list[str]) -> dict[str, int]:
    with sessions() as session:
        rows = session.execute(select(Payment.reference, Payment.id)
                               .where(Payment.reference.in_(references)))
        return {row.reference: row.id for row in rows}


def test_a_large_statement_yields_exactly_the_seeded_discrepancies(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    day = date.today() - timedelta(days=5)
    # LINES payments; five are tampered with on the statement, one never appears on it.
    payments = _seed_payments(sessions, day, LINES)
    ref = [str(p["reference"]) for p in payments]
    statement_dir = tmp_path / "statements"
    (statement_dir / "bank_of_khartoum").mkdir(parents=True)
    path = statement_dir / "bank_of_khartoum" / f"{day}.csv"
    seeded = {"amount": ref[10], "unrecorded": ref[20], "timing": ref[30],
              "currency": ref[40], "duplicate": ref[50], "by_amount": ref[60]}
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["value_date", "amount", "currency", "reference", "description"])
        for p in payments:
            reference, amount = str(p["reference"]), str(p["amount"])
            value_date, currency = day + timedelta(days=1), "SDG"
            if reference == seeded["unrecorded"]:
                continue
            if reference == seeded["amount"]:
                amount = str(Decimal(amount) - 100)
            if reference == seeded["timing"]:
                value_date = day + timedelta(days=5)
            if reference == seeded["currency"]:
                currency = "USD"
            if reference == seeded["by_amount"]:
                reference = ""  # the bank lost the reference: matched by amount and date
            out.writerow([value_date, amount, currency, reference, "transfer"])
            if reference == seeded["duplicate"]:
                out.writerow([value_date, amount, currency, reference, "transfer again"])
        out.writerow([day, "999999.99", "SDG", "UNKNOWN-REF-1", "not ours"])  # missing

    seen: list[tuple[int, int]] = []
    result = runner.run(sessions, statement_dir,
                                progress=lambda done, total: seen.append((done, total)))
    assert result.lines == LINES + 1
    assert seen[-1] == (LINES + 1, LINES + 1)
    ids = _ids(sessions, list(seeded.values()))
    with sessions() as session:
        issues = {(r.issue_type, r.payment_id) for r in session.scalars(
            select(PaymentReconciliation).where(PaymentReconciliation.run_id == result.run_id,
                                                PaymentReconciliation.result == "issue"))}
        confirmed = session.scalar(select(func.count()).select_from(Payment)
                                   .where(Payment.status == "confirmed"))
    assert issues == {
        ("amount", ids[seeded["amount"]]), ("unrecorded", ids[seeded["unrecorded"]]),
        ("timing", ids[seeded["timing"]]), ("currency", ids[seeded["currency"]]),
        ("duplicate", ids[seeded["duplicate"]]), ("missing", None),
    }
    assert result.issues == {t: 1 for t in
                             ("amount", "unrecorded", "timing", "currency", "duplicate",
                              "missing")}
    # Everything cleanly matched is now confirmed (the line matched by amount, and the first
    # line of the duplicated pair); amount, timing, currency and unrecorded ones wait.
    assert confirmed == LINES - 4
    assert result.matched == confirmed
    with sessions() as session:
        summary = reports.summary(session, result.run_id)
    assert summary is not None and summary["open_issues"] == 6

    again = runner.run(sessions, statement_dir)  # same file: nothing new
    assert again.lines == 0
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(BankStatement)) == 1


def _late_payment(sessions: sessionmaker[Session], template: dict[str, object], day: date,
                  name: str) -> dict[str, object]:
    row = {**template, "public_id": f"pay_{name}", "reference": f"NC-{name}",
           "created_at": datetime.combine(day, datetime.min.time()) + timedelta(hours=9)}
    with sessions.begin() as session:
        session.execute(insert(Payment), [row])
    return row


def _statement(directory: Path, day: date, lines: list[tuple[date, dict[str, object]]]) -> None:
    (directory / "bank_of_khartoum").mkdir(parents=True, exist_ok=True)
    with (directory / "bank_of_khartoum" / f"{day}.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["value_date", "amount", "currency", "reference", "description"])
        for value_date, p in lines:
            out.writerow([value_date, str(p["amount"]), "SDG", str(p["reference"]), "transfer"])


def test_a_run_killed_halfway_resumes_without_reporting_twice(
        sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    day = date.today() - timedelta(days=10)
    payments = _seed_payments(sessions, day, 2 * runner.CHUNK + 10)
    late = _late_payment(sessions, payments[-1], day + timedelta(days=4), "LATE-1")
    # payments[0] never reaches the bank; the late line puts it past its settlement window.
    _statement(tmp_path, day, [(day + timedelta(days=1), p) for p in payments[1:]]
               + [(day + timedelta(days=4), late)])
    real_record = storage.record
    calls = {"n": 0}

    def dying_record(*args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(storage, "record", dying_record)
    with pytest.raises(RuntimeError, match="killed"):
        runner.run(sessions, tmp_path)
    monkeypatch.setattr(storage, "record", real_record)
    resumed = runner.run(sessions, tmp_path)
    # The next statement arrives; payments[0] is still missing from the bank but already
    # has its open issue.
    later_payment = _late_payment(sessions, payments[-1], day + timedelta(days=6), "LATE-2")
    _statement(tmp_path, day + timedelta(days=6), [(day + timedelta(days=6), later_payment)])
    later = runner.run(sessions, tmp_path)
    with sessions() as session:
        per_line = session.execute(
            select(PaymentReconciliation.statement_line_id, func.count())
            .where(PaymentReconciliation.statement_line_id.is_not(None))
            .group_by(PaymentReconciliation.statement_line_id)).all()
        unrecorded = session.scalars(select(PaymentReconciliation.payment_id).where(
            PaymentReconciliation.issue_type == "unrecorded")).all()
    assert len(per_line) == len(payments) + 1 and all(n == 1 for _, n in per_line)
    assert resumed.issues == {"unrecorded": 1} and later.issues == {}
    first = str(payments[0]["reference"])
    assert unrecorded == [_ids(sessions, [first])[first]]


@pytest.mark.parametrize("failing", [None, 0, 1], ids=["every part", "part 0", "part 1"])
def test_a_run_stopped_before_a_chunk_is_confirmed_confirms_it_when_resumed(
        sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        failing: int | None) -> None:
    """A chunk's findings are committed before its payments are confirmed (on MariaDB by
    other connections, while the next chunk is judged): a confirm that fails stops the run,
    and the resumed run confirms that chunk, without a second finding for any line. Every
    confirmed payment then has exactly one audit row for the move, and the kept counts of
    the queue equal a count of the table. On MariaDB the chunk is confirmed in two parts:
    either one failing alone stops the run too, the other one's work committed."""
    if failing is not None and sessions.kw["bind"].dialect.name == "sqlite":
        pytest.skip("SQLite confirms a chunk in one part")
    day = date.today() - timedelta(days=10)
    payments = _seed_payments(sessions, day, 3 * runner.CHUNK)
    _statement(tmp_path, day, [(day + timedelta(days=1), p) for p in payments])
    real_confirm = storage.confirm

    def dying_confirm(connection: Any, chunk: storage.Bounds,
                      part: tuple[int, int] = (0, 1)) -> int:
        if chunk.after == runner.CHUNK and failing in (None, part[0]):  # the second chunk
            raise RuntimeError("worker killed")
        return real_confirm(connection, chunk, part)

    monkeypatch.setattr(storage, "confirm", dying_confirm)
    with pytest.raises(RuntimeError, match="killed"):
        runner.run(sessions, tmp_path)
    monkeypatch.setattr(storage, "confirm", real_confirm)
    with sessions() as session:
        checkpoint = session.scalar(select(BankStatement.matched_through))
        judged_lines = session.scalar(select(func.count()).select_from(PaymentReconciliation))
        waiting = session.scalar(select(func.count()).select_from(Payment).where(
            Payment.status == "awaiting_verification"))
    # The first chunk is confirmed and checkpointed; what was judged after it is not
    # confirmed yet, and the checkpoint is not past it.
    assert checkpoint == runner.CHUNK
    assert (judged_lines or 0) >= 2 * runner.CHUNK
    # The second chunk's payments wait (half of them when one part failed), the third's too.
    assert waiting == (2 * runner.CHUNK if failing is None else
                       runner.CHUNK + runner.CHUNK // 2)

    resumed = runner.run(sessions, tmp_path)
    assert resumed.lines == 3 * runner.CHUNK
    with sessions() as session:
        per_line = session.execute(
            select(PaymentReconciliation.statement_line_id, func.count())
            .group_by(PaymentReconciliation.statement_line_id)).all()
        statuses = {status: n for status, n in session.execute(
            select(Payment.status, func.count()).group_by(Payment.status))}
        moves = session.execute(
            select(PaymentAuditLog.entity_id, func.count())
            .where(PaymentAuditLog.action == "status_change",
                   PaymentAuditLog.new_value == "confirmed")
            .group_by(PaymentAuditLog.entity_id)).all()
        kept = session.scalar(select(func.coalesce(func.sum(LiveCount.n), 0)).where(
            LiveCount.kind == "waiting", LiveCount.label_a == "bank_transfer",
            LiveCount.label_b == "awaiting_verification"))
    assert len(per_line) == 3 * runner.CHUNK and all(n == 1 for _, n in per_line)
    assert statuses == {"confirmed": 3 * runner.CHUNK}
    with sessions() as session:
        assert session.execute(select(BankStatement.matched_through, BankStatement.status)
                               ).one() == (3 * runner.CHUNK, "reconciled")
    assert len(moves) == 3 * runner.CHUNK and all(n == 1 for _, n in moves)
    assert kept == 0


def test_a_payment_named_by_reference_is_never_taken_by_amount_wherever_chunks_fall(
        sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An amount-only line before the line naming the same payment: the naming line settles
    it and the other is missing, whether the two lines share a chunk or not."""
    day = date.today() - timedelta(days=5)
    payments = _seed_payments(sessions, day, 3)
    named = payments[2]
    lines = [(day + timedelta(days=1), p) for p in payments[:2]]
    amount_only = {**named, "reference": ""}
    lowered = {**named, "reference": str(named["reference"]).lower()}  # typed by the payer
    _statement(tmp_path, day, [*lines, (day + timedelta(days=1), amount_only),
                               (day + timedelta(days=1), lowered)])
    monkeypatch.setattr(runner, "CHUNK", 3)  # the two lines in different chunks
    result = runner.run(sessions, tmp_path)
    assert result.matched == 3 and result.issues == {"missing": 1}
    ids = _ids(sessions, [str(named["reference"])])
    with sessions() as session:
        settled_by = session.execute(
            select(BankStatementLine.line_no).join(
                PaymentReconciliation,
                PaymentReconciliation.statement_line_id == BankStatementLine.id)
            .where(PaymentReconciliation.payment_id == ids[str(named["reference"])],
                   PaymentReconciliation.result == "matched")).scalars().all()
    assert settled_by == [4]


def test_a_chunk_the_database_refuses_as_busy_is_tried_again(
        sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = date.today() - timedelta(days=5)
    payments = _seed_payments(sessions, day, 5)
    _statement(tmp_path, day, [(day + timedelta(days=1), p) for p in payments])
    real_record = storage.record
    calls = {"n": 0}

    def deadlocked_once(*args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:  # after the clean matches were written: all rolled back
            raise OperationalError("UPDATE payments", {}, pymysql.err.OperationalError(
                1213, "Deadlock found when trying to get lock"))
        return real_record(*args, **kwargs)

    monkeypatch.setattr(storage, "record", deadlocked_once)
    result = runner.run(sessions, tmp_path)
    assert calls["n"] == 2 and result.matched == 5 and result.issues == {}
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(PaymentReconciliation)) == 5


# What a bank's file may hold in its free text: quotes, backslashes, the driver's own
# placeholders, SQL, non-Latin text.
HOSTILE = ["O'Brien \\' \"quoted\"", "back\\slash\\", "%s %(x)s %% %d %",
           "'); DROP TABLE payments; --", "تحويل من مستشفى الخرطوم", "tab\tand\nnewline\r\n",
           "\\x00 \\0 \\Z `", "nul\x00 ctrl-z\x1a"]


@pytest.fixture(params=["as configured", "NO_BACKSLASH_ESCAPES"])
def escaping(request: pytest.FixtureRequest, sessions: sessionmaker[Session]
             ) -> Iterator[sessionmaker[Session]]:
    """The sessions, and on MariaDB also with a server that takes no backslash escapes (the
    driver must then double quotes instead)."""
    engine = sessions.kw["bind"]
    if request.param == "as configured":
        yield sessions
        return
    if engine.dialect.name != "mysql":
        pytest.skip("a MySQL sql_mode")
    strict = create_engine(engine.url, connect_args={
        "init_command": "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')"})
    yield session_factory(strict)
    strict.dispose()


def test_an_imported_statement_holds_every_text_exactly_as_the_file_had_it(
        escaping: sessionmaker[Session], tmp_path: Path) -> None:
    sessions = escaping
    path = tmp_path / "bank_of_khartoum" / "hostile.csv"
    path.parent.mkdir(parents=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["value_date", "amount", "currency", "reference", "description"])
        for n, about in enumerate(HOSTILE):
            out.writerow(["2025-01-30", f"-{n}1.5", "sdg", about[:40], about])
        out.writerow(["2025-01-31", "1e3", "SDG", "", ""])
    statement_id = statements.import_statement(sessions, FileSource(path), BankFormat())
    assert statement_id is not None
    with sessions() as session:
        stored = session.execute(
            select(BankStatementLine.line_no, BankStatementLine.amount,
                   BankStatementLine.currency, BankStatementLine.reference,
                   BankStatementLine.description)
            .where(BankStatementLine.statement_id == statement_id)
            .order_by(BankStatementLine.line_no)).all()
    assert [tuple(r) for r in stored] == [
        *[(n + 1, Decimal(f"-{n}1.50"), "SDG", about[:40].strip().upper(), about)
          for n, about in enumerate(HOSTILE)],
        (len(HOSTILE) + 1, Decimal("1000.00"), "SDG", None, None)]
