"""A reconciliation run: import new statements, match their lines to payments in chunks
keyed by position, record every match and discrepancy in payment_reconciliation, confirm
matched transfers. The rules are in rules.py, every statement in storage.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import structlog
from sqlalchemy.orm import Session, sessionmaker

from service.metrics import EventMetrics
from service.reconciliation import runs, statements, storage
from service.reconciliation.rules import Finding, Matcher
from service.reconciliation.sources import DirectoryInbox, Inbox

log = structlog.get_logger()
# Lines per chunk: one read, one candidates query and one write transaction each.
CHUNK = 5000
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
        result = _run(sessions, inbox, run_id or runs.new_run_id(), window, progress)
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
    pending = storage.pending(sessions)
    total = sum(s.line_count for s in pending)
    done = sum(s.matched_through for s in pending)
    matcher = Matcher(window)
    counts: dict[str, int] = {}
    matched = 0
    span: tuple[date, date] | None = None
    for statement in pending:
        after = statement.matched_through
        if after:
            # Resumed: what the committed chunks matched stays taken.
            matcher.taken |= storage.taken_by(sessions, statement.id)
        while (chunk := storage.chunk(sessions, statement.id, after, CHUNK)) is not None:
            dates = [ln.value_date for ln in chunk.lines]
            low, high = min(dates), max(dates)
            span = (min(span[0], low), max(span[1], high)) if span else (low, high)
            findings = _judge(sessions, matcher, chunk, window)
            matched += storage.record(sessions, run_id, findings, chunk.facilities,
                                      statement.facility_id, (statement.id, chunk.last_position))
            _count(findings, counts)
            done += len(chunk.lines)
            after = chunk.last_position
            if progress:
                progress(done, total)
        storage.finish_statement(sessions, statement.id)
    if span is not None:
        facilities: dict[int, str] = {}
        unsettled = []
        for payment, facility in storage.unsettled(sessions, *span, window):
            unsettled.append(payment)
            facilities[payment.id] = facility
        for batch in storage.batched(matcher.unrecorded(unsettled, span[1]), CHUNK):
            storage.record(sessions, run_id, batch, facilities, None)
            _count(batch, counts)
    result = RunResult(run_id, len(pending), total, matched, counts)
    log.info("reconciliation.finished", run_id=run_id, statements=len(pending), lines=total,
             matched=matched, issues=counts)
    return result


def _judge(sessions: sessionmaker[Session], matcher: Matcher, chunk: storage.Chunk,
           window: timedelta) -> list[Finding]:
    """Each line of the chunk judged in statement order: by the payment its reference names,
    else by amount and date among the candidates one query found for the whole chunk."""
    unnamed = [ln for ln in chunk.lines if ln.id not in chunk.by_reference]
    nearby = storage.by_amount(sessions, unnamed, window, chunk.facilities)
    findings = []
    for line in chunk.lines:
        payment = chunk.by_reference.get(line.id)
        if payment is not None:
            findings.append(matcher.by_reference(line, payment))
        else:
            findings.append(matcher.by_amount(line, nearby.get((line.amount, line.currency),
                                                               ())))
    return findings


def _count(findings: Sequence[Finding], counts: dict[str, int]) -> None:
    for f in findings:
        if f.issue is not None:
            counts[f.issue.value] = counts.get(f.issue.value, 0) + 1

