"""The table reads and writes of a reconciliation run, set-based and chunked by position
(the SQL conditions they share are in scope.py; what runs found is counted in reports.py).

A chunk is the lines at positions (after, after + size] of one statement, judged in one
transaction: clean reference matches (the payment the reference names, in scope, not taken,
same currency and amount, inside the date window) are written by one INSERT … SELECT that
never leaves the server; the few lines left are read in one query with the payment their
reference names, the amount-only ones get their candidates from one indexed query, and the
rules (rules.py) judge them in Python; their findings go in one multi-row INSERT. Once they
are committed, the payments the chunk settles are confirmed by a joined UPDATE, and then the
statement's checkpoint moves. A chunk's cost does not depend on where in the statement it
is, and a resumed run goes on after the checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Table,
    and_,
    case,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.clock import utcnow
from service.db.models import BankStatement, LiveCount
from service.db.triggers.counts import COUNTED_BY_STATEMENT
from service.domain.status import PaymentStatus
from service.reconciliation.rules import Candidate, Finding, Line
from service.reconciliation.scope import (
    FINDINGS,
    LINES,
    PAYMENTS,
    SCOPE_PROVIDERS,
    days_apart,
    in_scope,
    judged,
    named_on,
    taken,
)

S = PaymentStatus
STATEMENTS = cast(Table, BankStatement.__table__)
LIVE = cast(Table, LiveCount.__table__)


@dataclass(frozen=True)
class Pending:
    """An imported statement not yet reconciled, and how far an earlier run matched it."""

    id: int
    line_count: int
    facility_id: str | None
    matched_through: int


@dataclass(frozen=True)
class Bounds:
    """A chunk's extent: its positions, line ids and value dates."""

    statement_id: int
    after: int
    last: int  # the last position in the chunk
    lines: int
    first_date: date
    last_date: date


@dataclass
class Rest:
    """The lines of a chunk the clean-match INSERT left, in position order, with the payment
    each one's reference names (if one is in scope), and what is known of those payments."""

    lines: list[Line]
    by_reference: dict[int, Candidate]  # line id -> payment
    facilities: dict[int, str]  # payment id -> facility
    taken: set[int]  # payments an earlier line of this run or statement took


def pending(sessions: sessionmaker[Session]) -> list[Pending]:
    with sessions() as session:
        return [Pending(r.id, r.line_count, r.facility_id, r.matched_through or 0)
                for r in session.execute(
                    select(STATEMENTS.c.id, STATEMENTS.c.line_count, STATEMENTS.c.facility_id,
                           STATEMENTS.c.matched_through)
                    .where(STATEMENTS.c.status == "imported").order_by(STATEMENTS.c.id))]


def refresh_statistics(sessions: sessionmaker[Session]) -> None:
    """On MySQL, let the optimizer know the statement lines and findings as they are now.
    A server that crashed soon after an import restarts with the statistics it had last
    written, for a new database none: every chunk's statements were then planned as scans
    of one table per row of another (minutes for 20k lines). InnoDB samples a few pages of
    each index: milliseconds, whatever the size."""
    with sessions() as session:
        if session.get_bind().dialect.name == "mysql":
            session.execute(text("ANALYZE TABLE bank_statement_lines, payment_reconciliation")
                            ).all()


def _in_chunk(bounds: Bounds, lines: Any = LINES) -> Any:
    return and_(lines.c.statement_id == bounds.statement_id, lines.c.line_no > bounds.after,
                lines.c.line_no <= bounds.last)


def bounds(connection: Connection, statement_id: int, after: int, size: int) -> Bounds | None:
    row = connection.execute(
        select(func.count(), func.max(LINES.c.line_no), func.min(LINES.c.value_date),
               func.max(LINES.c.value_date))
        .where(LINES.c.statement_id == statement_id, LINES.c.line_no > after,
               LINES.c.line_no <= after + size)).one()
    count, last, first_date, last_date = row
    if not count:
        return None
    if isinstance(first_date, str):  # SQLite's MIN over a DATE column is its text
        first_date, last_date = date.fromisoformat(first_date), date.fromisoformat(last_date)
    return Bounds(statement_id, after, last, count, first_date, last_date)


