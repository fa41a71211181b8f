"""Measure the exporter's scrape time with 10 thousand and 1 million payment rows in MariaDB.

    .venv/bin/python bench/exporter_scrape.py [--server mysql+pymysql://root@127.0.0.1:3306]

Rows are spread over 90 days (as a year of a busy deployment would be), with one provider
call per payment and a share still open; the database is created and dropped here.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, create_engine, text

from service.db.migrate import prepare
from service.workers.exporter import Exporter

PROVIDERS = ("visa", "mastercard", "zain_cash", "mtn_money", "sudani_cash", "bankak",
             "bank_of_khartoum", "cash", "bank_transfer")
STATUSES = ("confirmed", "confirmed", "confirmed", "confirmed", "failed", "processing",
            "awaiting_verification", "refunded", "cancelled")


def fill(engine: Engine, rows: int) -> None:
    providers = "ELT(1 + seq % {n}, {names})".format(
        n=len(PROVIDERS), names=", ".join(f"'{p}'" for p in PROVIDERS))
    statuses = "ELT(1 + (seq DIV 7) % {n}, {names})".format(
        n=len(STATUSES), names=", ".join(f"'{s}'" for s in STATUSES))
    created = f"UTC_TIMESTAMP(6) - INTERVAL (seq * 7776000 DIV {rows}) SECOND"
    with engine.begin() as c:
        c.execute(text(f"""
            INSERT INTO payments (public_id, reference, provider_code, facility_id, patient_id,
              amount, currency, total_fees, net_amount, refunded_amount, status, created_by,
              updated_by,
              created_at, updated_at, completed_at, check_attempts)
            SELECT CONCAT('pay_', seq), CONCAT('NC-', seq), {providers}, 'fac-1',
              CONCAT('p-', seq % 5000), 100 + seq % 900, 'SDG', 1.5, 0, 0, {statuses}, 'bench',
              'bench', {created}, {created}, {created}, 0
            FROM seq_1_to_{rows}"""))
        c.execute(text("""
            INSERT INTO payment_attempts (payment_id, provider_code, operation, request_id,
              outcome, latency_ms, created_at)
            SELECT id, provider_code, 'initiate', CONCAT('r-', id),
              IF(id % 13 = 0, 'error', 'success'), 50 + id % 400, created_at
            FROM payments"""))


def measure(engine: Engine, scrapes: int = 20) -> tuple[float, float]:
    exporter = Exporter(engine, __import__("zoneinfo").ZoneInfo("Africa/Khartoum"),
                        CollectorRegistry())
    exporter.scrape()  # warm the pool and the buffer pool
    times = []
    for _ in range(scrapes):
        started = time.perf_counter()
        exporter.scrape()
        times.append(time.perf_counter() - started)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 1_000_000])
    args = parser.parse_args()
    admin = create_engine(args.server)
    for rows in args.rows:
        name = f"nc_bench_{uuid.uuid4().hex[:8]}"
        with admin.begin() as c:
            c.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        engine = create_engine(f"{args.server}/{name}", isolation_level="READ COMMITTED")
        try:
            prepare(engine)
            started = time.perf_counter()
            fill(engine, rows)
            filled = time.perf_counter() - started
            median, worst = measure(engine)
            print(f"{rows:>9,} payment rows: scrape median {median * 1000:.1f} ms, "
                  f"max {worst * 1000:.1f} ms (fill {filled:.0f} s)", flush=True)
        finally:
            engine.dispose()
            with admin.begin() as c:
                c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    admin.dispose()


if __name__ == "__main__":
    main()
