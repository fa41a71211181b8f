"""Engine and session factory for MySQL/MariaDB or the embedded SQLite file."""

from __future__ import annotations

import select
import time
from typing import Any

from pymysql.constants import CLIENT
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings

# The threads a gateway runs blocking work on (anyio's limiter, set to this at startup): each
# holds at most one connection of each engine, so a pool this size never makes one past it
# (which pool_size would close on return: a new connection costs a TCP and TLS handshake and
# a TLS context, a third of the gateway's CPU under load when the pools were smaller).
THREADS = 40
# A pooled connection back within this many seconds is used without a ping: under load the
# ping was a round trip per checkout (a fifth of a GET's time). Every checkout still looks
# at the connection's socket, which costs a system call: a server that closed it (a restart,
# KILL, a proxy's idle cut) has left it readable, and it is replaced before any statement.
PING_AFTER_IDLE_SECONDS = 1.0


def make_engine(settings: Settings, *, timeout: float | None = None,
                reader: bool = False, pipelined: bool = False) -> Engine:
    """The engine for `settings`. On MySQL every wait is bounded (DATABASE_*_SECONDS): a
    connection, a pooled connection, each read and write, a row lock; `timeout` (seconds)
    replaces the read/write bound for a process that needs another (the exporter's shorter
    one, reconciliation's longer statements). A `reader` engine's connections autocommit:
    a read is its one statement, with no transaction to end. A `pipelined` engine's
    connections take several statements in one query (service/db/pipeline.py)."""
    url = settings.sqlalchemy_url()
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return sqlite_engine(url)
    connect = settings.database_connect_timeout_seconds
    io = settings.database_timeout_seconds if timeout is None else timeout
    engine = create_engine(
        url,
        pool_recycle=1800,
        # As many as the threads that may use it at once (THREADS), and never more: no
        # connection is opened to be closed again on return.
        pool_size=THREADS,
        max_overflow=0,
        # Every checkout ends its own transaction (commit, or the rollback SQLAlchemy issues
        # when a Connection or Session closes with one open), so the pool's own rollback on
        # return would only repeat it: a statement per transaction for nothing.
        pool_reset_on_return=None,
        # A request waits this long for a free connection, then answers 503.
        pool_timeout=connect,
        # READ COMMITTED: a worker polling for due payments must see rows committed by the
        # gateway since its transaction began, and SKIP LOCKED behaves best at this level.
        isolation_level="AUTOCOMMIT" if reader else "READ COMMITTED",
        connect_args={
            "connect_timeout": min(connect, io),
            # PyMySQL reads the server's handshake with read_timeout: connecting is bounded
            # by the connect timeout, and reads by `io` once connected (below).
            "read_timeout": min(connect, io),
            "write_timeout": io,
            # Without it a row lock is waited for 50 s (the server's default).
            "init_command": (f"SET SESSION innodb_lock_wait_timeout = "
                             f"{settings.database_lock_wait_seconds}"),
        },
    )

    @event.listens_for(engine, "connect")
    def _read_timeout(dbapi_conn: Any, _record: Any) -> None:
        # PyMySQL keeps its read timeout in this attribute and applies it at the next read.
        dbapi_conn._read_timeout = io

    if pipelined:
        @event.listens_for(engine, "do_connect")
        def _statements_together(_dialect: Any, _record: Any, _args: Any,
                                 params: dict[str, Any]) -> None:
            # A create sends a transaction's statements together (service/db/pipeline.py).
            # Added to the flags SQLAlchemy sets (FOUND_ROWS: an UPDATE counts the rows it
            # matched), never in their place. Every value still goes through the driver's
            # escaping; no SQL is made of what a request sent. Only the engines that
            # pipeline take it: the others' connections refuse a second statement.
            params["client_flag"] = params.get("client_flag", 0) | CLIENT.MULTI_STATEMENTS

    _ping_when_idle(engine)
    if reader:
        # An autocommit connection has no transaction to roll back; PyMySQL would still send
        # ROLLBACK after every read.
        engine.dialect.do_rollback = lambda _dbapi_connection: None  # type: ignore[method-assign,assignment]
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """What pool_pre_ping checks on every checkout, without its round trip on a busy
    gateway: a connection the server closed is replaced at once (its socket is readable),
    and one that idled is pinged (a server that hangs keeps its sockets open and quiet)."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["returned"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned")
        if returned is None:
            return  # just connected
        if _dropped(dbapi_conn):
            # Only this one: a killed connection says nothing about the others, and a
            # restarted server's are each found the same way.
            raise exc.DisconnectionError("the server closed this connection")
        if time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return  # in use a moment ago
        try:
            dbapi_conn.ping(False)
        except Exception as error:  # any failure means: do not hand this connection out
            # As pool_pre_ping does: the server went away, so every older connection is
            # suspect; the pool replaces them all and checks out a new one.
            raise exc.InvalidatePoolError(str(error)) from error


def _dropped(dbapi_conn: Any) -> bool:
    """True when an idle PyMySQL connection's socket is closed or has something to read:
    between statements the server sends nothing unless it is closing the connection (an
    error packet, then end of file)."""
    sock = getattr(dbapi_conn, "_sock", None)
    if sock is None:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


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
