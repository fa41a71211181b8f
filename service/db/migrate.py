"""Alembic to head, programmatically: the `nilecare migrate` command and test fixtures."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    _migrate(engine, lambda config: command.upgrade(config, revision))


def _migrate(engine: Engine, step: Callable[[Config], None]) -> None:
    """Run `step` in one transaction. On SQLite, with foreign keys off while it runs, as
    SQLite's own procedure for rebuilding a table asks (dropping a table that others
    reference would otherwise delete its rows first), and checked before the commit."""
    config = _config(engine)
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            step(config)
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # ignored inside a transaction
        connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                step(config)
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration broke {len(broken)} foreign keys, "
                                       f"first {broken[0]}")
        finally:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


# How long `nilecare migrate` waits for another process's migration before it gives up.
LOCK_WAIT_S = 600
LOCK_NAME = "nilecare_payments.migrate"
LOCK_POLL_S = 1


def prepare(engine: Engine) -> None:
    """Migrate to head and seed the provider catalogue: what `nilecare migrate` does.

    Gateways migrate as they start, and a swarm starts several at once (and one more during
    each rolling update). MySQL's DDL is not transactional, so two migrations racing could
    leave a table created and its revision unrecorded; on MySQL a named lock, held on its own
    connection for the whole run, makes the others wait and then find the database at head."""
    from sqlalchemy.orm import Session

    from service.db.seed import sync_providers

    with _migration_lock(engine):
        upgrade(engine)
        with Session(engine) as session, session.begin():
            sync_providers(session)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name not in ("mysql", "mariadb"):
        yield  # SQLite: one file, one writer at a time already
        return
    with engine.connect() as connection:
        # One short wait at a time: the service's engine reads with a timeout of a few
        # seconds (DATABASE_TIMEOUT_SECONDS), and one long GET_LOCK would outlast it.
        deadline = time.monotonic() + LOCK_WAIT_S
        while connection.exec_driver_sql("SELECT GET_LOCK(%s, %s)",
                                         (LOCK_NAME, LOCK_POLL_S)).scalar() != 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"another migration held the lock {LOCK_NAME!r} for more "
                                   f"than {LOCK_WAIT_S} s")
        try:
            yield
        finally:
            connection.exec_driver_sql("SELECT RELEASE_LOCK(%s)", (LOCK_NAME,))


def downgrade(engine: Engine, revision: str) -> None:
    _migrate(engine, lambda config: command.downgrade(config, revision))


@cache
def head() -> str:
    """The newest revision shipped with this code (read once: it cannot change while we run)."""
    script = ScriptDirectory.from_config(_config_without_engine())
    return str(script.get_current_head())


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _config_without_engine() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config
