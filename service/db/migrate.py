"""Alembic to head, programmatically: the `nilecare migrate` command and test fixtures."""

from __future__ import annotations

from collections.abc import Callable
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


def prepare(engine: Engine) -> None:
    """Migrate to head and seed the provider catalogue: what `nilecare migrate` does."""
    from sqlalchemy.orm import Session

    from service.db.seed import sync_providers

    upgrade(engine)
    with Session(engine) as session, session.begin():
        sync_providers(session)


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
