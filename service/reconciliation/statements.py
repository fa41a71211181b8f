"""Bank statement import: each new statement (by checksum) is streamed into
bank_statement_lines in chunks, mapped per bank (see statement_sources).

A statement becomes visible to reconciliation only when its status flips to `imported`
in one UPDATE, after its last line. An import that failed (`failed`) or whose importer
died (`importing` with no progress for `stale_after`) is taken over by the next attempt
with a conditional UPDATE, its partial lines deleted in the same transaction, and imported
again from the first line; a live import by another worker is left alone.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, cast

import structlog
from sqlalchemy import Connection, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.clock import utcnow
from service.db.models import BankStatement, BankStatementLine
from service.db.results import rowcount
from service.reconciliation.sources import (
    BankFormat,
    DirectoryInbox,
    Inbox,
    Source,
    text,
)
from service.settings import Settings

log = structlog.get_logger()
# Lines per INSERT (and per transaction): one round trip and one commit each.
CHUNK = 1000
# The lines' amount column is DECIMAL(18, 2).
LARGEST = Decimal(10) ** 16
CENT = Decimal("0.01")
# An importer writes a chunk every few milliseconds; this long without one, it is dead.
STALE_AFTER = timedelta(minutes=10)
DONE = ("imported", "reconciled")
LINES = cast(Table, BankStatementLine.__table__)


class TakenOver(Exception):
    """Another worker took this import over (ours had stalled past STALE_AFTER)."""


def inbox_for(settings: Settings) -> Inbox:
    """S3 when AWS_S3_BUCKET is set, else STATEMENT_DIR."""
    if settings.aws_s3_bucket:
        from service.reconciliation import s3

        return s3.S3Inbox(s3.client(settings), settings.aws_s3_bucket,
                                    settings.aws_s3_prefix)
    return DirectoryInbox(settings.statement_dir)


def checksum(blocks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for block in blocks:
        digest.update(block)
    return digest.hexdigest()


def rows(source: Source, fmt: BankFormat) -> Iterator[dict[str, Any]]:
    """Statement lines one at a time (the file is never held in memory)."""
    name = source.location.rsplit("/", 1)[-1]
    with text(source) as handle:
        reader = csv.reader(handle, delimiter=fmt.delimiter)
        records = _records(reader, name)
        header = next(records, None) or []
        column = {title: index for index, title in enumerate(header)}
        value_date, amount = column.get(fmt.value_date), column.get(fmt.amount)
        currency, reference = column.get(fmt.currency), column.get(fmt.reference)
        description = column.get(fmt.description)
        # A statement spans a few dozen days: each date's text is parsed once.
        days: dict[str, date] = {}
        number = 0
        for row in records:
            if not row:
                continue  # a blank line, as csv.DictReader skipped them
            number += 1
            try:
                if value_date is None or amount is None:
                    raise KeyError(fmt.value_date if value_date is None else fmt.amount)
                day_text = row[value_date].strip()
                day = days.get(day_text)
                if day is None:
                    day = datetime.strptime(day_text, fmt.date_format).date()
                    if len(days) < 10_000:
                        days[day_text] = day
                code = ((row[currency] if currency is not None and currency < len(row)
                         else "") or fmt.currency_default or "").strip().upper()
                # Our references are upper-case; payers type them in any case. Compared
                # as stored, on every database (MariaDB's collation would ignore case,
                # SQLite's would not).
                ref = (row[reference].strip().upper() if reference is not None
                       and reference < len(row) else "")
                about = (row[description] if description is not None
                         and description < len(row) else "")
                money = Decimal(row[amount].strip().replace(",", ""))
                # In cents, rounded half away from zero as MySQL rounds what it stores; what
                # the column cannot hold (DECIMAL(18, 2)) is a bad line of this file, not a
                # database error that would stop the whole run.
                if not money.is_finite():
                    raise ValueError(f"amount {row[amount].strip()!r}")
                money = money.quantize(CENT, ROUND_HALF_UP)
                if abs(money) >= LARGEST:
                    raise ValueError(f"amount {row[amount].strip()!r}")
                if len(code) > 3:
                    raise ValueError(f"currency {code!r}")
                yield {
                    "line_no": number,
                    "value_date": day,
                    "amount": money,
                    "currency": code,
                    "reference": ref[:64] or None,
                    "description": about[:255] or None,
                }
            except (KeyError, IndexError, ValueError, InvalidOperation, AttributeError) as exc:
                raise ValueError(f"{name} line {reader.line_num}: cannot read {exc}") from None


def _records(reader: Any, name: str) -> Iterator[list[str]]:
    """The reader's rows; what csv itself cannot read (a field over its size limit, say) is
    a bad line."""
    try:
        yield from reader
    except csv.Error as exc:
        raise ValueError(f"{name} line {reader.line_num}: cannot read {exc}") from None


def import_statement(sessions: sessionmaker[Session], source: Source, fmt: BankFormat,
                     stale_after: timedelta = STALE_AFTER) -> int | None:
    """Import one statement; its id, or None when it is imported already (or in progress
    elsewhere). A failure marks it `failed` and re-raises; the next attempt redoes it."""
    digest = checksum(source.blocks())
    claimed = _claim(sessions, source, digest, stale_after, fmt.facility_id)
    if claimed is None:
        return None
    statement_id, touched = claimed
    try:
        count, last = 0, None
        chunk: list[dict[str, Any]] = []
        for row in rows(source, fmt):
            chunk.append({**row, "statement_id": statement_id})
            last = row["value_date"] if last is None else max(last, row["value_date"])
            if len(chunk) >= CHUNK:
                count, touched = count + len(chunk), _flush(sessions, statement_id, touched,
                                                            chunk)
        count, touched = count + len(chunk), _flush(sessions, statement_id, touched, chunk)
        _finish(sessions, statement_id, touched, count, last)
    except TakenOver:
        log.warning("statement.taken_over", source=source.location)
        raise
    except Exception as exc:
        _fail(sessions, statement_id, touched)
        log.warning("statement.import_failed", source=source.location, error=str(exc)[:300])
        raise
    log.info("statement.imported", bank=source.bank, source=source.location, lines=count)
    return statement_id


def _claim(sessions: sessionmaker[Session], source: Source, digest: str,
           stale_after: timedelta, facility_id: str | None) -> tuple[int, datetime] | None:
    now = utcnow()
    with sessions() as session:
        found = session.execute(select(BankStatement.id, BankStatement.status,
                                       BankStatement.imported_at)
                                .where(BankStatement.checksum == digest)).first()
    if found is None:
        try:
            with sessions.begin() as session:
                statement = BankStatement(bank_code=source.bank, source=source.location,
                                          checksum=digest, status="importing", line_count=0,
                                          imported_at=now, facility_id=facility_id)
                session.add(statement)
                session.flush()
                return statement.id, now
        except IntegrityError:  # another worker took the same file at the same moment
            return None
    statement_id, status, progress = found
    if status in DONE or (status == "importing" and progress > now - stale_after):
        return None
    # Failed, or its importer died: take it over only if nobody else did since we looked,
    # and start again from an empty statement in the same transaction.
    with sessions.begin() as session:
        taken = rowcount(session.execute(
            update(BankStatement)
            .where(BankStatement.id == statement_id, BankStatement.status == status,
                   BankStatement.imported_at == progress)
            .values(status="importing", imported_at=now, line_count=0, statement_date=None,
                    bank_code=source.bank, source=source.location,
                    facility_id=facility_id)))
        if not taken:
            return None
        session.execute(delete(BankStatementLine)
                        .where(BankStatementLine.statement_id == statement_id))
    log.info("statement.retrying", source=source.location, previous=status)
    return statement_id, now


def _touch(session: Session, statement_id: int, touched: datetime, **values: Any) -> datetime:
    """Record progress on our import; raises TakenOver when it is no longer ours."""
    now = max(utcnow(), touched + timedelta(microseconds=1))
    if not rowcount(session.execute(
            update(BankStatement)
            .where(BankStatement.id == statement_id, BankStatement.status == "importing",
                   BankStatement.imported_at == touched)
            .values(imported_at=now, **values))):
        raise TakenOver(f"statement {statement_id} was taken over by another importer")
    return now


def _flush(sessions: sessionmaker[Session], statement_id: int, touched: datetime,
           chunk: list[dict[str, Any]]) -> datetime:
    if not chunk:
        return touched
    with sessions.begin() as session:
        touched = _touch(session, statement_id, touched)
        connection = session.connection()
        if connection.dialect.driver == "pymysql":
            _insert_pymysql(connection, chunk)
        else:
            connection.execute(insert(LINES), chunk)
    chunk.clear()
    return touched


def _insert_pymysql(connection: Connection, chunk: list[dict[str, Any]]) -> None:
    """The chunk as one multi-row INSERT written here: SQLAlchemy's and PyMySQL's binding of
    every value of every line was most of an import's time. Numbers and dates are ours
    (parsed by rows()); every text from the file is quoted by PyMySQL's own escaping, as its
    parameter binding would (it follows the server's NO_BACKSLASH_ESCAPES)."""
    raw = connection.connection.dbapi_connection
    assert raw is not None
    escape = raw.escape
    values = ",".join(
        f"({r['statement_id']:d},{r['line_no']:d},'{r['value_date'].isoformat()}',"
        f"{r['amount']:f},{escape(r['currency'])},{escape(r['reference'])},"
        f"{escape(r['description'])})"
        for r in chunk)
    # Through SQLAlchemy, so a failure is its DBAPIError like any other statement's (what
    # decides whether the database was unavailable). The driver %-formats even a statement
    # without parameters: every % is doubled.
    connection.exec_driver_sql(
        ("INSERT INTO bank_statement_lines (statement_id, line_no, value_date, amount, "
         "currency, reference, description) VALUES " + values).replace("%", "%%"))


def _finish(sessions: sessionmaker[Session], statement_id: int, touched: datetime, count: int,
            last: date | None) -> None:
    with sessions.begin() as session:
        _touch(session, statement_id, touched, status="imported", line_count=count,
               statement_date=last)


def _fail(sessions: sessionmaker[Session], statement_id: int, touched: datetime) -> None:
    try:
        with sessions.begin() as session:
            _touch(session, statement_id, touched, status="failed")
    except Exception:  # the database may be what failed: the stale rule covers that
        log.exception("statement.mark_failed_failed", statement_id=statement_id)



def import_all(sessions: sessionmaker[Session], inbox: Inbox) -> list[int]:
    """Import every new statement in the inbox; a bad file is logged and skipped so the
    others still arrive (it stays `failed` and is tried again on the next run)."""
    known = inbox.formats()
    imported = []
    for source in inbox.sources():
        try:
            statement_id = import_statement(sessions, source, known.get(source.bank,
                                                                        BankFormat()))
        except (ValueError, TakenOver):
            continue
        if statement_id is not None:
            imported.append(statement_id)
    return imported
