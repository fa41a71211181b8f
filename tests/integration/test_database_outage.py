"""A database that is stopped or hung: every API call that needs it answers 503 problem+json
with Retry-After within the configured timeouts, nothing else is lost, and the gateway
recovers on its own once the database is back. On a MariaDB of the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, func, select, text, update

from service.api.app import create_app
from service.clock import SYSTEM, Clock
from service.db import engine as engine_module
from service.db import migrate, pipeline
from service.db.engine import make_engine
from service.db.models import IdempotencyKey, Payment, PaymentAttempt
from service.services.context import Context
from service.services.creation import Creation
from service.services.payments import NewPayment, PaymentService
from service.settings import Settings
from tests.clock import MovableClock
from tests.conftest import base_environ, migrated_database, random_key
from tests.integration.test_api import auth, body
from tests.integration.workers.conftest import ACCOUNTANT
from tests.servers import Server, free_port, mariadb_server
from tests.simulator import running_simulator

# The test's timeouts (the defaults are 3 s and 5 s): a hung server costs a request at most
# one read (the pooled connection's check) and one connect, plus slack for a loaded machine.
CONNECT, READ = 1, 2
BOUND = CONNECT + READ + 1.5

Call = tuple[str, str, dict[str, Any] | None]


@contextmanager
def _gateway_on_own_database(settings_factory: Callable[..., Settings], tmp_path: Path,
                             clock: Clock = SYSTEM, **overrides: Any,
                             ) -> Iterator[tuple[TestClient[Any], Server, Context]]:
    database = mariadb_server(tmp_path / "mariadb")  # our own: this test stops it
    database.start()
    try:
        url = migrated_database(database.url)
        settings = settings_factory(database_url=url, database_connect_timeout_seconds=CONNECT,
                                    database_timeout_seconds=READ, **overrides)
        ctx = Context.build(settings, CollectorRegistry(), clock=clock,
                            pipelined=True)  # as the gateway
        with TestClient(create_app(settings, ctx)) as client:
            yield client, database, ctx
    finally:
        database.stop()


@pytest.fixture
def outage(settings_factory: Callable[..., Settings], tmp_path: Path,
           ) -> Iterator[tuple[TestClient[Any], Server, Context]]:
    with _gateway_on_own_database(settings_factory, tmp_path) as running:
        yield running


def _calls(payment_id: str) -> list[Call]:
    return [
        ("POST", "/api/v1/payments", body("cash")),
        ("GET", f"/api/v1/payments/{payment_id}", None),
        ("GET", "/api/v1/payments", None),
        ("POST", f"/api/v1/payments/{payment_id}/verify", {"approve": True}),
        ("POST", f"/api/v1/payments/{payment_id}/cancel", None),
        ("POST", f"/api/v1/payments/{payment_id}/refunds", {}),
        ("GET", "/api/v1/reconciliation/issues", None),
        ("POST", "/api/v1/reconciliation/runs", None),
    ]


def _assert_unavailable(client: TestClient[Any], calls: list[Call]) -> list[float]:
    took = []
    for method, path, payload in calls:
        started = time.monotonic()
        reply = client.request(method, path, json=payload, headers=auth())
        took.append(time.monotonic() - started)
        assert reply.status_code == 503, (method, path, reply.text)
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert int(reply.headers["Retry-After"]) >= 1
        problem = reply.json()
        assert problem["status"] == 503 and "field" in problem, problem
        assert "Traceback" not in reply.text
    return took


def _payments(ctx: Context) -> int:
    with ctx.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Payment)) or 0)


def _wait_ready(client: TestClient[Any], seconds: float) -> float:
    started = time.monotonic()
    while client.get("/health/ready").status_code != 200:
        assert time.monotonic() - started < seconds, "the gateway did not recover"
        time.sleep(0.2)
    return time.monotonic() - started


def test_a_killed_database_answers_503_fast_and_the_gateway_recovers(
        outage: tuple[TestClient[Any], Server, Context]) -> None:
    client, database, ctx = outage
    first = client.post("/api/v1/payments", json=body("cash"), headers=auth())
    assert first.status_code == 201
    key = random_key()
    database.kill()
    took = _assert_unavailable(client, _calls(first.json()["id"]))
    assert max(took) < BOUND, took
    # A keyed create during the outage leaves nothing behind: its retry creates it once.
    keyed = client.post("/api/v1/payments", json=body("cash"),
                        headers={**auth(), "Idempotency-Key": key})
    assert keyed.status_code == 503
    # What needs no database still answers.
    assert client.get("/health").status_code == 200
    assert client.get("/api/v1/payment-providers").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("failed")
    assert (ctx.metrics.registry.get_sample_value("nilecare_database_unavailable_total")
            or 0) >= 9

    database.start()
    _wait_ready(client, 30)
    again = [client.post("/api/v1/payments", json=body("cash"),
                         headers={**auth(), "Idempotency-Key": key}) for _ in range(2)]
    assert [r.status_code for r in again] == [201, 201]
    assert again[0].json()["id"] == again[1].json()["id"]
    assert _payments(ctx) == 2  # the first and the keyed one: nothing from the outage
    with ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


def test_a_hung_database_answers_503_within_the_timeouts_and_recovers(
        outage: tuple[TestClient[Any], Server, Context]) -> None:
    client, database, ctx = outage
    first = client.post("/api/v1/payments", json=body("cash"), headers=auth())
    assert first.status_code == 201
    database.freeze()  # SIGSTOP: its sockets stay open and nothing answers
    try:
        took = _assert_unavailable(client, _calls(first.json()["id"]))
        # The first request waits out the timeouts; the gateway then remembers the outage
        # and the next requests are told at once instead of each waiting again.
        assert max(took) < BOUND, took
        assert sorted(took)[len(took) // 2] < 1.0, took
        started = time.monotonic()
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and time.monotonic() - started < BOUND
    finally:
        database.thaw()
    _wait_ready(client, 30)
    after = client.post("/api/v1/payments", json=body("cash"), headers=auth())
    assert after.status_code == 201, after.text
    assert _payments(ctx) == 2


def test_a_create_whose_commit_a_hung_database_took_late_is_recovered_by_its_retry(
        settings_factory: Callable[..., Settings], tmp_path: Path, clock: MovableClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The database hangs after it has answered a card create's first round trip (the key
    and the payment) and before its COMMIT: the gateway gives up and answers 503. The COMMIT
    was already on its way, and the server runs it when it wakes, so the payment exists
    after all. Nothing is lost and nothing is made twice: the key stays locked (409) until
    IDEMPOTENCY_LOCK_SECONDS pass, then its retry answers with that payment, and no call
    goes to the provider for it. (A cash create's COMMIT carries its stored answer: its
    retry replays it at once.)"""
    key = random_key()
    committing = pipeline.Transaction.commit
    froze = False

    def hang_before_the_first_commit(transaction: pipeline.Transaction,
                                     statements: Sequence[pipeline.Statement] = (),
                                     ) -> list[pipeline.Step]:
        nonlocal froze
        if not froze:
            froze = True
            database.freeze()
        return committing(transaction, statements)

    # A provider no call reaches (port 9, discard): had the retry called it, the payment
    # would be unknown.
    with _gateway_on_own_database(settings_factory, tmp_path, clock,
                                  provider_simulator_url="http://127.0.0.1:9",
                                  gateway_public_url="http://127.0.0.1:9",
                                  ) as (client, database, ctx):
        monkeypatch.setattr(pipeline.Transaction, "commit", hang_before_the_first_commit)
        headers = {**auth(), "Idempotency-Key": key}
        started = time.monotonic()
        try:
            first = client.post("/api/v1/payments", json=body(), headers=headers)
            took = time.monotonic() - started
        finally:
            database.thaw()
        assert froze, ("the create never reached its COMMIT", first.status_code, first.text)
        assert first.status_code == 503, first.text
        assert took < BOUND, took
        _wait_ready(client, 30)
        # The COMMIT the gateway gave up on is run by the woken server.
        deadline = time.monotonic() + 10
        while not (made := _made(ctx)):
            assert time.monotonic() < deadline, "the woken server never ran the COMMIT"
            time.sleep(0.1)
        [(public_id, status)] = made
        assert status == "processing"
        with ctx.sessions() as session:
            held = [tuple(row) for row in session.execute(
                select(IdempotencyKey.state, IdempotencyKey.resource_id)).all()]
        assert held == [("in_flight", public_id)], held
        busy = client.post("/api/v1/payments", json=body(), headers=headers)
        assert busy.status_code == 409, busy.text  # its holder may yet be running: wait
        assert int(busy.headers["Retry-After"]) <= ctx.settings.idempotency_lock_seconds
        clock.advance(timedelta(seconds=ctx.settings.idempotency_lock_seconds))
        retry = client.post("/api/v1/payments", json=body(), headers=headers)
        assert retry.status_code == 201, retry.text
        assert (retry.json()["id"], retry.json()["status"]) == (public_id, "processing")
        again = client.post("/api/v1/payments", json=body(), headers=headers)
        assert again.status_code == 201 and again.json()["id"] == public_id
        assert _payments(ctx) == 1
        with ctx.sessions() as session:  # recovered, not charged: no call was made
            assert session.scalar(select(func.count()).select_from(PaymentAttempt)) == 0


