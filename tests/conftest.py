"""Shared fixtures: settings, and real MariaDB / Redis servers for the integration tiers.

By default each test session starts its own throwaway MariaDB and Redis from the installed
binaries, so the suite passes on a fresh machine. NILECARE_TEST_MYSQL_URL (a server URL
without a database, e.g. mysql+pymysql://root@127.0.0.1:3306) and NILECARE_TEST_REDIS_URL
point it at running servers instead.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from service.domain.catalog import credential_groups
from service.settings import Settings, load
from tests import servers
from tests.clock import MovableClock

TEST_JWT_SECRET = "test-jwt-secret-" + "x" * 32
TEST_WEBHOOK_SECRET = "w" * 64


def base_environ(**overrides: str) -> dict[str, str]:
    env: dict[str, str] = {
        "JWT_SECRET": TEST_JWT_SECRET,
        "WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "ENCRYPTION_KEY": "0f" * 32,
        "SECRETS_DIR": "/nonexistent",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
        "PROVIDER_TIMEOUT_SECONDS": "2",
    }
    for group in credential_groups():
        env[group.api_key.upper()] = f"key-{group.group}"
        env[group.api_secret.upper()] = f"secret-{group.group}-" + "s" * 20
        env[group.merchant_id.upper()] = f"M-{group.group}"
    env.update(overrides)
    return env


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        env = base_environ(DATA_DIR=str(tmp_path / "data"))
        env.update({k.upper(): str(v) for k, v in overrides.items()})
        return load(env)

    return make


@pytest.fixture(scope="session")
def mysql_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("NILECARE_TEST_MYSQL_URL")
    if given:
        yield given.rstrip("/")
        return
    with servers.mariadb(tmp_path_factory.mktemp("mariadb")) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("NILECARE_TEST_REDIS_URL")
    if given:
        yield given
        return
    with servers.redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def clock() -> MovableClock:
    """The time a test's service context reads; the test moves it instead of sleeping."""
    return MovableClock()


@pytest.fixture
def mysql_url(mysql_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server; dropped afterwards."""
    with fresh_database(mysql_server) as url:
        yield url


@contextmanager
def fresh_database(mysql_server: str) -> Iterator[str]:
    """The URL of a new, empty database on `mysql_server`, dropped on the way out."""
    name = f"nc_{uuid.uuid4().hex[:12]}"
    admin = create_engine(mysql_server)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    try:
        yield f"{mysql_server}/{name}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def migrated_database(server_url: str, name: str = "nilecare") -> str:
    """The URL of a new database on a throwaway server of the test's own, with our schema.
    Not dropped: the test stops (or kills) the whole server."""
    from service.db.migrate import prepare

    admin = create_engine(server_url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    admin.dispose()
    url = f"{server_url}/{name}"
    engine = create_engine(url)
    prepare(engine)
    engine.dispose()
    return url


def random_key() -> str:
    return secrets.token_hex(8)


# Where a test lives and what it needs decide its marker, so no file can forget it: the
# tiers are folders, and anything else that reaches a real MariaDB or Redis (through a
# fixture built on one) is `integration` too.
TIERS = {"integration": pytest.mark.integration, "e2e": pytest.mark.e2e}
SERVER_FIXTURES = frozenset({"mysql_server", "redis_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        tier = item.path.relative_to(here).parts[0]
        if tier in TIERS:
            item.add_marker(TIERS[tier])
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
