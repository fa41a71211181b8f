"""The hand-written migrations and the models agree, on MariaDB and on SQLite, and every
migration after the first can be undone and redone.

What autogenerate compares (tables, columns, types, indexes, keys) is half the schema. The
CHECK constraints and the triggers are the other half: a database built by upgrading through
every revision must hold exactly those a database built from the models and
service/db/triggers holds, as the server itself reports them."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from service.db import migrate, triggers
from service.db.engine import sqlite_engine
from service.db.models import Base
from tests.conftest import fresh_database


@pytest.fixture
def engine(blank_engine: Engine) -> Engine:
    return blank_engine


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_gateways_starting_together_all_find_the_database_at_head(
        request: pytest.FixtureRequest) -> None:
    # A swarm starts its gateway replicas at once, and each runs `nilecare migrate` first.
    with fresh_database(request.getfixturevalue("mysql_server")) as url:
        engines = [create_engine(url) for _ in range(4)]
        try:
            with ThreadPoolExecutor(len(engines)) as pool:
                for future in [pool.submit(migrate.prepare, e) for e in engines]:
                    future.result()
            assert migrate.current(engines[0]) == migrate.head()
            assert _diff(engines[0]) == []
        finally:
            for e in engines:
                e.dispose()


def test_a_gateway_waits_out_a_long_migration_past_its_read_timeout(
        request: pytest.FixtureRequest) -> None:
    # The service's engine gives up on a read after DATABASE_TIMEOUT_SECONDS; another
    # replica's migration may hold the lock far longer than that.
    with fresh_database(request.getfixturevalue("mysql_server")) as url:
        holder = create_engine(url)
        waiter = create_engine(url, connect_args={"read_timeout": 2})
        try:
            with holder.connect() as held:
                held.exec_driver_sql("SELECT GET_LOCK(%s, 10)", (migrate.LOCK_NAME,))
                with ThreadPoolExecutor(1) as pool:
                    waiting = pool.submit(migrate.prepare, waiter)
                    time.sleep(5)
                    assert not waiting.done()
                    held.exec_driver_sql("SELECT RELEASE_LOCK(%s)", (migrate.LOCK_NAME,))
                    waiting.result(timeout=120)
            assert migrate.current(waiter) == migrate.head()
        finally:
            holder.dispose()
            waiter.dispose()


def test_autogenerate_finds_nothing_to_add_at_head(engine: Engine) -> None:
    migrate.prepare(engine)
    assert _diff(engine) == []


@pytest.fixture
def models_engine(engine: Engine, tmp_path: Path,
                  request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A second empty database of the same kind, built from the models and the triggers."""
    if engine.dialect.name == "sqlite":
        built = sqlite_engine(f"sqlite:///{tmp_path / 'models.db'}")
        yield _built(built)
        built.dispose()
        return
    with fresh_database(request.getfixturevalue("mysql_server")) as url:
        built = create_engine(url)
        yield _built(built)
        built.dispose()


def _built(engine: Engine) -> Engine:
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        for statement in triggers.create_statements(engine.dialect.name):
            connection.execute(text(statement))
    return engine


def _normal(sql: str) -> str:
    return " ".join(sql.split())


def _sqlite_checks(table: str, sql: str) -> dict[tuple[str, str], str]:
    """The named CHECK constraints in a CREATE TABLE statement, as SQLite keeps it."""
    found = {}
    for match in re.finditer(r"CONSTRAINT\s+(\w+)\s+CHECK\s*\(", sql):
        depth, end = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            end += 1
        found[(table, match.group(1))] = _normal(sql[match.end():end - 1])
    return found


def _checks(engine: Engine) -> dict[tuple[str, str], str]:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            found: dict[tuple[str, str], str] = {}
            for table, sql in connection.execute(text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'table'")):
                found |= _sqlite_checks(table, sql)
            return found
        return {(table, name): _normal(clause) for table, name, clause in connection.execute(
            text("SELECT table_name, constraint_name, check_clause "
                 "FROM information_schema.check_constraints "
                 "WHERE constraint_schema = DATABASE()"))}


def _trigger_definitions(engine: Engine) -> dict[str, str]:
    query = ("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
             if engine.dialect.name == "sqlite" else
             "SELECT trigger_name, CONCAT_WS(' ', action_timing, event_manipulation, "
             "event_object_table, action_order, action_statement) "
             "FROM information_schema.triggers WHERE trigger_schema = DATABASE()")
    with engine.connect() as connection:
        return {name: _normal(sql) for name, sql in connection.execute(text(query))}


def test_upgrading_through_every_revision_builds_the_models_checks_and_triggers(
        engine: Engine, models_engine: Engine) -> None:
    migrate.upgrade(engine)
    checks = _checks(engine)
    # Each status list is checked, so a status added to the models without a revision fails.
    assert ("payments", "ck_payments_status") in checks
    assert checks == _checks(models_engine)
    built = _trigger_definitions(engine)
    assert set(built) == set(triggers.names(engine.dialect.name))
    assert built == _trigger_definitions(models_engine)


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


def test_0005_keeps_what_a_reconciled_database_holds(engine: Engine) -> None:
    """Dropping matched_payment_id rebuilds bank_statement_lines on SQLite, which findings
    reference: with findings present it must neither fail nor lose a row, both ways."""
    migrate.prepare(engine)
    migrate.downgrade(engine, "0004")
    now = "2026-01-02 10:00:00"
    with engine.begin() as c:
        c.execute(text(
            "INSERT INTO payments (id, public_id, reference, provider_code, facility_id, "
            "patient_id, amount, currency, total_fees, net_amount, refunded_amount, status, "
            "created_by, updated_by, created_at, updated_at, check_attempts) VALUES "
            f"(7, 'pay_m', 'NC-M', 'bank_transfer', 'f1', 'p', 10, 'SDG', 0, 0, 0, "
            f"'confirmed', 't', 't', '{now}', '{now}', 0)"))
        c.execute(text(
            "INSERT INTO bank_statements (id, bank_code, source, checksum, status, line_count, "
            f"imported_at) VALUES (3, 'bok', 'f.csv', 'abc', 'reconciled', 1, '{now}')"))
        c.execute(text(
            "INSERT INTO bank_statement_lines (id, statement_id, line_no, value_date, amount, "
            "currency, reference, matched_payment_id) VALUES "
            "(5, 3, 1, '2026-01-03', 10, 'SDG', 'NC-M', 7)"))
        c.execute(text(
            "INSERT INTO payment_reconciliation (run_id, statement_line_id, payment_id, result, "
            f"status, created_at) VALUES ('run_m', 5, 7, 'matched', 'closed', '{now}')"))
    migrate.upgrade(engine)
    assert _diff(engine) == []
    with engine.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM bank_statement_lines")).scalar() == 1
        assert c.execute(text("SELECT payment_id FROM payment_reconciliation "
                              "WHERE statement_line_id = 5")).scalar() == 7
    migrate.downgrade(engine, "0004")
    with engine.connect() as c:
        assert c.execute(text("SELECT matched_payment_id FROM bank_statement_lines "
                              "WHERE id = 5")).scalar() == 7
