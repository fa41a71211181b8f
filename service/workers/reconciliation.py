"""A reconciliation run: import new statements, match their lines to payments in chunks,
record every match and discrepancy in payment_reconciliation, confirm matched transfers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, cast

import structlog
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.clock import utcnow
from service.db.models import BankStatement, BankStatementLine, Payment, PaymentReconciliation
from service.domain.reconciliation import ISSUE_TYPES, Candidate, Finding, Line, Matcher
from service.domain.status import SETTLED, PaymentStatus
from service.metrics import EventMetrics
from service.workers import run_queue, statements
from service.workers.statement_sources import DirectoryInbox, Inbox

log = structlog.get_logger()
S = PaymentStatus
# Payments a bank statement settles or should show.
SCOPE_PROVIDERS = ("bank_transfer",)
SCOPE_STATUSES = [S.AWAITING_VERIFICATION.value, *(s.value for s in SETTLED)]
CHUNK = 1000
LINES_TABLE = cast(Table, BankStatementLine.__table__)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RunResult:
    run_id: str
    statements: int
    lines: int
    matched: int
    issues: dict[str, int]


def run(sessions: sessionmaker[Session], inbox: Inbox | Path, *, run_id: str | None = None,
        window: timedelta = timedelta(days=2), progress: Progress | None = None,
        metrics: EventMetrics | None = None) -> RunResult:
    """Import what is new in `inbox` (a statement directory, or statements.inbox_for(...)),
    then match every imported, not yet reconciled statement; counted in `metrics`."""
    try:
        result = _run(sessions, inbox, run_id or run_queue.new_run_id(), window, progress)
    except Exception:
        if metrics is not None:
            metrics.reconciliation_runs.labels("failed").inc()
        raise
    if metrics is not None:
        metrics.reconciliation_runs.labels("completed").inc()
        metrics.reconciliation_lines.inc(result.lines)
        for issue_type, count in result.issues.items():
            metrics.reconciliation_found.labels(issue_type).inc(count)
    return result


def _run(sessions: sessionmaker[Session], inbox: Inbox | Path, run_id: str, window: timedelta,
         progress: Progress | None) -> RunResult:
    statements.import_all(sessions, DirectoryInbox(inbox) if isinstance(inbox, Path) else inbox)
    with sessions() as session:
        pending = list(session.execute(
            select(BankStatement.id, BankStatement.line_count, BankStatement.facility_id)
            .where(BankStatement.status == "imported").order_by(BankStatement.id)))
    total = sum(count for _, count, _ in pending)
    done = 0
    matcher = Matcher(window)
    counts: dict[str, int] = {}
    matched = 0
    first: date | None = None
    last: date | None = None
    for statement_id, _count, facility_id in pending:
        after = 0
        while True:
            with sessions() as session:
                chunk = [Line(r.id, r.value_date, r.amount, r.currency, r.reference)
                         for r in session.execute(
                             select(BankStatementLine.id, BankStatementLine.value_date,
                                    BankStatementLine.amount, BankStatementLine.currency,
                                    BankStatementLine.reference)
                             .where(BankStatementLine.statement_id == statement_id,
                                    BankStatementLine.id > after, ~_judged())
                             .order_by(BankStatementLine.id).limit(CHUNK))]
            if not chunk:
                break
            after = chunk[-1].id
            first = min([first, *(ln.value_date for ln in chunk)] if first else
                        [ln.value_date for ln in chunk])
            last = max([last, *(ln.value_date for ln in chunk)] if last else
                       [ln.value_date for ln in chunk])
            findings = _match_chunk(sessions, matcher, chunk, window)
            matched += _record(sessions, run_id, findings, counts, facility_id)
            done += len(chunk)
            if progress:
                progress(done, total)
        with sessions.begin() as session:
            session.execute(update(BankStatement).where(BankStatement.id == statement_id)
                            .values(status="reconciled"))
    if first is not None and last is not None:
        _record(sessions, run_id, _unrecorded(sessions, matcher, first, last, window), counts,
                None)
    result = RunResult(run_id, len(pending), total, matched, counts)
    log.info("reconciliation.finished", run_id=run_id, statements=len(pending), lines=total,
             matched=matched, issues=counts)
    return result


def _judged() -> Any:
    """Lines some run already recorded a finding for: a run killed halfway resumes after
    them instead of reporting them twice."""
    return (select(PaymentReconciliation.id)
            .where(PaymentReconciliation.statement_line_id == BankStatementLine.id)
            .exists())


def _candidates(session: Session, where: Any) -> list[Candidate]:
    return [Candidate(r.id, r.reference, r.amount, r.currency, r.created_at.date())
            for r in session.execute(
                select(Payment.id, Payment.reference, Payment.amount, Payment.currency,
                       Payment.created_at)
                .where(Payment.provider_code.in_(SCOPE_PROVIDERS),
                       Payment.status.in_(SCOPE_STATUSES), where))]


def _match_chunk(sessions: sessionmaker[Session], matcher: Matcher, chunk: Sequence[Line],
                 window: timedelta) -> list[Finding]:
    references = {ln.reference for ln in chunk if ln.reference}
    with sessions() as session:
        by_reference = {c.reference: c for c in _candidates(
            session, Payment.reference.in_(references))} if references else {}
        findings = []
        for line in chunk:
            payment = by_reference.get(line.reference or "")
            if payment is not None:
                findings.append(matcher.by_reference(line, payment))
                continue
            low = datetime.combine(line.value_date - window, time())
            high = datetime.combine(line.value_date + window + timedelta(days=1), time())
            nearby = _candidates(session, Payment.created_at.between(low, high)
                                 & (Payment.amount == line.amount))
            findings.append(matcher.by_amount(line, nearby))
    return findings


def _unrecorded(sessions: sessionmaker[Session], matcher: Matcher, first: date, last: date,
                window: timedelta) -> list[Finding]:
    # A payment may precede its bank line by up to the window, so the span starts that much
    # before the statement's first value date; it ends a window before the last one, since
    # later payments may still be on their way.
    low = datetime.combine(first - window, time())
    high = datetime.combine(last - window + timedelta(days=1), time())
    with sessions() as session:
        already = select(BankStatementLine.matched_payment_id).where(
            BankStatementLine.matched_payment_id.is_not(None))
        # Reported yesterday and still open: one issue per payment, not one per run.
        reported = select(PaymentReconciliation.payment_id).where(
            PaymentReconciliation.issue_type == "unrecorded",
            PaymentReconciliation.status == "open",
            PaymentReconciliation.payment_id.is_not(None))
        payments = _candidates(session, Payment.created_at.between(low, high)
                               & Payment.id.not_in(already) & Payment.id.not_in(reported))
    return matcher.unrecorded(payments, last)


def _record(sessions: sessionmaker[Session], run_id: str, findings: Sequence[Finding],
            counts: dict[str, int], statement_facility: str | None) -> int:
    """Write a chunk's findings; each belongs to its payment's facility, else to the
    statement's (banks.json `facility_id`)."""
    now = utcnow()
    rows = []
    payment_ids = {f.payment_id for f in findings if f.payment_id is not None}
    facilities: dict[int, str] = {}
    if payment_ids:
        with sessions() as session:
            facilities = {row.id: row.facility_id for row in session.execute(
                select(Payment.id, Payment.facility_id).where(Payment.id.in_(payment_ids)))}
    confirm: list[int] = []
    links: list[dict[str, int]] = []
    for f in findings:
        facility = (facilities.get(f.payment_id) if f.payment_id is not None else None)
        rows.append({"run_id": run_id, "statement_line_id": f.line_id, "payment_id": f.payment_id,
                     "facility_id": facility or statement_facility,
                     "result": "matched" if f.matched else "issue",
                     "issue_type": f.issue.value if f.issue else None,
                     "expected_amount": f.expected, "actual_amount": f.actual,
                     "detail": f.detail, "status": "closed" if f.matched else "open",
                     "created_at": now})
        if f.issue is not None:
            counts[f.issue.value] = counts.get(f.issue.value, 0) + 1
        if f.matched and f.payment_id is not None and f.line_id is not None:
            confirm.append(f.payment_id)
            links.append({"line_id": f.line_id, "payment_id": f.payment_id})
    if not rows:
        return 0
    with sessions.begin() as session:
        session.execute(insert(PaymentReconciliation), rows)
        if links:
            session.execute(
                update(LINES_TABLE)
                .where(LINES_TABLE.c.id == bindparam("line_id"))
                .values(matched_payment_id=bindparam("payment_id")), links)
        if confirm:
            # awaiting_verification -> confirmed is a legal move; the WHERE keeps it so.
            session.execute(
                update(Payment)
                .where(Payment.id.in_(confirm),
                       Payment.status == S.AWAITING_VERIFICATION.value)
                .values(status=S.CONFIRMED.value, updated_by="reconciliation",
                        updated_at=now, completed_at=now, next_check_at=None)
                .execution_options(synchronize_session=False))
    return len(confirm)


def open_issue_counts(session: Session) -> dict[str, int]:
    """Unresolved issues by type, every type present (zero when none)."""
    counts = dict.fromkeys(ISSUE_TYPES, 0)
    for issue_type, count in session.execute(
            select(PaymentReconciliation.issue_type, func.count())
            .where(PaymentReconciliation.status == "open",
                   PaymentReconciliation.issue_type.in_(ISSUE_TYPES))
            .group_by(PaymentReconciliation.issue_type)):
        counts[issue_type] = count
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