def write_clean_matches(connection: Connection, run_id: str, chunk: Bounds,
                        window: timedelta) -> int:
    """One INSERT … SELECT of the chunk's clean reference matches (a payment's first line in
    the chunk, not taken before, same currency and amount, within the window); how many."""
    p = PAYMENTS
    named = (select(LINES.c.id.label("line_id"), LINES.c.line_no, LINES.c.value_date,
                    LINES.c.amount.label("actual"), LINES.c.currency,
                    p.c.id.label("payment_id"), p.c.amount.label("expected"),
                    p.c.currency.label("payment_currency"), p.c.created_at, p.c.facility_id,
                    func.row_number().over(partition_by=p.c.id,
                                           order_by=LINES.c.line_no).label("nth"))
             .select_from(LINES.join(p, and_(p.c.reference == LINES.c.reference, in_scope())))
             .where(_in_chunk(chunk), ~judged(LINES.c.id))).subquery("named")
    now = utcnow()
    clean = (select(literal(run_id), named.c.line_id, named.c.payment_id, named.c.facility_id,
                    literal("matched"), named.c.expected, named.c.actual, literal("closed"),
                    literal(now, FINDINGS.c.created_at.type))
             .where(named.c.nth == 1, named.c.currency == named.c.payment_currency,
                    named.c.actual == named.c.expected,
                    days_apart(connection, named.c.value_date, named.c.created_at)
                    <= window.days,
                    ~taken(named.c.payment_id, run_id, chunk.statement_id)))
    result = connection.execute(insert(FINDINGS).from_select(
        ["run_id", "statement_line_id", "payment_id", "facility_id", "result",
         "expected_amount", "actual_amount", "status", "created_at"], clean))
    return max(result.rowcount, 0)


def rest(connection: Connection, run_id: str, chunk: Bounds) -> Rest:
    """The chunk's lines without a finding yet, with the payment each reference names."""
    p = PAYMENTS
    done = FINDINGS.alias("done")
    rows = connection.execute(
        select(LINES.c.id, LINES.c.value_date, LINES.c.amount, LINES.c.currency,
               LINES.c.reference, p.c.id.label("payment_id"),
               p.c.reference.label("payment_reference"), p.c.amount.label("payment_amount"),
               p.c.currency.label("payment_currency"), p.c.created_at, p.c.facility_id,
               case((taken(p.c.id, run_id, chunk.statement_id), 1), else_=0).label("taken"))
        .select_from(LINES.outerjoin(done, done.c.statement_line_id == LINES.c.id)
                     .outerjoin(p, and_(p.c.reference == LINES.c.reference, in_scope())))
        .where(_in_chunk(chunk), done.c.id.is_(None))
        .order_by(LINES.c.line_no)).all()
    out = Rest([], {}, {}, set())
    for r in rows:
        out.lines.append(Line(r.id, _day(r.value_date), r.amount, r.currency, r.reference))
        if r.payment_id is not None:
            out.by_reference[r.id] = Candidate(r.payment_id, r.payment_reference,
                                               r.payment_amount, r.payment_currency,
                                               r.created_at.date())
            out.facilities[r.payment_id] = r.facility_id
            if r.taken:
                out.taken.add(r.payment_id)
    return out


def by_amount(connection: Connection, run_id: str, chunk: Bounds, lines: Sequence[Line],
              window: timedelta, known: Rest) -> dict[tuple[Decimal, str], list[Candidate]]:
    """Payments in scope with the amount of one of `lines`, booked within `window` of the
    chunk's value dates, that no line of the statement names, by (amount, currency): one
    query on (provider, amount, created_at). Their facilities and whether they are taken go
    into `known`.

    Whether a line names a candidate is a column, not a NOT EXISTS in the WHERE: MariaDB
    materializes such a NOT EXISTS as every reference of the statement, once per chunk,
    which made a run quadratic in the statement's length; in the select list it is one
    index lookup per candidate."""
    if not lines:
        return {}
    low = datetime.combine(chunk.first_date - window, time())
    high = datetime.combine(chunk.last_date + window + timedelta(days=1), time())
    p = PAYMENTS
    found: dict[tuple[Decimal, str], list[Candidate]] = {}
    for r in connection.execute(
            select(p.c.id, p.c.reference, p.c.amount, p.c.currency, p.c.created_at,
                   p.c.facility_id,
                   case((taken(p.c.id, run_id, chunk.statement_id), 1), else_=0)
                   .label("taken"),
                   case((named_on(chunk.statement_id, p.c.reference), 1), else_=0)
                   .label("named"))
            .where(in_scope(), p.c.amount.in_({ln.amount for ln in lines}),
                   p.c.created_at >= low, p.c.created_at < high)):
        if r.named:
            continue
        found.setdefault((r.amount, r.currency), []).append(
            Candidate(r.id, r.reference, r.amount, r.currency, r.created_at.date()))
        known.facilities[r.id] = r.facility_id
        if r.taken:
            known.taken.add(r.id)
    return found


