"""Engine and session factory for MySQL/MariaDB or the embedded SQLite file."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings


def make_engine(settings: Settings, *, timeout: float | None = None) -> Engine:
    """The engine for `settings`; `timeout` (seconds) bounds connecting and every read and
    write on MySQL, for a process that must give up quickly on a hung server."""
    url = settings.sqlalchemy_url()
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return sqlite_engine(url)
    limits = ({"connect_timeout": 5, "read_timeout": 30, "write_timeout": 30} if timeout is None
              else {"connect_timeout": timeout, "read_timeout": timeout,
                    "write_timeout": timeout})
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_size=10,
        max_overflow=20,
        # READ COMMITTED: a worker polling for due payments must see rows committed by the
        # gateway since its transaction began, and SKIP LOCKED behaves best at this level.
        isolation_level="READ COMMITTED",
        connect_args=limits,
    )


def sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Foreign keys are off by default in SQLite; WAL lets the gateway read while a
        # worker writes.
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
