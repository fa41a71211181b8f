"""Reconciliation end to end (import, match, record, confirm) of 10k, 100k and 1M-line
statements, side by side with reading the same file with the csv module and loading it with
MariaDB's `LOAD DATA`, on the same throwaway server in the same run.

    .venv/bin/python -m bench.reconcile [--lines 10000 100000 1000000] [--server URL]
                                        [--fast-commits]

For each size: a fresh database with as many bank-transfer payments awaiting verification
(spread over 30 days), and a statement of that many lines that settles them: most by
reference, 1% by amount and date (the bank lost the reference), 0.5% with a different
amount, 0.5% unknown to us, and a few payments missing from it. The run executes in a child
process, so its peak RSS is its own. Prints seconds, the ratios to csv and LOAD DATA, peak
RSS and lines per second, then how time grew from one size to the next (linear is 10x).

`--floor` also times, on a fresh database of the same size, the part of a run no matching
can avoid: moving the payments from awaiting_verification to confirmed (all of them, about
1% more than a run confirms), chunk by chunk on the run's two confirm threads, with what the
schema does for each moved row (its audit row, its indexes, the binary log), and nothing
else.

The throwaway server commits as the deployed MySQL does: the redo log and a row-based
binary log flushed to disk at each commit (`--fast-commits`: as the tests run it, without).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from service.db.migrate import prepare
from tests.servers import commits, mariadb

DAYS = 30
START = date(2026, 10, 1)


def _day(seq: int, count: int) -> int:
    """The day (0 .. DAYS-1) payment `seq` of `count` was booked: ids grow with time, as
    they do when payments are created day after day."""
    return (seq - 1) * DAYS // count


def fill_payments(engine: Engine, count: int) -> None:
    """`count` bank transfers awaiting verification over DAYS days, in id order."""
    with engine.begin() as c:
        c.execute(text(f"""
            INSERT INTO payments (public_id, reference, provider_code, facility_id, patient_id,
              amount, currency, total_fees, net_amount, refunded_amount, status, created_by,
              updated_by, created_at, updated_at, check_attempts)
            SELECT CONCAT('pay_', seq), CONCAT('NC-', seq), 'bank_transfer', 'fac-1',
              CONCAT('p-', seq % 5000), 100 + (seq % 99991) / 100, 'SDG', 0, 0, 0,
              'awaiting_verification', 'bench', 'bench',
              TIMESTAMP('{START}') + INTERVAL ((seq - 1) * {DAYS} DIV {count}) DAY
                + INTERVAL 10 HOUR,
              UTC_TIMESTAMP(6), 0
            FROM seq_1_to_{count}"""))


def write_statement(path: Path, count: int) -> None:
    """One line per payment, in value-date order, with the seeded discrepancies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["value_date", "amount", "currency", "reference", "description"])
        for seq in range(1, count + 1):
            value_date = START + timedelta(days=_day(seq, count) + 1)
            if seq % 997 == 0:
                continue  # never reaches the bank: unrecorded
            cents = 10000 + seq % 99991
            amount = f"{cents // 100}.{cents % 100:02d}"
            reference = f"NC-{seq}"
            if seq % 100 == 1:
                reference = ""  # matched by amount and date
            elif seq % 200 == 2:
                amount = f"{cents // 100 + 1}.{cents % 100:02d}"
            elif seq % 200 == 3:
                reference = f"UNKNOWN-{seq}"
            out.writerow([value_date.isoformat(), amount, "SDG", reference, "transfer"])


def csv_baseline(path: Path) -> float:
    started = time.perf_counter()
    with path.open(newline="") as handle:
        for _row in csv.reader(handle):
            pass
    return time.perf_counter() - started


def load_data_baseline(engine: Engine, path: Path) -> float:
    """The same file into a table shaped like bank_statement_lines, by the server itself."""
    with engine.begin() as c:
        c.execute(text("""
            CREATE TABLE bench_load (id BIGINT AUTO_INCREMENT PRIMARY KEY,
              value_date DATE NOT NULL, amount DECIMAL(18, 2) NOT NULL,
              currency VARCHAR(3) NOT NULL, reference VARCHAR(64), description VARCHAR(255),
              KEY ix_reference (reference), KEY ix_value_date (value_date))"""))
    started = time.perf_counter()
    with engine.begin() as c:
        c.execute(text(f"""
            LOAD DATA LOCAL INFILE '{path}' INTO TABLE bench_load
            FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '"' LINES TERMINATED BY '\\r\\n'
            IGNORE 1 LINES (value_date, amount, currency, @reference, description)
            SET reference = NULLIF(@reference, '')"""))
    elapsed = time.perf_counter() - started
    with engine.begin() as c:
        c.execute(text("DROP TABLE bench_load"))
    return elapsed


def child(url: str, inbox: Path) -> None:
    """Runs in its own process: one reconciliation run, its seconds and peak RSS as JSON."""
    from service.db.engine import session_factory
    from service.reconciliation import runner

    engine = create_engine(url, isolation_level="READ COMMITTED")
    sessions = session_factory(engine)
    started = time.perf_counter()
    result = runner.run(sessions, inbox)
    elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "rss_mb": peak_kb / 1024, "lines": result.lines,
                      "matched": result.matched, "issues": result.issues}))


