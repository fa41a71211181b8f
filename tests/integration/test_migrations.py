"""The hand-written migrations and the models agree, on MariaDB and on SQLite, and every
migration after the first can be undone and redone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from service.db import migrate
from service.db.engine import sqlite_engine
from service.db.models import Base

pytestmark = pytest.mark.integration


@pytest.fixture(params=["mariadb", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "mariadb":
        engine = create_engine(request.getfixturevalue("mysql_url"))
    else:
        engine = sqlite_engine(f"sqlite:///{tmp_path / 't.db'}")
    yield engine
    engine.dispose()


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_autogenerate_finds_nothing_to_add_at_head(engine: Engine) -> None:
    migrate.prepare(engine)
    assert _diff(engine) == []


def _triggers(engine: Engine) -> set[str]:
    query = ("SELECT name FROM sqlite_master WHERE type = 'trigger'"
             if engine.dialect.name == "sqlite" else
             "SELECT trigger_name FROM information_schema.triggers "
             "WHERE trigger_schema = DATABASE()")
    with engine.connect() as connection:
        return set(connection.execute(text(query)).scalars())


def test_downgrade_to_the_first_revision_and_back(engine: Engine) -> None:
    migrate.prepare(engine)
    triggers = _triggers(engine)
    # 0001's ten, and 0005's counters (one per event on MariaDB; SQLite splits an update
    # into leaving one count and entering another).
    counting = {t for t in triggers if "_count_" in t}
    assert len(triggers - counting) == 10
    assert len(counting) == (8 if engine.dialect.name == "sqlite" else 6)
    migrate.downgrade(engine, "0001")
    assert _triggers(engine) == triggers - counting  # no table rebuild lost its triggers
    assert migrate.current(engine) == "0001"
    indexes = {i["name"] for i in inspect(engine).get_indexes("payments")}
    assert "ix_payments_provider_created" in indexes
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()
    assert _diff(engine) == []
    assert _triggers(engine) == triggers
