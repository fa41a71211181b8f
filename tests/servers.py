"""Throwaway MariaDB and Redis servers started from the installed binaries, for tests and the
fire drills, which also stop, restart, freeze and thaw them."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary(*names: str) -> str:
    for name in names:
        for folder in ("/usr/sbin", "/usr/bin", "/usr/local/bin"):
            if Path(folder, name).exists():
                return str(Path(folder, name))
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        f"none of {names} is installed (apt-get install mariadb-server redis-server)"
    )


class Server:
    """One server process: ready once it listens on `port` (or `ready()` says so), killed if it
    will not stop. `output` keeps what it prints; otherwise `log` is its own log file."""

    def __init__(self, args: list[str], port: int, log: Path, start_seconds: float,
                 url: str, *, env: dict[str, str] | None = None,
                 output: Path | None = None) -> None:
        self.args = args
        self.port = port
        self.log = log
        self.start_seconds = start_seconds
        self.url = url
        self.env = env
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None

    def ready(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def start(self) -> None:
        out = self.output.open("ab") if self.output else subprocess.DEVNULL
        self.process = subprocess.Popen(self.args, env=self.env, stdout=out,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_seconds
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
                raise RuntimeError(f"{' '.join(self.args[:4])} did not start within "
                                   f"{self.start_seconds:.0f} s:\n{tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.thaw()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: the server dies mid-whatever, as on an OOM or a lost host."""
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self.process.kill()
            self.process.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP: the sockets stay open and nothing answers, the way a server hangs."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    @contextmanager
    def running(self) -> Iterator[str]:
        """Serve for the duration of the block; yields the URL."""
        self.start()
        try:
            yield self.url
        finally:
            self.stop()


# How the deployed mysql:8.4 commits (its defaults): a row-based binary log and the redo log,
# both flushed to disk before a commit returns.
DEPLOYED_COMMITS = ("--innodb-flush-log-at-trx-commit=1", "--sync-binlog=1",
                    "--binlog-format=ROW", "--server-id=1")
# The tests' server: the redo log flushed once a second, no binary log.
TEST_COMMITS = ("--innodb-flush-log-at-trx-commit=2", "--skip-log-bin")


def mariadb_server(base: Path, buffer_pool: str = "256M", *, durable: bool = False
                   ) -> Server:
    """A fresh MariaDB data directory and the server for it (not started). Its URL is a
    SQLAlchemy server URL: root, no password, no database.

    Tests skip the flush to disk at each commit and the binary log, which no test needs.
    `durable` keeps both, as the deployed MySQL does (a commit is written to the binary
    log and the redo log, and both are flushed to disk before the commit returns): the
    benchmarks measure what a deployment pays."""
    datadir = base / "data"
    datadir.mkdir(parents=True)
    log = base / "mariadb.log"
    subprocess.run(
        [
            _binary("mariadb-install-db", "mysql_install_db"),
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = free_port()
    return Server(
        [
            _binary("mariadbd", "mysqld"),
            "--no-defaults",
            f"--datadir={datadir}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={base / 'mysqld.sock'}",
            f"--pid-file={base / 'mysqld.pid'}",
            "--user=root",
            f"--log-error={log}",
            f"--innodb-buffer-pool-size={buffer_pool}",
            *((*DEPLOYED_COMMITS, f"--log-bin={base / 'binlog'}") if durable else TEST_COMMITS),
            "--max-connections=500",
            "--character-set-server=utf8mb4",
        ],
        port, log, 60, f"mysql+pymysql://root@127.0.0.1:{port}",
    )


def commit_settings(url: str) -> dict[str, str]:
    """The variables that say how the MySQL server at `url` commits."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(text(
                "SELECT @@log_bin, @@sync_binlog, @@binlog_format, "
                "@@innodb_flush_log_at_trx_commit")).one()
    finally:
        engine.dispose()
    return {name: str(value) for name, value in zip(
        ("log_bin", "sync_binlog", "binlog_format", "innodb_flush_log_at_trx_commit"), row,
        strict=True)}


def commits(url: str) -> str:
    """How the MySQL server at `url` commits, in words: what a benchmark prints beside its
    numbers."""
    found = commit_settings(url)
    synced = " synced" if found["sync_binlog"] == "1" else f" (sync_binlog={found['sync_binlog']})"
    binlog = (f"a {found['binlog_format']} binary log{synced}" if found["log_bin"] == "1"
              else "no binary log")
    flush = found["innodb_flush_log_at_trx_commit"]
    redo = "the redo log flushed" if flush == "1" else f"innodb_flush_log_at_trx_commit={flush}"
    return f"each commit: {binlog}, {redo}"


def redis_server(base: Path) -> Server:
    """A fresh Redis with the production eviction policy (not started)."""
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = base / "redis.log"
    return Server(
        [
            _binary("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(base),
            "--logfile",
            str(log),
            "--maxmemory",
            "64mb",
            "--maxmemory-policy",
            "allkeys-lru",
        ],
        port, log, 20, f"redis://127.0.0.1:{port}/0",
    )


def answers(url: str, seconds: float, pause: float = 0.2) -> bool:
    """Whether `url` answers 200 within `seconds`, asked every `pause` seconds."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(pause)


def wait_until_serving(name: str, proc: subprocess.Popen[bytes], url: str, log: Path,
                       seconds: float = 60) -> None:
    """Until `url` answers 200; fails with the process's own log if it exits first."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{name} was not ready within {seconds:.0f} s:\n"
                       f"{log.read_text(errors='replace')[-3000:]}")


@contextmanager
def serving(name: str, cmd: list[str], log: Path, ready: str,
            env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run `cmd` (with `env` over ours) until the block ends, once `ready` answers 200;
    yields its process."""
    proc = subprocess.Popen(cmd, env={**os.environ, **env} if env else None,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_until_serving(name, proc, ready, log)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def mariadb(base: Path, buffer_pool: str = "256M", *, durable: bool = False
            ) -> Iterator[str]:
    """A fresh MariaDB on a free port; yields a SQLAlchemy URL (root, no password)."""
    with mariadb_server(base, buffer_pool, durable=durable).running() as url:
        yield url


@contextmanager
def redis(base: Path) -> Iterator[str]:
    """A fresh Redis on a free port with the production eviction policy."""
    with redis_server(base).running() as url:
        yield url
