"""Measure the exporter's scrape time with 10 thousand and 1 million payment rows in MariaDB.

    .venv/bin/python bench/exporter_scrape.py [--server mysql+pymysql://root@127.0.0.1:3306]
        [--rows 10000 1000000] [--stale-open] [--explain]

Rows are spread over 90 days (as a year of a busy deployment would be), with one provider
call per payment and one completed refund per refunded payment. Open payments (processing,
awaiting verification) are among the last day's, as the worker and the finance team leave
them in a running system; `--stale-open` keeps the same share open across all 90 days
instead (a queue nobody works: about 2 in 9 payments waiting), the worst case for the
waiting-verification count. `--explain` prints each exporter query with its time and its
EXPLAIN. The database is created and dropped here.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, create_engine, event, text

from service.db.migrate import prepare
from service.workers.exporter import Exporter

PROVIDERS = ("visa", "mastercard", "zain_cash", "mtn_money", "sudani_cash", "bankak",
             "bank_of_khartoum", "cash", "bank_transfer")
STATUSES = ("confirmed", "confirmed", "confirmed", "confirmed", "failed", "processing",
            "awaiting_verification", "refunded", "cancelled")
# Older than a day: the same mix with the open outcomes settled or failed.
CLOSED = ("confirmed", "confirmed", "confirmed", "confirmed", "failed", "confirmed",
          "failed", "refunded", "cancelled")
OPEN = ("processing", "awaiting_verification")


def _elt(selector: str, names: tuple[str, ...]) -> str:
    return "ELT(1 + {sel} % {n}, {names})".format(
        sel=selector, n=len(names), names=", ".join(f"'{v}'" for v in names))


def fill(engine: Engine, rows: int, stale_open: bool = False, queue: int = 0) -> None:
    """`rows` payments over 90 days; `queue` of them (every other one, over all 90 days)
    left open whatever the mix says: a verification queue nobody works."""
    recent = rows if stale_open else max(rows // 90, 1)  # one day of the 90
    created = f"UTC_TIMESTAMP(6) - INTERVAL (seq * 7776000 DIV {rows}) SECOND"
    status = (f"IF(seq % 2 = 0 AND seq <= {2 * queue}, {_elt('(seq DIV 2)', OPEN)}, "
              f"IF(seq <= {recent}, {_elt('(seq DIV 7)', STATUSES)}, "
              f"{_elt('(seq DIV 7)', CLOSED)}))")
    open_list = ", ".join(f"'{s}'" for s in OPEN)
    with engine.begin() as c:
        c.execute(text(f"""
            INSERT INTO payments (public_id, reference, provider_code, facility_id, patient_id,
              amount, currency, total_fees, net_amount, refunded_amount, status, created_by,
              updated_by, created_at, updated_at, completed_at, check_attempts)
            SELECT CONCAT('pay_', seq), CONCAT('NC-', seq), provider, 'fac-1',
              CONCAT('p-', seq % 5000), 100 + seq % 900, 'SDG', 1.5, 0, 0, status, 'bench',
              'bench', created, created, IF(status IN ({open_list}), NULL, created), 0
            FROM (SELECT seq, {_elt('seq', PROVIDERS)} AS provider, {status} AS status,
                         {created} AS created
                  FROM seq_1_to_{rows}) s"""))
        c.execute(text("""
            INSERT INTO payment_attempts (payment_id, provider_code, operation, request_id,
              outcome, latency_ms, created_at)
            SELECT id, provider_code, 'initiate', CONCAT('r-', id),
              IF(id % 13 = 0, 'error', 'success'), 50 + id % 400, created_at
            FROM payments"""))
        # Through a copy: the refund trigger updates payments, which MySQL refuses while
        # the same statement reads payments.
        c.execute(text("""
            CREATE TEMPORARY TABLE bench_refunded AS
            SELECT id, amount, created_at FROM payments WHERE status = 'refunded'"""))
        c.execute(text("""
            INSERT INTO payment_refunds (public_id, payment_id, amount, status, requested_by,
              created_at, completed_at)
            SELECT CONCAT('re_', id), id, amount, 'completed', 'bench', created_at, created_at
            FROM bench_refunded"""))


def measure(engine: Engine, scrapes: int = 20) -> tuple[float, float]:
    exporter = Exporter(engine, ZoneInfo("Africa/Khartoum"), CollectorRegistry())
    exporter.scrape()  # warm the pool and the buffer pool
    times = []
    for _ in range(scrapes):
        started = time.perf_counter()
        exporter.scrape()
        times.append(time.perf_counter() - started)
    return statistics.median(times), max(times)


def scrape_plans(engine: Engine) -> list[tuple[float, str, list[dict[str, Any]]]]:
    """Each SELECT of one scrape with its time and MariaDB's EXPLAIN rows."""
    seen: list[tuple[float, str, Any]] = []

    def before(conn: Any, _cursor: Any, _sql: str, _params: Any, _ctx: Any, _many: bool) -> None:
        conn.info["started"] = time.perf_counter()

    def after(conn: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        seen.append((time.perf_counter() - conn.info["started"], sql, params))

    exporter = Exporter(engine, ZoneInfo("Africa/Khartoum"), CollectorRegistry())
    exporter.scrape()
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        exporter.scrape()
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    plans = []
    with engine.connect() as c:
        for elapsed, sql, params in seen:
            # Table reads only: the probe that starts a read (SELECT 1) touches none.
            if sql.lstrip().upper().startswith("SELECT") and re.search(r"\bFROM\b", sql, re.I):
                rows = [dict(r) for r in c.exec_driver_sql("EXPLAIN " + sql, params).mappings()]
                plans.append((elapsed, sql, rows))
    return plans


def explain(engine: Engine) -> None:
    for elapsed, sql, rows in scrape_plans(engine):
        print(f"  {elapsed * 1000:6.1f} ms  {' '.join(sql.split())[:160]}")
        for row in rows:
            print(f"             {row['table']}: type={row['type']} key={row['key']} "
                  f"rows={row['rows']} {row['Extra'] or ''}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 1_000_000])
    parser.add_argument("--stale-open", action="store_true",
                        help="keep 2 in 9 payments open across all 90 days")
    parser.add_argument("--queue", type=int, default=500_000,
                        help="also measure the largest size with this many left open "
                             "(0: skip)")
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    args = parser.parse_args()
    admin = create_engine(args.server)
    cases = [(rows, 0) for rows in args.rows]
    if args.queue and args.rows:
        cases.append((max(args.rows), args.queue))
    for rows, queue in cases:
        name = f"nc_bench_{uuid.uuid4().hex[:8]}"
        with admin.begin() as c:
            c.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        engine = create_engine(f"{args.server}/{name}", isolation_level="READ COMMITTED")
        try:
            prepare(engine)
            started = time.perf_counter()
            fill(engine, rows, args.stale_open, queue)
            filled = time.perf_counter() - started
            with engine.connect() as c:
                waiting = c.execute(text(
                    "SELECT COUNT(*) FROM payments WHERE status IN ('processing', "
                    "'awaiting_verification', 'unknown')")).scalar_one()
            median, worst = measure(engine)
            print(f"{rows:>9,} payment rows ({waiting:,} open): scrape median "
                  f"{median * 1000:.1f} ms, max {worst * 1000:.1f} ms (fill {filled:.0f} s)",
                  flush=True)
            if args.explain:
                explain(engine)
        finally:
            engine.dispose()
            with admin.begin() as c:
                c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    admin.dispose()


if __name__ == "__main__":
    main()
