"""A statement import that fails or dies partway does not block its file: the next
attempt takes it over, drops the partial lines and imports it whole, exactly once."""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from service.db.models import BankStatement, BankStatementLine
from service.reconciliation import runner, statements
from service.reconciliation.sources import BankFormat, FileSource
from service.services.context import Context
from tests.integration.workers.conftest import Process, wait_for


def _statement(directory: Path, lines: int) -> Path:
    path = directory / "bank_of_khartoum" / "2025-01-30.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write("value_date,amount,currency,reference,description\n")
        for n in range(lines):
            out.write(f"2025-01-30,{100 + n}.00,SDG,EXT-{n},incoming transfer\n")
    return path


def _state(ctx: Context) -> tuple[list[tuple[str, int]], int, int]:
    with ctx.sessions() as session:
        found = list(session.execute(select(BankStatement.status, BankStatement.line_count))
                     .tuples())
        lines, distinct = session.execute(
            select(func.count(), func.count(func.distinct(BankStatementLine.line_no)))).one()
    return found, lines, distinct


def test_an_import_that_failed_partway_is_redone_whole_on_the_next_run(
        ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _statement(tmp_path / "statements", 2_500)
    real_flush = statements._flush
    calls: list[int] = []

    def failing_flush(*args: object) -> object:
        calls.append(1)
        if len(calls) == 2:  # the database goes away after the first 1,000 lines
            raise OperationalError("INSERT", {}, Exception("Lost connection to server"))
        return real_flush(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(statements, "_flush", failing_flush)
    with pytest.raises(OperationalError):
        statements.import_statement(ctx.sessions, FileSource(path), BankFormat())
    assert _state(ctx) == ([("failed", 0)], 1_000, 1_000)
    monkeypatch.setattr(statements, "_flush", real_flush)

    result = runner.run(ctx.sessions, tmp_path / "statements")
    assert result.statements == 1 and result.lines == 2_500
    assert _state(ctx) == ([("reconciled", 2_500)], 2_500, 2_500)
    assert runner.run(ctx.sessions, tmp_path / "statements").lines == 0


def test_an_importer_killed_mid_file_is_taken_over_once_its_progress_is_stale(
        ctx: Context, tmp_path: Path, worker_env: dict[str, str],
        spawn: Callable[..., Process]) -> None:
    directory = tmp_path / "statements"
    path = _statement(directory, 30_000)
    importer = spawn({**worker_env, "STATEMENT_DIR": str(directory)}, "reconcile")
    wait_for(lambda: _state(ctx)[1] >= 1_000, 30, "the first chunk of lines")
    importer.popen.send_signal(signal.SIGKILL)
    importer.popen.wait(10)
    [(status, _)], partial, _ = _state(ctx)
    assert status == "importing" and 0 < partial < 30_000

    # Its progress is fresh: for all another worker knows it is still at work.
    assert statements.import_statement(ctx.sessions, FileSource(path), BankFormat()) is None
    assert _state(ctx)[1] == partial
    with ctx.sessions.begin() as session:  # ten minutes pass without progress
        progress = session.scalars(select(BankStatement.imported_at)).one()
        session.execute(update(BankStatement).values(
            imported_at=progress - statements.STALE_AFTER - timedelta(seconds=1)))

    statement_id = statements.import_statement(ctx.sessions, FileSource(path), BankFormat())
    assert statement_id is not None
    assert _state(ctx) == ([("imported", 30_000)], 30_000, 30_000)
    with ctx.sessions() as session:
        assert session.scalar(select(BankStatement.statement_date)) == date(2025, 1, 30)
