"""Fixtures for tests that hold on both databases the service runs on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from service.db import migrate
from service.db.engine import sqlite_engine


@pytest.fixture(params=["mariadb", "sqlite"])
def blank_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database on MariaDB (the test server) and on SQLite (the embedded default)."""
    if request.param == "mariadb":
        engine = create_engine(request.getfixturevalue("mysql_url"))
    else:
        engine = sqlite_engine(f"sqlite:///{tmp_path / 't.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def migrated_engine(blank_engine: Engine) -> Engine:
    """blank_engine migrated to head and seeded, as `nilecare migrate` leaves it."""
    migrate.prepare(blank_engine)
    return blank_engine
