"""A reconciliation run: import new statements, match their lines to payments in chunks
keyed by position, record every match and discrepancy in payment_reconciliation, confirm
matched transfers. The rules are in rules.py, the run's reads and writes in storage.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.db.availability import is_busy
from service.metrics import EventMetrics
from service.reconciliation import runs, statements, storage
from service.reconciliation.rules import Finding, Matcher
from service.reconciliation.sources import DirectoryInbox, Inbox

log = structlog.get_logger()
# Lines per chunk: one read, one candidates query and one write transaction each.
CHUNK = 5000
# Times a chunk is tried when the database says it is busy, before the run gives up (and the
# next run resumes at the checkpoint).
BUSY_RETRIES = 3
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
    pending = _start(sessions, inbox)
    total = sum(s.line_count for s in pending)
    done = sum(s.matched_through for s in pending)
    counts: dict[str, int] = {}
    matched = 0
    span: tuple[date, date] | None = None
    with Confirmer(sessions) as confirmer:
        for statement in pending:
            after = statement.matched_through
            while True:
                judged = _judge_chunk(sessions, run_id, statement, after, window, confirmer)
                if judged is None:
                    break
                chunk, findings, clean = judged
                confirmer.submit(chunk)
                matched += clean
                _count(findings, counts)
                span = ((min(span[0], chunk.first_date), max(span[1], chunk.last_date))
                        if span else (chunk.first_date, chunk.last_date))
                done += chunk.lines
                after = chunk.last
                if progress:
                    progress(done, total)
            confirmer.wait()
            storage.finish_statement(sessions, statement.id)
    if span is not None:
        facilities: dict[int, str] = {}
        unsettled = []
        for payment, facility in storage.unsettled(sessions, *span, window):
            unsettled.append(payment)
            facilities[payment.id] = facility
        for batch in _batched(Matcher(window).unrecorded(unsettled, span[1]), CHUNK):
            with sessions.begin() as session:
                storage.record(session.connection(), run_id, batch, facilities, None)
            _count(batch, counts)
    result = RunResult(run_id, len(pending), total, matched, counts)
    log.info("reconciliation.finished", run_id=run_id, statements=len(pending), lines=total,
             matched=matched, issues=counts)
    return result


def _start(sessions: sessionmaker[Session], inbox: Inbox | Path) -> list[storage.Pending]:
    """Import what is new; the statements to match, with the optimizer's statistics of
    their lines and findings made fresh (see storage.refresh_statistics)."""
    statements.import_all(sessions, DirectoryInbox(inbox) if isinstance(inbox, Path) else inbox)
    pending = storage.pending(sessions)
    if pending:
        storage.refresh_statistics(sessions)
    return pending


def _judge_chunk(sessions: sessionmaker[Session], run_id: str, statement: storage.Pending,
                 after: int, window: timedelta, confirmer: Confirmer | None = None
                 ) -> tuple[storage.Bounds, list[Finding], int] | None:
    """Judge and record the chunk after position `after`, in one transaction: (its bounds,
    the findings the rules made, how many lines were clean matches), or None at the end. A
    chunk the database refused as busy (a deadlock with a payment moved at the same moment,
    a lock wait) is rolled back whole and tried again."""
    for attempt in range(1, BUSY_RETRIES + 1):
        try:
            with sessions.begin() as session:
                connection = session.connection()
                chunk = storage.bounds(connection, statement.id, after, CHUNK)
                if chunk is None:
                    return None
                clean = storage.write_clean_matches(connection, run_id, chunk, window)
                rest = storage.rest(connection, run_id, chunk)
                findings = _judge(connection, run_id, chunk, rest, window)
                clean += storage.record(connection, run_id, findings, rest.facilities,
                                        statement.facility_id)
            return chunk, findings, clean
        except OperationalError as exc:
            if attempt == BUSY_RETRIES or not is_busy(exc):
                raise
            log.warning("reconciliation.chunk_retried", statement_id=statement.id,
                        after=after, attempt=attempt, error=str(exc.orig)[:200])
            if confirmer is not None:
                # A finding naming a payment the chunk before settles (a duplicate) checks
                # its foreign key with a lock on that payment, which the confirm in flight
                # holds: the retry starts after that confirm has committed.
                confirmer.wait()
            time.sleep(0.1 * attempt)
    return None  # unreachable: the last attempt returns or raises


def _busy_retried(what: str, chunk: storage.Bounds, work: Callable[[Connection], object],
                  sessions: sessionmaker[Session]) -> None:
    """`work` in one transaction, tried again when the database refuses it as busy."""
    for attempt in range(1, BUSY_RETRIES + 1):
        try:
            with sessions.begin() as session:
                work(session.connection())
            return
        except OperationalError as exc:
            if attempt == BUSY_RETRIES or not is_busy(exc):
                raise
            log.warning(f"reconciliation.{what}_retried", statement_id=chunk.statement_id,
                        after=chunk.after, attempt=attempt, error=str(exc.orig)[:200])
            time.sleep(0.1 * attempt)


def _confirm_chunk(sessions: sessionmaker[Session], chunk: storage.Bounds,
                   part: tuple[int, int] = (0, 1)) -> None:
    """Confirm what the chunk's committed findings settle (`part`: see storage.confirm)."""
    _busy_retried("confirm", chunk, lambda c: storage.confirm(c, chunk, part), sessions)


