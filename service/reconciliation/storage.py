"""Every table read and write of a reconciliation run, set-based: a chunk of statement lines
is read with its reference matches in one join, its amount-only lines' candidates in one
indexed query, and its findings written with one multi-row INSERT, one joined UPDATE of the
lines, one UPDATE of the payments it confirms and the statement's checkpoint, in one
transaction. Chunks are keyed by position (line_no after the checkpoint), so a resumed run
starts where the last committed chunk ended and the cost of a chunk does not grow with
progress."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.clock import utcnow
from service.db.models import (
    BankStatement,
    BankStatementLine,
    LiveCount,
    Payment,
    PaymentReconciliation,
)
from service.domain.status import SETTLED, PaymentStatus
from service.reconciliation.rules import ISSUE_TYPES, Candidate, Finding, Line

S = PaymentStatus
# Payments a bank statement settles or should show.
SCOPE_PROVIDERS = ("bank_transfer",)
SCOPE_STATUSES = [S.AWAITING_VERIFICATION.value, *(s.value for s in SETTLED)]
LINES = cast(Table, BankStatementLine.__table__)
FINDINGS = cast(Table, PaymentReconciliation.__table__)
PAYMENTS = cast(Table, Payment.__table__)
STATEMENTS = cast(Table, BankStatement.__table__)


@dataclass(frozen=True)
class Pending:
    """An imported statement not yet reconciled, and how far an earlier run matched it."""

    id: int
    line_count: int
    facility_id: str | None
    matched_through: int


@dataclass
class Chunk:
    """Statement lines in position order, each with the payment its reference names (if
    one is in scope), and the facility of every payment involved."""

    lines: list[Line]
    by_reference: dict[int, Candidate]  # line id -> payment
    facilities: dict[int, str]  # payment id -> facility
    last_position: int


def _in_scope() -> Any:
    return and_(PAYMENTS.c.provider_code.in_(SCOPE_PROVIDERS),
                PAYMENTS.c.status.in_(SCOPE_STATUSES))


def pending(sessions: sessionmaker[Session]) -> list[Pending]:
    with sessions() as session:
        return [Pending(r.id, r.line_count, r.facility_id, r.matched_through or 0)
                for r in session.execute(
                    select(STATEMENTS.c.id, STATEMENTS.c.line_count, STATEMENTS.c.facility_id,
                           STATEMENTS.c.matched_through)
                    .where(STATEMENTS.c.status == "imported").order_by(STATEMENTS.c.id))]


def taken_by(sessions: sessionmaker[Session], statement_id: int) -> set[int]:
    """Payments the already-matched part of a statement took (a resumed run must not match
    them again): one pass over that statement's findings."""
    with sessions() as session:
        return set(session.scalars(
            select(FINDINGS.c.payment_id)
            .join(LINES, LINES.c.id == FINDINGS.c.statement_line_id)
            .where(LINES.c.statement_id == statement_id, FINDINGS.c.payment_id.is_not(None))))


def chunk(sessions: sessionmaker[Session], statement_id: int, after: int,
          size: int) -> Chunk | None:
    """The next `size` lines after position `after`, joined to their payments by reference."""
    p = PAYMENTS
    with sessions() as session:
        rows = session.execute(
            select(LINES.c.id, LINES.c.line_no, LINES.c.value_date, LINES.c.amount,
                   LINES.c.currency, LINES.c.reference, p.c.id.label("payment_id"),
                   p.c.reference.label("payment_reference"), p.c.amount.label("payment_amount"),
                   p.c.currency.label("payment_currency"), p.c.created_at, p.c.facility_id)
            .select_from(LINES.outerjoin(p, and_(p.c.reference == LINES.c.reference,
                                                 _in_scope())))
            .where(LINES.c.statement_id == statement_id, LINES.c.line_no > after)
            .order_by(LINES.c.line_no).limit(size)).all()
    if not rows:
        return None
    out = Chunk([], {}, {}, rows[-1].line_no)
    for r in rows:
        out.lines.append(Line(r.id, r.value_date, r.amount, r.currency, r.reference))
        if r.payment_id is not None:
            out.by_reference[r.id] = Candidate(r.payment_id, r.payment_reference,
                                               r.payment_amount, r.payment_currency,
                                               r.created_at.date())
            out.facilities[r.payment_id] = r.facility_id
    return out


def by_amount(sessions: sessionmaker[Session], lines: Sequence[Line], window: timedelta,
              facilities: dict[int, str]) -> dict[tuple[Decimal, str], list[Candidate]]:
    """Payments in scope with the amount of one of `lines`, booked within `window` of the
    lines' value dates, by (amount, currency): one query on (provider, amount, created_at)."""
    if not lines:
        return {}
    low = datetime.combine(min(ln.value_date for ln in lines) - window, time())
    high = datetime.combine(max(ln.value_date for ln in lines) + window + timedelta(days=1),
                            time())
    p = PAYMENTS
    found: dict[tuple[Decimal, str], list[Candidate]] = {}
    with sessions() as session:
        for r in session.execute(
                select(p.c.id, p.c.reference, p.c.amount, p.c.currency, p.c.created_at,
                       p.c.facility_id)
                .where(_in_scope(), p.c.amount.in_({ln.amount for ln in lines}),
                       p.c.created_at >= low, p.c.created_at < high)):
            found.setdefault((r.amount, r.currency), []).append(
                Candidate(r.id, r.reference, r.amount, r.currency, r.created_at.date()))
            facilities[r.id] = r.facility_id
    return found