def _made(ctx: Context) -> list[tuple[str, str]]:
    with ctx.sessions() as session:
        return [(row.public_id, row.status)
                for row in session.execute(select(Payment.public_id, Payment.status))]


def test_workers_ride_out_a_database_outage_and_carry_on(
        outage: tuple[TestClient[Any], Server, Context], tmp_path: Path,
        settings_factory: Callable[..., Settings]) -> None:
    """The payment worker and the reconciliation worker keep running through an outage
    (one warning each, no stack traces, heartbeats still fresh) and, once the database is
    back, the payment worker settles what came due meanwhile."""
    client, database, ctx = outage
    with running_simulator(settings_factory()) as sim:
        env = {**os.environ, **base_environ(
            DATABASE_URL=ctx.settings.sqlalchemy_url(), PROVIDER_SIMULATOR_URL=sim,
            DATA_DIR=str(tmp_path / "w"), LOG_LEVEL="INFO", WORKER_POLL_INTERVAL_SECONDS="0.2",
            DATABASE_CONNECT_TIMEOUT_SECONDS=str(CONNECT), DATABASE_TIMEOUT_SECONDS=str(READ),
            GATEWAY_PUBLIC_URL="http://127.0.0.1:9", STATEMENT_DIR=str(tmp_path / "none"),
            WORKER_METRICS_PORT=str(free_port()), RECONCILIATION_METRICS_PORT=str(free_port()))}
        httpx.put(f"{sim}/_control/zain_cash",
                  json={"settle_after_seconds": 0.3, "send_webhooks": False})
        workers = {}
        for name, args in {"worker": ["worker", "--no-tasks"],
                           "reconciliation": ["reconciliation-worker"]}.items():
            log = tmp_path / f"{name}.log"
            beat = tmp_path / f"{name}.heartbeat"
            workers[name] = (subprocess.Popen(
                [sys.executable, "-m", "service.cli", *args, "--heartbeat", str(beat)],
                env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT), log, beat)
        try:
            database.kill()
            logs = [log for _process, log, _beat in workers.values()]
            deadline = time.monotonic() + 10 * READ
            while not all("database_unavailable" in log.read_text() for log in logs):
                assert time.monotonic() < deadline, [log.read_text()[-2000:] for log in logs]
                time.sleep(0.1)
            time.sleep(1.0)  # five more loops of each (0.2 s apart) meet the outage
            for name, (process, log, beat) in workers.items():
                assert process.poll() is None, log.read_text()[-2000:]
                assert time.time() - beat.stat().st_mtime < 2 * READ, name
                text = log.read_text()
                assert text.count("database_unavailable") == 1, text[-2000:]
                assert "Traceback" not in text, text[-3000:]
            database.start()
            _wait_ready(client, 30)
            # A wallet payment the provider settles later: only the worker learns of it.
            with_provider = Context.build(settings_factory(
                database_url=ctx.settings.sqlalchemy_url(), provider_simulator_url=sim,
                gateway_public_url="http://127.0.0.1:9"), CollectorRegistry(), pipelined=True)
            try:
                created = Creation(PaymentService(with_provider)).create(ACCOUNTANT, NewPayment(
                    "zain_cash", Decimal("150.00"), "SDG", "fac-1", "p-1",
                    payer_phone="+249912345678"), None).body
            finally:
                with_provider.close()
            assert created["status"] == "processing"
            time.sleep(0.4)  # settled at the provider; still processing for us
            with ctx.sessions.begin() as session:  # due now rather than in 30 s
                session.execute(update(Payment).values(next_check_at=func.utc_timestamp(6)))
            deadline = time.monotonic() + 30
            while client.get(f"/api/v1/payments/{created['id']}",
                             headers=auth()).json()["status"] != "confirmed":
                assert time.monotonic() < deadline, workers["worker"][1].read_text()[-3000:]
                time.sleep(0.2)
            assert "worker.database_back" in workers["worker"][1].read_text()
        finally:
            for process, _log, _beat in workers.values():
                process.terminate()
                process.wait(20)


