"""A reconciliation chunk costs the same wherever it falls in the statement: on MariaDB,
every statement that judges a chunk reads the statement's lines, its findings and the
payments by an index range or key, never a whole table or index and never a materialized
copy of the statement (bench/reconcile.py measures the time; this guards the plans against
a rewritten query or a dropped index). The plans are the ones a run meets at its worst: a server
that restarted after a crash can hold statistics of the lines and findings from before the
import (none, for a new database), and every chunk was then planned as a read of the whole
statement (a resumed run once took 283 s for 15k lines); the run's start refreshes them. A
NOT EXISTS over the statement's references once
made MariaDB materialize every line of the statement for every chunk: 1M lines took minutes
longer than 100k lines ten times over; the same shape in the search for payments no line
showed took 13 s of a 1M-line run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text

from bench.reconcile import fill_payments, write_statement
from service.db.engine import session_factory
from service.reconciliation import runner, storage

LINES = 30_000
GROWING = {"payments", "bank_statement_lines", "payment_reconciliation"}
STATISTICS_REFRESHED = ("bank_statement_lines", "payment_reconciliation")


def test_every_statement_of_a_chunk_reads_an_index_range_of_what_grows(
        mysql_url: str, tmp_path: Path) -> None:
    engine = create_engine(mysql_url, isolation_level="READ COMMITTED")
    try:
        from service.db.migrate import prepare

        prepare(engine)
        fill_payments(engine, LINES)
        with engine.begin() as connection:
            # As a restart can leave them: the statistics of the empty tables, kept while
            # the import fills them (no recalculation in the background).
            for table in STATISTICS_REFRESHED:
                connection.execute(text(f"ALTER TABLE {table} STATS_AUTO_RECALC = 0"))
            connection.execute(text(f"ANALYZE TABLE {', '.join(STATISTICS_REFRESHED)}")).all()
        write_statement(tmp_path / "bank_of_khartoum" / "statement.csv", LINES)
        sessions = session_factory(engine)
        [pending] = runner._start(sessions, tmp_path)  # the import, then what a run does
        window = timedelta(days=2)
        after = 0
        for _ in range(3):  # a statement half judged: findings exist, the rest does not
            judged = runner._judge_chunk(sessions, "run_plans", pending, after, window)
            assert judged is not None
            runner._confirm_chunk(sessions, judged[0])
            after = judged[0].last

        ran: list[tuple[str, Any]] = []

        def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                 executemany: bool) -> None:
            if not executemany and statement.lstrip().upper().startswith(
                    ("SELECT", "UPDATE", "INSERT INTO PAYMENT_RECONCILIATION (")):
                ran.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", seen)
        try:
            judged = runner._judge_chunk(sessions, "run_plans", pending, after, window)
            assert judged is not None and judged[1], "the chunk had lines for the rules too"
            for part in range(runner.Confirmer.PARTS):  # as the run confirms on MariaDB
                runner._confirm_chunk(sessions, judged[0], (part, runner.Confirmer.PARTS))
            # The end of a run: the payments of the statement's span that no line showed.
            list(storage.unsettled(sessions, judged[0].first_date, judged[0].last_date,
                                   window))
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert any("payments.created_at BETWEEN" in sql for sql, _ in ran), "unsettled ran"
        assert any(sql.lstrip().startswith("UPDATE payments") for sql, _ in ran), "confirmed"
        assert any("payment_reconciliation.payment_id %" in sql for sql, _ in ran), "in parts"

        plans = []
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            for statement, parameters in ran:
                if "FROM" not in statement.upper():
                    continue  # an INSERT … VALUES reads nothing
                cursor.execute("EXPLAIN " + statement, parameters)
                names = [d[0] for d in cursor.description]
                plans.append((statement, [dict(zip(names, row, strict=True))
                                          for row in cursor.fetchall()]))
        finally:
            raw.close()
    finally:
        engine.dispose()

    aliases = {"naming": "bank_statement_lines", "earlier_line": "bank_statement_lines",
               "earlier": "payment_reconciliation", "done": "payment_reconciliation",
               "done_line": "payment_reconciliation", "shown": "payment_reconciliation",
               "reported": "payment_reconciliation"}
    read = {row["table"] for _sql, rows in plans for row in rows}
    assert {aliases.get(t, t) for t in read} >= GROWING and "naming" in read, read
    for sql, rows in plans:
        for row in rows:
            table = aliases.get(row["table"], row["table"])
            if table not in GROWING:
                continue
            # ALL is a table scan, index a scan of a whole index, MATERIALIZED a copy of
            # what a subquery reads: each grows with the statement or the history. The
            # search for unsettled payments runs once per run and reads its whole span; a
            # key lookup with a rowid filter (built once, of bounded size) is fine there.
            once = "payments.created_at BETWEEN" in sql
            allowed: tuple[str, ...] = ("range", "ref", "eq_ref", "const", "index_subquery",
                                        "unique_subquery")
            if once:
                allowed += ("ref|filter", "range|filter")
            assert row["type"] in allowed, (sql, row)
            assert row["select_type"] != "MATERIALIZED", (sql, row)
            # A "ref" on the statement's id alone reads the whole statement: the optimizer's
            # estimate says how much a chunk reads (a chunk, or half the statement's 30k
            # lines with stale statistics; twice a chunk leaves room for the estimate).
            if not once:
                assert int(row["rows"]) <= 2 * runner.CHUNK, (sql, row)