def record(sessions: sessionmaker[Session], run_id: str, findings: Sequence[Finding],
           facilities: dict[int, str], statement_facility: str | None,
           checkpoint: tuple[int, int] | None = None) -> int:
    """Write findings (each belongs to its payment's facility, else the statement's), link
    clean matches to their lines, confirm the payments they settle, and move the statement's
    checkpoint (statement id, position reached): all or nothing. The number confirmed."""
    if not findings and checkpoint is None:
        return 0
    now = utcnow()
    rows = [{"run_id": run_id, "statement_line_id": f.line_id, "payment_id": f.payment_id,
             "facility_id": (facilities.get(f.payment_id) if f.payment_id is not None
                             else None) or statement_facility,
             "result": "matched" if f.matched else "issue",
             "issue_type": f.issue.value if f.issue else None,
             "expected_amount": f.expected, "actual_amount": f.actual, "detail": f.detail,
             "status": "closed" if f.matched else "open", "created_at": now}
            for f in findings]
    confirm = [f.payment_id for f in findings
               if f.matched and f.payment_id is not None and f.line_id is not None]
    with sessions.begin() as session:
        connection = session.connection()
        if rows:
            connection.execute(insert(FINDINGS), rows)
        line_ids = [f.line_id for f in findings if f.line_id is not None]
        if confirm and line_ids:
            _link(connection, min(line_ids), max(line_ids))
        if confirm:
            # awaiting_verification -> confirmed is a legal move; the WHERE keeps it so.
            connection.execute(
                update(PAYMENTS)
                .where(PAYMENTS.c.id.in_(confirm),
                       PAYMENTS.c.status == S.AWAITING_VERIFICATION.value)
                .values(status=S.CONFIRMED.value, updated_by="reconciliation",
                        updated_at=now, completed_at=now, next_check_at=None))
        if checkpoint is not None:
            statement_id, position = checkpoint
            connection.execute(update(STATEMENTS).where(STATEMENTS.c.id == statement_id)
                               .values(matched_through=position))
    return len(confirm)


def _link(connection: Connection, low: int, high: int) -> None:
    """Each clean match among the lines `low`..`high` (ids) names its payment on its line:
    one joined UPDATE (MariaDB's multi-table form, SQLite's UPDATE … FROM), bounded on both
    tables by the chunk's id range so it costs the same at any point of the statement."""
    connection.execute(
        update(LINES)
        .where(LINES.c.id == FINDINGS.c.statement_line_id,
               FINDINGS.c.statement_line_id.between(low, high), LINES.c.id.between(low, high),
               FINDINGS.c.result == "matched", LINES.c.matched_payment_id.is_(None))
        .values(matched_payment_id=FINDINGS.c.payment_id))


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
    settled = select(LINES.c.id).where(LINES.c.matched_payment_id == p.c.id).exists()
    # Reported earlier and still open: one issue per payment, not one per run.
    reported = (select(FINDINGS.c.id)
                .where(FINDINGS.c.payment_id == p.c.id, FINDINGS.c.issue_type == "unrecorded",
                       FINDINGS.c.status == "open").exists())
    with sessions() as session:
        rows = session.execute(
            select(p.c.id, p.c.reference, p.c.amount, p.c.currency, p.c.created_at,
                   p.c.facility_id)
            .where(_in_scope(), p.c.created_at.between(low, high), ~settled, ~reported)).all()
    for r in rows:
        yield (Candidate(r.id, r.reference, r.amount, r.currency, r.created_at.date()),
               r.facility_id)


def open_issue_counts(session: Session) -> dict[str, int]:
    """Unresolved issues by type, every type present (zero when none): read from the counts
    the writes keep (live_counts), so it costs the same with any number of issues."""
    counts = dict.fromkeys(ISSUE_TYPES, 0)
    for issue_type, count in session.execute(
            select(LiveCount.label_a, func.sum(LiveCount.n))
            .where(LiveCount.kind == "open_issue", LiveCount.label_a.in_(ISSUE_TYPES))
            .group_by(LiveCount.label_a)):
        counts[issue_type] = int(count)
    return counts


def summary(session: Session, run_id: str, *where: Any) -> dict[str, Any] | None:
    """What a run found, counted over the findings `where` admits (a facility's)."""
    rows = session.execute(
        select(PaymentReconciliation.result, PaymentReconciliation.issue_type,
               PaymentReconciliation.status, func.count(),
               func.min(PaymentReconciliation.created_at))
        .where(PaymentReconciliation.run_id == run_id, *where)
        .group_by(PaymentReconciliation.result, PaymentReconciliation.issue_type,
                  PaymentReconciliation.status)).all()
    if not rows:
        return None
    issues: dict[str, dict[str, int]] = {}
    matched = 0
    for result, issue_type, status, count, _ in rows:
        if result == "matched":
            matched += count
        else:
            issues.setdefault(issue_type, {}).setdefault(status, 0)
            issues[issue_type][status] += count
    started = min(r[4] for r in rows)
    return {"run_id": run_id, "started_at": started.isoformat() + "Z", "matched": matched,
            "issues": issues,
            "open_issues": sum(v.get("open", 0) for v in issues.values())}


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