def record(connection: Connection, run_id: str, findings: Sequence[Finding],
           facilities: dict[int, str], statement_facility: str | None) -> int:
    """Write findings (each belongs to its payment's facility, else the statement's) in one
    multi-row INSERT; how many of them are clean matches."""
    now = utcnow()
    rows = [{"run_id": run_id, "statement_line_id": f.line_id, "payment_id": f.payment_id,
             "facility_id": (facilities.get(f.payment_id) if f.payment_id is not None
                             else None) or statement_facility,
             "result": "matched" if f.matched else "issue",
             "issue_type": f.issue.value if f.issue else None,
             "expected_amount": f.expected, "actual_amount": f.actual, "detail": f.detail,
             "status": "closed" if f.matched else "open", "created_at": now}
            for f in findings]
    if rows:
        connection.execute(insert(FINDINGS), rows)
    return sum(1 for f in findings if f.matched and f.payment_id is not None)


def confirm(connection: Connection, chunk: Bounds, part: tuple[int, int] = (0, 1)) -> int:
    """Confirm the payments clean matches of the chunk settle (the SQL-written ones and the
    rules' alike): with `part` (i, n), those whose id is i modulo n. How many moved.

    The chunk's findings are committed before: a run stopped before its checkpoint moves
    judges no line twice (each has its finding) and confirms the chunk when it resumes.
    The payments are read first, then updated by primary key: a joined UPDATE locks what
    it reads of the findings, and with a plan that scans them (statistics a crash left
    empty) it waited on every finding the next chunk was writing."""
    index, parts = part
    found = (select(FINDINGS.c.payment_id)
             .select_from(LINES.join(FINDINGS, FINDINGS.c.statement_line_id == LINES.c.id))
             .where(_in_chunk(chunk), FINDINGS.c.result == "matched"))
    if parts > 1:
        found = found.where(FINDINGS.c.payment_id % parts == index)
    # A match always names its payment; "IS NOT NULL" in SQL made MariaDB filter the
    # findings by a range over every finding with a payment (it grows with the history).
    ids = [i for i in connection.execute(found).scalars() if i is not None]
    return confirm_payments(connection, ids, shard=index) if ids else 0


def confirm_payments(connection: Connection, ids: Sequence[int], shard: int = 0) -> int:
    """Move those of `ids` that await verification, of a provider reconciliation covers, to
    confirmed; how many moved. A payment whose provider changed since its line matched is
    no longer reconciliation's to settle: it stays as it is.

    On MySQL the moves are counted here, not by the update trigger row by row: one UPDATE
    per provider says how many of its payments left the queue, and one statement takes
    them off its count, in counter row `shard` (the confirm's parts pass their own numbers,
    so they never wait on each other's counter). The rows the trigger uses hold the rest
    of the count, so one counter row may go below zero; the exporter reads their sum. A
    payment another writer moved in the meantime is left out by the WHERE, so it is
    counted once, by that writer's trigger."""
    now = utcnow()
    counting = connection.dialect.name != "sqlite"
    moved = 0
    if counting:
        connection.execute(text(f"SET {COUNTED_BY_STATEMENT} = 1"))
    try:
        for provider in SCOPE_PROVIDERS:
            # awaiting_verification -> confirmed is a legal move; the WHERE keeps it so.
            n = max(connection.execute(
                update(PAYMENTS)
                .where(PAYMENTS.c.id.in_(ids), PAYMENTS.c.provider_code == provider,
                       PAYMENTS.c.status == S.AWAITING_VERIFICATION.value)
                .values(status=S.CONFIRMED.value, updated_by="reconciliation",
                        updated_at=now, completed_at=now, next_check_at=None)).rowcount, 0)
            if n and counting:
                _uncount(connection, provider, S.AWAITING_VERIFICATION.value, n, shard)
            moved += n
    except BaseException:
        if counting:
            _unset(connection)  # the caller sees the failure, not this clean-up's
        raise
    if counting:
        try:
            connection.execute(text(f"SET {COUNTED_BY_STATEMENT} = NULL"))
        except SQLAlchemyError:
            _unset(connection)
            raise
    return moved