def _checkpoint(sessions: sessionmaker[Session], chunk: storage.Bounds) -> None:
    _busy_retried("checkpoint", chunk, lambda c: storage.checkpoint(c, chunk), sessions)


class Confirmer:
    """Confirms each judged chunk, then moves its checkpoint, chunk after chunk.

    On MySQL the confirm runs on threads of their own, each with its own connection, while
    the next chunk is judged: the confirm UPDATE and its audit trigger are most of a run's
    database work, and the judging alone left the second core idle. PARTS threads split a
    chunk's payments by id modulo PARTS: they lock disjoint payments and, as each part
    counts its moves in a counter row of its own number (storage.confirm_payments),
    disjoint counter rows. The judging of the next chunk takes no lock a confirm holds, except for
    a duplicate line naming a payment the confirm is settling (its foreign key check): a
    deadlock there is retried after the confirm has committed. At most one chunk is ahead
    of its confirm; a failed confirm stops the run at the next chunk, with the checkpoint
    before it. On SQLite (one writer at a time) a chunk is confirmed where it is
    submitted."""

    PARTS = 2

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        bind = sessions.kw.get("bind")
        self._pool = (None if bind is None or bind.dialect.name == "sqlite"
                      else ThreadPoolExecutor(self.PARTS, thread_name_prefix="confirm"))
        self._ahead: tuple[storage.Bounds, list[Future[None]]] | None = None

    def submit(self, chunk: storage.Bounds) -> None:
        if self._pool is None:
            _confirm_chunk(self._sessions, chunk)
            _checkpoint(self._sessions, chunk)
            return
        self.wait()
        self._ahead = (chunk, [self._pool.submit(_confirm_chunk, self._sessions, chunk,
                                                 (i, self.PARTS))
                               for i in range(self.PARTS)])

    def wait(self) -> None:
        """Until every submitted chunk is confirmed and checkpointed; raises what a confirm
        raised."""
        if self._ahead is None:
            return
        (chunk, parts), self._ahead = self._ahead, None
        futures_wait(parts)
        failed = [part.exception() for part in parts if part.exception() is not None]
        for error in failed[1:]:
            log.warning("reconciliation.confirm_failed", statement_id=chunk.statement_id,
                        after=chunk.after, error=str(error)[:200])
        if failed:
            raise failed[0]  # type: ignore[misc]
        _checkpoint(self._sessions, chunk)

    def __enter__(self) -> Confirmer:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self.wait()
            elif self._ahead is not None:
                # The run failed while a chunk was confirmed: let its transactions end (a
                # resumed run confirms the chunk again), then raise what stopped the run.
                chunk, parts = self._ahead
                for part in futures_wait(parts).done:
                    if part.exception() is not None:
                        log.warning("reconciliation.confirm_failed",
                                    statement_id=chunk.statement_id, after=chunk.after,
                                    error=str(part.exception())[:200])
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


def _judge(connection: Connection, run_id: str, chunk: storage.Bounds, rest: storage.Rest,
           window: timedelta) -> list[Finding]:
    """The lines the clean-match INSERT left, judged by the rules in statement order: by the
    payment the reference names, else by amount and date among one query's candidates."""
    unnamed = [ln for ln in rest.lines if ln.id not in rest.by_reference]
    nearby = storage.by_amount(connection, run_id, chunk, unnamed, window, rest)
    matcher = Matcher(window, taken=rest.taken)
    findings = []
    for line in rest.lines:
        payment = rest.by_reference.get(line.id)
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


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