def test_a_locked_row_answers_503_for_that_request_only(
        settings_factory: Callable[..., Settings], mysql_url: str) -> None:
    """A row held by a long transaction elsewhere: the request that needs it waits at most
    DATABASE_LOCK_WAIT_SECONDS and answers 503 with Retry-After; the others go on (a busy row
    says nothing about the database)."""
    engine = create_engine(mysql_url)
    migrate.prepare(engine)
    settings = settings_factory(database_url=mysql_url, database_lock_wait_seconds=1)
    ctx = Context.build(settings, CollectorRegistry(), pipelined=True)  # as the gateway
    try:
        with TestClient(create_app(settings, ctx)) as client:
            payment = client.post("/api/v1/payments", json=body("cash"), headers=auth()).json()
            with engine.begin() as holder:  # someone else's transaction holds the row
                holder.execute(select(Payment.id).where(Payment.public_id == payment["id"])
                               .with_for_update())
                started = time.monotonic()
                verify = client.post(f"/api/v1/payments/{payment['id']}/verify",
                                     json={"approve": True}, headers=auth())
                waited = time.monotonic() - started
                assert verify.status_code == 503, verify.text
                assert int(verify.headers["Retry-After"]) >= 1 and waited < 1 + 1.5
                # The gateway does not take the database for down: the next request runs.
                assert client.get(f"/api/v1/payments/{payment['id']}",
                                  headers=auth()).status_code == 200
            again = client.post(f"/api/v1/payments/{payment['id']}/verify",
                                json={"approve": True}, headers=auth())
            assert again.status_code == 200 and again.json()["status"] == "verified"
    finally:
        ctx.close()
        engine.dispose()


