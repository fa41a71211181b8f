"""A transaction's statements sent to MySQL in one round trip, with its COMMIT.

On a busy gateway each round trip is a worker thread that blocks on its socket, lets go of
the interpreter lock and waits to get it back: measured under load, that cost the gateway
more CPU than the statements cost the server (docs/developers/performance.md, "What a
payment costs"). MySQL runs the statements of one query separated by semicolons in order
(the connection's CLIENT_MULTI_STATEMENTS) and stops at the first that fails, so the
statements and their COMMIT go out together, and all of them or none are applied: on a
failure the transaction is rolled back, as `engine.begin()` would.

The statements are SQLAlchemy Core statements compiled once per shape; every value goes
through PyMySQL's own parameter escaping, as with `Connection.execute`. Errors are raised
as SQLAlchemy's (IntegrityError, OperationalError, ...), and a connection the server
dropped is invalidated, so the callers' outage handling is the same on either path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pymysql.constants import CLIENT
from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class Prepared:
    """One statement's SQL for the connection's driver, and the names of its values in the
    order the driver takes them."""

    sql: str
    names: tuple[str, ...]
    constants: Mapping[str, Any]  # the values written in the statement itself


@dataclass(frozen=True)
class Step:
    """What one statement of a pipeline did."""

    lastrowid: int
    rowcount: int
    rows: tuple[tuple[Any, ...], ...]


class PipelineFailed(Exception):
    """The statement at `index` failed (`error`, SQLAlchemy's); nothing was committed."""

    def __init__(self, index: int, error: sa_exc.DBAPIError) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


# By the statement's identity; the statement is kept with its SQL, so its id is never
# another's. The statements are module constants (a few dozen shapes in all).
NAMED = re.compile(r"(?<!%)%\((\w+)\)s")
EXPANDING = re.compile(r"__\[POSTCOMPILE_(\w+)\]")
_compiled: dict[tuple[int, tuple[str, ...] | None, str], tuple[ClauseElement, Prepared]] = {}


def supported(connection: Connection) -> bool:
    """Whether `connection` takes several statements in one query (PyMySQL on an engine
    made `pipelined`); elsewhere the caller sends one statement at a time."""
    if connection.dialect.name != "mysql" or connection.dialect.driver != "pymysql":
        return False
    flags = getattr(connection.connection.dbapi_connection, "client_flag", 0)
    return bool(flags & CLIENT.MULTI_STATEMENTS)


def compiled(connection: Connection, statement: ClauseElement,
             keys: Sequence[str] | None = None) -> Prepared:
    """`statement` compiled for `connection`'s dialect, once per statement and set of
    `keys` (an INSERT's columns). `statement` is a constant, built once per process."""
    dialect = connection.dialect
    cache_key = (id(statement), tuple(keys) if keys is not None else None,
                 f"{dialect.name}+{dialect.driver}:{dialect.paramstyle}")
    kept = _compiled.get(cache_key)
    if kept is None:
        done = cast(SQLCompiler, statement.compile(
            dialect=connection.dialect, column_keys=list(keys) if keys is not None else None))
        if done._bind_processors:
            raise TypeError(f"a pipelined statement has values to convert: {done.string}")
        if done.positiontup is not None:
            raise TypeError("a pipeline expects a driver with named values (pyformat)")
        constants = {name: bind.effective_value for name, bind in done.binds.items()
                     if not bind.required}

        def expanded(match: re.Match[str]) -> str:
            # An IN list of values written in the statement: one value per item.
            name = match.group(1)
            items = list(cast(Iterable[Any], constants.pop(name)))
            constants.update({f"{name}__{i}": item for i, item in enumerate(items)})
            return ", ".join(f"%({name}__{i})s" for i in range(len(items)))

        sql = EXPANDING.sub(expanded, done.string)
        # The statements of a pipeline share one list of values: each name becomes its
        # place in that list.
        names = tuple(NAMED.findall(sql))
        sql = NAMED.sub("%s", sql)
        if keys is not None and not set(names) <= set(keys):
            raise TypeError(f"an INSERT would take defaults the caller does not give: {names}")
        kept = _compiled[cache_key] = (statement, Prepared(sql, names, constants))
    return kept[1]


Statement = tuple[Prepared, Mapping[str, Any]]


class Transaction:
    """One transaction on `connection`, its statements sent a batch per round trip.

    A COMMIT goes out only behind a batch the server has answered, as with one statement
    at a time, and with no statement that could wait on another transaction's lock: a
    server that hangs, or a statement that waits, before the gateway gives up never
    commits the transaction afterwards (the gateway closes the connection, and the server
    rolls back what it ran of it). A COMMIT already sent when the server hangs is run when
    it wakes, as with one statement at a time: the caller has answered 503, and the
    Idempotency-Key's lock covers that (test_database_outage.py, "recovered by its retry").
    Leaving the block without `commit` rolls the transaction back; a batch that fails rolls
    it back at once."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._answered = False
        self._open = False

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if self._open:
            self._open = False
            # The pool does not roll back a connection given back to it: this does.
            try:
                self._dbapi().rollback()
            except self.connection.dialect.loaded_dbapi.Error as error:
                self.connection.invalidate(error)  # gone: the server ends it

    def send(self, statements: Sequence[Statement]) -> list[Step]:
        """Run `statements` in one round trip, leaving the transaction open."""
        return self._round_trip(statements, commit=False)

    def commit(self, statements: Sequence[Statement] = ()) -> list[Step]:
        """Run `statements` and COMMIT, in one round trip. `statements` only write rows
        this transaction wrote (whose locks it holds): none of them can wait."""
        if not self._answered:
            raise RuntimeError("a COMMIT goes out only behind an answered batch")
        steps = self._round_trip(statements, commit=True)
        self._open = False
        return steps

    def _round_trip(self, statements: Sequence[Statement], *, commit: bool) -> list[Step]:
        parts = [c.sql for c, _ in statements] + (["COMMIT"] if commit else [])
        sql = "; ".join(parts)
        values = [v[name] if name in v else c.constants[name]
                  for c, v in statements for name in c.names]
        dbapi_connection = self._dbapi()
        cursor = dbapi_connection.cursor()
        steps: list[Step] = []
        self._open = True
        try:
            cursor.execute(sql, values)
            while True:
                steps.append(Step(cursor.lastrowid, cursor.rowcount,
                                  tuple(cursor.fetchall()) if cursor.description else ()))
                if not cursor.nextset():
                    break
        except self.connection.dialect.loaded_dbapi.Error as error:
            self._open = False
            raise PipelineFailed(len(steps), _failed(self.connection, sql, error,
                                                     cursor)) from error
        finally:
            cursor.close()
        if len(steps) != len(parts):  # a statement with results of its own (a CALL)
            raise RuntimeError(f"{len(parts)} statements gave {len(steps)} results")
        self._answered = True
        return steps[:len(statements)]  # the COMMIT's answer is not a statement's

    def _dbapi(self) -> Any:
        dbapi_connection = self.connection.connection.dbapi_connection
        assert dbapi_connection is not None
        return dbapi_connection


def _failed(connection: Connection, sql: str, error: Any,
            cursor: Any) -> sa_exc.DBAPIError:
    dbapi_connection = connection.connection.dbapi_connection
    dropped = connection.dialect.is_disconnect(error, dbapi_connection, cursor)
    if dropped:
        # As SQLAlchemy does on a disconnect: every connection the pool made before now is
        # suspect (a restarted server dropped them all) and is replaced at its checkout.
        connection.engine.pool._invalidate(connection.connection, error)
        connection.invalidate(error)
    else:
        try:
            dbapi_connection.rollback()  # type: ignore[union-attr]
        except connection.dialect.loaded_dbapi.Error:
            connection.invalidate(error)
            dropped = True
    return cast(sa_exc.DBAPIError, sa_exc.DBAPIError.instance(
        sql, None, error, connection.dialect.loaded_dbapi.Error, hide_parameters=True,
        connection_invalidated=dropped, dialect=connection.dialect))