def _database(server: str) -> str:
    name = f"nc_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server)
    with admin.begin() as c:
        c.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    admin.dispose()
    return name


def _drop(server: str, name: str) -> None:
    admin = create_engine(server)
    with admin.begin() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    admin.dispose()


def moves_alone(server: str, count: int) -> float:
    """Seconds to move `count` payments awaiting verification to confirmed as a run's
    confirm does (storage.confirm_payments on chunks of runner.CHUNK ids, split over the
    Confirmer's threads by id), without the matching that finds them."""
    from concurrent.futures import ThreadPoolExecutor

    from service.reconciliation import runner, storage

    name = _database(server)
    engine = create_engine(f"{server}/{name}", isolation_level="READ COMMITTED",
                           pool_size=runner.Confirmer.PARTS)
    parts = runner.Confirmer.PARTS

    def move(ids: list[int], shard: int) -> int:
        with engine.begin() as c:
            return storage.confirm_payments(c, ids, shard)

    try:
        prepare(engine)
        fill_payments(engine, count)
        moved = 0
        started = time.perf_counter()
        with ThreadPoolExecutor(parts) as pool:
            for first in range(1, count + 1, runner.CHUNK):
                chunk = range(first, min(first + runner.CHUNK, count + 1))
                moved += sum(pool.map(move, [[i for i in chunk if i % parts == part]
                                             for part in range(parts)], range(parts)))
        elapsed = time.perf_counter() - started
        if moved != count:
            raise RuntimeError(f"moved {moved} of {count} payments")
        return elapsed
    finally:
        engine.dispose()
        _drop(server, name)


def measure(server: str, lines: int, base: Path) -> dict[str, float]:
    name = _database(server)
    url = f"{server}/{name}"
    engine = create_engine(url, connect_args={"local_infile": True})
    try:
        prepare(engine)
        fill_payments(engine, lines)
        inbox = base / f"inbox-{lines}"
        statement = inbox / "bank_of_khartoum" / f"statement-{lines}.csv"
        write_statement(statement, lines)
        read = csv_baseline(statement)
        loaded = load_data_baseline(engine, statement)
        out = subprocess.run([sys.executable, "-m", "bench.reconcile", "--child", url,
                              str(inbox)], check=True, capture_output=True, text=True)
        run = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        engine.dispose()
        _drop(server, name)
    return {"lines": run["lines"], "seconds": run["seconds"], "csv": read, "load": loaded,
            "rss_mb": run["rss_mb"], "matched": run["matched"],
            "issues": sum(run["issues"].values())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--server", help="a MariaDB server URL (default: a throwaway one)")
    # The deployed MySQL's pool: half its container's memory (infra/topology/build.py),
    # 768 MB in docker-compose.payment.yml.
    parser.add_argument("--buffer-pool", default="768M",
                        help="the throwaway server's InnoDB buffer pool (default: 768M, as "
                             "deployed)")
    parser.add_argument("--fast-commits", action="store_true",
                        help="run the throwaway server as the tests do, with no flush to "
                             "disk at commit and no binary log (default: as deployed)")
    parser.add_argument("--floor", action="store_true",
                        help="also time the payment moves alone, for each size")
    parser.add_argument("--child", nargs=2, metavar=("URL", "INBOX"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    with ExitStack() as stack:
        base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nc-reconcile-")))
        server = args.server or stack.enter_context(mariadb(
            base / "mariadb", args.buffer_pool, durable=not args.fast_commits))
        print(f"database: {commits(server)}")
        print(f"{'lines':>10} {'reconcile':>10} {'csv':>7} {'LOAD DATA':>10} {'/csv':>6} "
              f"{'/LOAD':>6} {'peak RSS':>9} {'lines/s':>8}  matched, issues")
        results = []
        for lines in args.lines:
            r = measure(server, lines, base)
            results.append(r)
            print(f"{r['lines']:>10,} {r['seconds']:>9.1f}s {r['csv']:>6.2f}s "
                  f"{r['load']:>9.1f}s {r['seconds'] / r['csv']:>5.0f}x "
                  f"{r['seconds'] / r['load']:>5.1f}x {r['rss_mb']:>7.0f}MB "
                  f"{r['lines'] / r['seconds']:>8,.0f}  {r['matched']:,}, {r['issues']:,}",
                  flush=True)
            if args.floor:
                alone = moves_alone(server, lines)
                print(f"{'':>10} moving all {lines:,} payments to confirmed alone: "
                      f"{alone:.1f}s, {alone / r['load']:.1f}x LOAD DATA, "
                      f"{alone / r['seconds']:.0%} of the run", flush=True)
        for before, after in itertools.pairwise(results):
            print(f"{before['lines']:,} -> {after['lines']:,} lines "
                  f"({after['lines'] / before['lines']:.0f}x): time "
                  f"{after['seconds'] / before['seconds']:.1f}x")


if __name__ == "__main__":
    main()