def test_a_connection_the_server_dropped_is_never_handed_out(
        mysql_url: str, settings_factory: Callable[..., Settings],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every checkout looks at the pooled connection's socket: one the server closed (here
    KILL) is replaced before a statement runs on it, whether it idled (and is pinged too,
    engine.PING_AFTER_IDLE_SECONDS) or was in use a moment ago (no ping): no request fails
    on it and the breaker never opens for it."""
    engine = make_engine(settings_factory(database_url=mysql_url))
    admin = create_engine(mysql_url)

    def connection_id() -> int:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT CONNECTION_ID()")).scalar_one())

    def kill(number: int) -> None:
        with admin.begin() as connection:
            connection.execute(text(f"KILL CONNECTION {number}"))
            # KILL returns before the server's thread has closed the socket: wait for that.
            deadline = time.monotonic() + 10
            while connection.execute(text(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = :n"),
                    {"n": number}).scalar_one():
                assert time.monotonic() < deadline, f"connection {number} outlived its KILL"
                time.sleep(0.05)

    try:
        seen = [connection_id()]
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)  # all idled
        kill(seen[-1])
        seen.append(connection_id())
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 3600.0)  # all hot
        kill(seen[-1])
        seen.append(connection_id())
        assert len(set(seen)) == 3, seen
    finally:
        engine.dispose()
        admin.dispose()
