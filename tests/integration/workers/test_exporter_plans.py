"""The exporter's scrape stays cheap as the tables grow: on MariaDB, every query it runs
reads a bounded range of an index, never the whole table (bench/exporter_scrape.py
measures the time; this guards the plans against a dropped index or a rewritten query)."""

from __future__ import annotations

from sqlalchemy import create_engine

from bench.exporter_scrape import fill, scrape_plans
from service.db.migrate import prepare


def test_every_exporter_query_reads_an_index_range(mysql_url: str) -> None:
    engine = create_engine(mysql_url)
    try:
        prepare(engine)
        fill(engine, 20_000, stale_open=False)
        plans = scrape_plans(engine)
    finally:
        engine.dispose()
    assert len(plans) >= 8
    tables = {row["table"] for _elapsed, _sql, rows in plans for row in rows}
    assert "live_counts" in tables  # the queue and the open issues are counted on write
    for _elapsed, sql, rows in plans:
        for row in rows:
            # ALL is a table scan, index a scan of a whole index: both grow with the table.
            assert row["type"] in ("range", "ref", "eq_ref", "const"), (sql, row)
            assert row["key"] is not None, (sql, row)
            if row["table"] == "payments" and row["type"] == "range":
                # The big table is read from its index alone, never row by row (a loose scan,
                # one entry per group, for the queue's age).
                extra = (row["Extra"] or "").split("; ")
                assert {"Using index", "Using index for group-by"} & set(extra), (sql, row)
