"""A database that is stopped or hung: every API call that needs it answers 503 problem+json
with Retry-After within the configured timeouts, nothing else is lost, and the gateway
recovers on its own once the database is back. On a MariaDB of the test's own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, func, select, text

from service.api.app import create_app
from service.db import migrate
from service.db.models import IdempotencyKey, Payment
from service.services.context import Context
from service.settings import Settings
from tests.conftest import random_key
from tests.integration.test_api import auth, body
from tests.servers import Server, mariadb_server

pytestmark = pytest.mark.integration
# The test's timeouts (the defaults are 3 s and 5 s): a hung server costs a request at most
# the pool's connect wait plus one read, plus slack for a loaded machine.
CONNECT, READ = 1, 2
BOUND = CONNECT + READ + 3.0

Call = tuple[str, str, dict[str, Any] | None]


@pytest.fixture
def outage(settings_factory: Callable[..., Settings], tmp_path: Path,
           ) -> Iterator[tuple[TestClient[Any], Server, Context]]:
    database = mariadb_server(tmp_path / "mariadb")  # our own: this test stops it
    database.start()
    try:
        admin = create_engine(database.url)
        with admin.begin() as connection:
            connection.execute(text("CREATE DATABASE nilecare"))
        admin.dispose()
        url = f"{database.url}/nilecare"
        engine = create_engine(url)
        migrate.prepare(engine)
        engine.dispose()
        settings = settings_factory(database_url=url, database_connect_timeout_seconds=CONNECT,
                                    database_timeout_seconds=READ)
        ctx = Context.build(settings, CollectorRegistry())
        with TestClient(create_app(settings, ctx)) as client:
            yield client, database, ctx
    finally:
        database.stop()


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


def test_a_stopped_database_answers_503_fast_and_the_gateway_recovers(
        outage: tuple[TestClient[Any], Server, Context]) -> None:
    client, database, ctx = outage
    first = client.post("/api/v1/payments", json=body("cash"), headers=auth())
    assert first.status_code == 201
    key = random_key()
    database.stop()
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
    assert ctx.metrics.registry.get_sample_value("nilecare_database_unavailable_total", ) >= 9

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
