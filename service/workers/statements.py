"""Bank statement import: CSV files from a directory (or S3), mapped per bank, streamed
into bank_statement_lines in chunks; a file already imported (same checksum) adds nothing.

Layout: STATEMENT_DIR/<bank_code>/*.csv. The default format has the header
`value_date,amount,currency,reference,description` with ISO dates; another bank's format
is described in STATEMENT_DIR/banks.json, e.g.
`{"faisal_islamic": {"value_date": "Date", "amount": "Credit", "reference": "Ref",
"date_format": "%d/%m/%Y", "delimiter": ";", "currency_default": "SDG"}}`.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.clock import utcnow
from service.db.models import BankStatement, BankStatementLine

log = structlog.get_logger()
CHUNK = 1000


@dataclass(frozen=True)
class BankFormat:
    """Which CSV column holds what, for one bank."""

    value_date: str = "value_date"
    amount: str = "amount"
    currency: str = "currency"
    reference: str = "reference"
    description: str = "description"
    date_format: str = "%Y-%m-%d"
    delimiter: str = ","
    currency_default: str | None = None

    @classmethod
    def from_mapping(cls, bank: str, raw: dict[str, Any]) -> BankFormat:
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"banks.json: {bank} has unknown keys {sorted(unknown)}; "
                             f"known are {sorted(known)}")
        return cls(**raw)


def formats(directory: Path) -> dict[str, BankFormat]:
    path = directory / "banks.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {bank: BankFormat.from_mapping(bank, raw) for bank, raw in data.items()}


def checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rows(path: Path, fmt: BankFormat) -> Iterator[dict[str, Any]]:
    """Statement lines one at a time (the file is never held in memory)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter=fmt.delimiter)
        for number, row in enumerate(reader, start=1):
            try:
                currency = (row.get(fmt.currency) or fmt.currency_default or "").strip().upper()
                reference = (row.get(fmt.reference) or "").strip() or None
                yield {
                    "line_no": number,
                    "value_date": datetime.strptime(row[fmt.value_date].strip(),
                                                    fmt.date_format).date(),
                    "amount": Decimal(row[fmt.amount].strip().replace(",", "")),
                    "currency": currency,
                    "reference": reference[:64] if reference else None,
                    "description": (row.get(fmt.description) or "")[:255] or None,
                }
            except (KeyError, ValueError, InvalidOperation, AttributeError) as exc:
                raise ValueError(f"{path.name} line {number + 1}: cannot read {exc}") from None


def import_file(sessions: sessionmaker[Session], path: Path, bank: str, fmt: BankFormat,
                source: str | None = None) -> int | None:
    """Import one statement; the new statement id, or None when already imported."""
    digest = checksum(path)
    with sessions() as session:
        if session.scalar(select(BankStatement.id).where(BankStatement.checksum == digest)):
            return None
    try:
        with sessions.begin() as session:
            statement = BankStatement(bank_code=bank, source=source or str(path),
                                      checksum=digest, status="importing", line_count=0,
                                      imported_at=utcnow())
            session.add(statement)
            session.flush()
            statement_id = statement.id
    except IntegrityError:  # another worker took the same file at the same moment
        return None
    count, last = 0, None
    chunk: list[dict[str, Any]] = []
    for row in rows(path, fmt):
        chunk.append({**row, "statement_id": statement_id})
        last = row["value_date"] if last is None else max(last, row["value_date"])
        if len(chunk) >= CHUNK:
            count += _flush(sessions, chunk)
    count += _flush(sessions, chunk)
    with sessions.begin() as session:
        session.execute(update(BankStatement).where(BankStatement.id == statement_id)
                        .values(status="imported", line_count=count, statement_date=last))
    log.info("statement.imported", bank=bank, source=source or str(path), lines=count)
    return statement_id


def _flush(sessions: sessionmaker[Session], chunk: list[dict[str, Any]]) -> int:
    if not chunk:
        return 0
    with sessions.begin() as session:
        session.execute(insert(BankStatementLine), chunk)
    count = len(chunk)
    chunk.clear()
    return count


def import_directory(sessions: sessionmaker[Session], directory: Path) -> list[int]:
    """Import every new statement under directory/<bank_code>/*.csv."""
    if not directory.is_dir():
        return []
    known = formats(directory)
    imported = []
    for path in sorted(directory.glob("*/*.csv")):
        bank = path.parent.name
        statement_id = import_file(sessions, path, bank, known.get(bank, BankFormat()))
        if statement_id is not None:
            imported.append(statement_id)
    return imported
