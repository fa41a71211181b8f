"""The benchmarks measure what a deployment pays: their MariaDB commits as the deployed MySQL
does (the redo log and a row-based binary log, both flushed to disk at each commit), and the
reconciliation and create benchmarks run end to end on it. No time is asserted; bench/
prints the ratios."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.servers import commit_settings, mariadb

DEPLOYED = {"log_bin": "1", "sync_binlog": "1", "binlog_format": "ROW",
            "innodb_flush_log_at_trx_commit": "1"}
ROOT = Path(__file__).resolve().parents[2]


def test_a_durable_server_commits_as_the_deployed_mysql_does(tmp_path: Path) -> None:
    with mariadb(tmp_path / "durable", durable=True) as url:
        assert commit_settings(url) == DEPLOYED
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(text("CREATE DATABASE d"))
                connection.execute(text("CREATE TABLE d.t (id INT PRIMARY KEY)"))
                connection.execute(text("INSERT INTO d.t VALUES (1)"))
            with engine.connect() as connection:
                logs = connection.execute(text("SHOW BINARY LOGS")).all()
                events = connection.execute(text(f"SHOW BINLOG EVENTS IN '{logs[-1][0]}'")).all()
        finally:
            engine.dispose()
        # (Log_name, Pos, Event_type, …): the INSERT is logged as the row it wrote
        assert any(str(e[2]).startswith("Write_rows") for e in events), events
    with mariadb(tmp_path / "tests") as url:
        tests = commit_settings(url)
        assert tests["innodb_flush_log_at_trx_commit"] == "2" and tests["log_bin"] == "0"


def test_the_reconciliation_benchmark_runs_end_to_end_on_a_durable_server() -> None:
    stdout = _bench("bench.reconcile", "--lines", "1000", "2000", "--buffer-pool", "128M",
                    "--floor")
    assert "database: each commit: a ROW binary log synced, the redo log flushed" in stdout
    rows = [line.split() for line in stdout.splitlines()
            if re.match(r"\s+[\d,]+\s+[\d.]+s", line)]
    assert [row[0] for row in rows] == ["999", "1,998"], stdout
    for row in rows:  # "… 994,002, 5,964": most lines matched their payment
        assert int(row[-2].rstrip(",").replace(",", "")) > 0.9 * int(row[0].replace(",", ""))
    assert re.search(r"999 -> 1,998 lines \(2x\): time [\d.]+x", stdout), stdout
    # The moves alone, on a database of their own: every payment moved, or the bench fails.
    assert len(re.findall(r"moving all [\d,]+ payments to confirmed alone: [\d.]+s, "
                          r"[\d.]+x LOAD DATA", stdout)) == 2, stdout


def test_the_create_benchmark_drives_the_gateway_and_both_floors_without_an_error() -> None:
    """Every request of every load answered 2xx: a floor's request fails when its statements
    did not write the create's rows (bench/floor.py). Each floor sends the gateway's
    statements and commits, no fewer and no more, and each load's CPU per request is
    counted for the app, the database and the simulator."""
    out = _bench("bench.create", "--floor", "--rounds", "1", "--seconds", "2")
    assert "database: each commit: a ROW binary log synced, the redo log flushed" in out
    assert re.search(r"round 1: create .* floor +\d+ .* on the event loop +\d+ .* errors 0$",
                     out, re.MULTILINE), out
    for load in ("gateway", "floor", "event-loop floor"):
        cpu = re.search(rf"^    {load} +app +([\d.]+) +database +([\d.]+) +simulator "
                        rf"+([\d.]+)", out, re.MULTILINE)
        assert cpu and all(float(ms) > 0 for ms in cpu.groups()), out
    assert re.search(r"at 0.25x the echo \(\d+ creates/s\).* the database alone [\d.]+",
                     out), out
    spent = dict(re.findall(r"^  (gateway|floor|event-loop floor): +(.*)$", out, re.MULTILINE))
    assert set(spent) == {"gateway", "floor", "event-loop floor"}, out
    assert "Questions 8.0" in spent["gateway"] and "Com_commit 2.0" in spent["gateway"], out
    assert spent["floor"] == spent["gateway"] == spent["event-loop floor"], out


def _bench(*args: str) -> str:
    """Run a benchmark to its end and return what it printed; on a timeout, its servers
    (its process group) are killed with it."""
    with subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=ROOT,
                          start_new_session=True) as bench:
        try:
            out, err = bench.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            os.killpg(bench.pid, signal.SIGKILL)
            out, err = bench.communicate()
            raise AssertionError(f"{args} ran out of time:\n{out[-3000:]}\n{err[-3000:]}"
                                 ) from None
    assert bench.returncode == 0, err[-3000:]
    return out
