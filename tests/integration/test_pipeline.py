"""A transaction's statements sent to MariaDB a batch per round trip (service/db/pipeline.py),
on the engine the gateway makes: all or nothing, the failing statement named, values kept
as data, a dropped connection seen as an outage, and no COMMIT before an answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from service.db import pipeline
from service.db.availability import is_unavailable
from service.db.engine import make_engine

META = MetaData()
NOTES = Table("notes", META, Column("id", Integer, primary_key=True, autoincrement=True),
              Column("name", String(64), unique=True), Column("body", String(255)))
ADD = insert(NOTES)
BY_NAMES = select(NOTES.c.id, NOTES.c.body).where(NOTES.c.name.in_(["a", "b"]))
BODY_OF = select(NOTES.c.body).where(NOTES.c.name == bindparam("name"))


@pytest.fixture
def engine(mysql_url: str, settings_factory: Any) -> Iterator[Engine]:
    engine = make_engine(settings_factory(database_url=mysql_url), pipelined=True)
    META.create_all(engine)
    yield engine
    engine.dispose()


def _add(connection: Any, name: str, body: str) -> pipeline.Statement:
    return pipeline.compiled(connection, ADD, ("name", "body")), {"name": name, "body": body}


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(NOTES)) or 0)


def _in_transaction(connection: Any) -> int:
    return int(connection.exec_driver_sql("SELECT @@in_transaction").scalar())


def test_a_transaction_in_two_round_trips_commits_all_of_it(engine: Engine) -> None:
    with engine.connect() as connection:
        assert pipeline.supported(connection)
        with pipeline.Transaction(connection) as transaction:
            first = transaction.send([_add(connection, "a", "one"), _add(connection, "b", "two"),
                                      (pipeline.compiled(connection, BY_NAMES), {})])
            assert first[1].lastrowid == first[0].lastrowid + 1
            # The IN list written in the statement reads what this transaction wrote.
            assert sorted(body for _, body in first[2].rows) == ["one", "two"]
            transaction.commit([_add(connection, "c", "three")])
        assert _in_transaction(connection) == 0
    assert _count(engine) == 3


def test_a_failing_statement_rolls_back_the_whole_transaction_and_is_named(
        engine: Engine) -> None:
    with engine.connect() as connection:
        with pipeline.Transaction(connection) as transaction:
            transaction.send([_add(connection, "a", "one")])
            with pytest.raises(pipeline.PipelineFailed) as failed:
                # The second is a duplicate name: the third never runs, and nothing stays.
                transaction.commit([_add(connection, "b", "two"), _add(connection, "a", "x"),
                                    _add(connection, "c", "three")])
        assert failed.value.index == 1
        assert isinstance(failed.value.error, IntegrityError)
        assert "Traceback" not in str(failed.value.error)
        assert _in_transaction(connection) == 0
    assert _count(engine) == 0


def test_a_block_left_without_a_commit_leaves_nothing_on_the_pooled_connection(
        engine: Engine) -> None:
    with engine.connect() as connection:
        with pytest.raises(ValueError), pipeline.Transaction(connection) as transaction:
            transaction.send([_add(connection, "a", "one")])
            raise ValueError("the caller's own error, between two round trips")
        assert _in_transaction(connection) == 0
    assert _count(engine) == 0


def test_no_commit_goes_out_before_the_server_has_answered(engine: Engine) -> None:
    # A server that hangs before the first batch must not commit it when it wakes after
    # the gateway gave up: a COMMIT rides only behind an answered batch.
    with (engine.connect() as connection, pipeline.Transaction(connection) as transaction,
          pytest.raises(RuntimeError)):
        transaction.commit([_add(connection, "a", "one")])
    assert _count(engine) == 0


def test_only_a_pipelined_engine_takes_statements_together(
        mysql_url: str, settings_factory: Any) -> None:
    engine = make_engine(settings_factory(database_url=mysql_url))
    try:
        with engine.connect() as connection:
            assert not pipeline.supported(connection)
    finally:
        engine.dispose()


def test_values_stay_data_however_they_read(engine: Engine) -> None:
    hostile = ["x'); DROP TABLE notes; --", "\\'; DELETE FROM notes; #", "a;b", "%s %(x)s",
               "قيمة; COMMIT", "\\"]
    with engine.connect() as connection:
        with pipeline.Transaction(connection) as transaction:
            transaction.send([_add(connection, f"n{i}", value)
                              for i, value in enumerate(hostile)])
            transaction.commit()
        bodies = [connection.execute(BODY_OF, {"name": f"n{i}"}).scalar()
                  for i in range(len(hostile))]
    assert bodies == hostile


def test_a_connection_the_server_dropped_is_an_outage_and_is_not_reused(
        engine: Engine, mysql_url: str) -> None:
    admin = create_engine(mysql_url)
    try:
        with engine.connect() as connection:
            with pipeline.Transaction(connection) as transaction:
                transaction.send([_add(connection, "a", "one")])
                own = connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one()
                with admin.begin() as other:
                    other.execute(text(f"KILL {int(own)}"))
                with pytest.raises(pipeline.PipelineFailed) as failed:
                    transaction.commit([_add(connection, "b", "two")])
            assert is_unavailable(failed.value.error)
            assert connection.invalidated
        assert _count(engine) == 0
        with engine.connect() as connection:  # a new connection, and it works
            assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        admin.dispose()
