"""Throwaway MariaDB and Redis servers started from the installed binaries, for tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port} in {seconds}s")


@contextmanager
def _serving(args: list[str], port: int, log: Path, start_seconds: float) -> Iterator[None]:
    """Run a server until the block ends: ready once it listens, killed if it will not stop."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, process, log, start_seconds)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def mariadb(base: Path) -> Iterator[str]:
    """A fresh MariaDB on a free port; yields a SQLAlchemy URL (root, no password)."""
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
    with _serving(
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
            "--innodb-buffer-pool-size=256M",
            "--innodb-flush-log-at-trx-commit=2",
            "--skip-log-bin",
            "--max-connections=500",
            "--character-set-server=utf8mb4",
        ],
        port,
        log,
        start_seconds=60,
    ):
        yield f"mysql+pymysql://root@127.0.0.1:{port}"


@contextmanager
def redis(base: Path) -> Iterator[str]:
    """A fresh Redis on a free port with the production eviction policy."""
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = base / "redis.log"
    with _serving(
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
        port,
        log,
        start_seconds=20,
    ):
        yield f"redis://127.0.0.1:{port}/0"