def _unset(connection: Connection) -> None:
    """Leave no pooled connection with COUNTED_BY_STATEMENT set: unset it, or drop the
    connection (a lost one is dropped already)."""
    if connection.invalidated:
        return
    try:
        connection.execute(text(f"SET {COUNTED_BY_STATEMENT} = NULL"))
    except SQLAlchemyError:
        connection.invalidate()


def _uncount(connection: Connection, provider: str, status: str, n: int, shard: int) -> None:
    """Take `n` payments off the ('waiting', provider, status) count: what the trigger
    (service/db/triggers/counts.py) would have done for each of them."""
    key = and_(LIVE.c.kind == "waiting", LIVE.c.label_a == provider, LIVE.c.label_b == status,
               LIVE.c.shard == shard)
    if connection.execute(update(LIVE).where(key).values(n=LIVE.c.n - n)).rowcount == 0:
        connection.execute(mysql_insert(LIVE).values(
            kind="waiting", label_a=provider, label_b=status, shard=shard, n=-n
        ).on_duplicate_key_update(n=LIVE.c.n - n))


def checkpoint(connection: Connection, chunk: Bounds) -> None:
    """The statement is judged and confirmed through the chunk: a resumed run goes on after
    it. A checkpoint only moves forward."""
    connection.execute(update(STATEMENTS)
                       .where(STATEMENTS.c.id == chunk.statement_id,
                              func.coalesce(STATEMENTS.c.matched_through, 0) < chunk.last)
                       .values(matched_through=chunk.last))


def finish_statement(sessions: sessionmaker[Session], statement_id: int) -> None:
    with sessions.begin() as session:
        session.execute(update(STATEMENTS).where(STATEMENTS.c.id == statement_id)
                        .values(status="reconciled"))


def unsettled(sessions: sessionmaker[Session], first: date, last: date,
              window: timedelta) -> Iterator[tuple[Candidate, str]]:
    """Payments booked from a window before `first` to a window before `last` that no line
    settled and that have no open `unrecorded` issue yet, with their facility."""
    # A payment may precede its bank line by up to the window, so the span starts that much
    # before the statement's first value date; it ends a window before the last one, since
    # later payments may still be on their way.
    low = datetime.combine(first - window, time())
    high = datetime.combine(last - window + timedelta(days=1), time())
    p = PAYMENTS
    # Named by any line's finding (a match or an issue): the statement shows it.
    shown = FINDINGS.alias("shown")
    # Reported earlier and still open: one issue per payment, not one per run.
    reported = FINDINGS.alias("reported")
    # Anti-joins, not NOT EXISTS: MariaDB materialized a NOT EXISTS as every finding with a
    # line, a temporary table that outgrew memory (13 s of a 1M-line run, 0.5 s at 300k);
    # a LEFT JOIN … IS NULL is one index lookup per payment of the span (2.5 s at 1M).
    # No payment appears twice: only payments that join nothing are kept.
    with sessions() as session:
        rows = session.execute(
            select(p.c.id, p.c.reference, p.c.amount, p.c.currency, p.c.created_at,
                   p.c.facility_id)
            .select_from(
                p.outerjoin(shown, and_(shown.c.payment_id == p.c.id,
                                        shown.c.statement_line_id.is_not(None)))
                .outerjoin(reported, and_(reported.c.payment_id == p.c.id,
                                          reported.c.issue_type == "unrecorded",
                                          reported.c.status == "open")))
            .where(in_scope(), p.c.created_at.between(low, high), shown.c.id.is_(None),
                   reported.c.id.is_(None))).all()
    for r in rows:
        yield (Candidate(r.id, r.reference, r.amount, r.currency, r.created_at.date()),
               r.facility_id)


def _day(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else cast(date, value)
