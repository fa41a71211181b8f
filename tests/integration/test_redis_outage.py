"""Redis is a cache: with it gone, payments are still created and read, the rate limit still
holds (per gateway, counted), and Redis is used again once it is back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine

from service.api.app import create_app
from service.api.auth import mint
from service.api.limits import RateLimiter
from service.db import migrate
from service.services.context import Context
from service.settings import Settings
from tests.conftest import TEST_JWT_SECRET
from tests.servers import Server, redis_server

PAYMENT = {"provider": "cash", "amount": "150.00", "currency": "SDG", "patient_id": "p-1"}


@pytest.fixture
def gateway(settings_factory: Callable[..., Settings], mysql_url: str, tmp_path: Path,
            ) -> Iterator[tuple[TestClient[Any], Server, Context]]:
    redis = redis_server(tmp_path / "redis")  # our own: this test stops it
    redis.start()
    try:
        settings = settings_factory(database_url=mysql_url, redis_url=redis.url,
                                    rate_limit_per_minute=5)
        engine = create_engine(mysql_url)
        migrate.prepare(engine)
        engine.dispose()
        ctx = Context.build(settings, CollectorRegistry(), pipelined=True)  # as the gateway
        with TestClient(create_app(settings, ctx)) as client:
            yield client, redis, ctx
    finally:
        redis.stop()


def _fallbacks(ctx: Context) -> float:
    value = ctx.metrics.registry.get_sample_value("nilecare_rate_limit_fallback_total")
    return value or 0.0


def test_payments_go_on_without_redis_and_the_limit_still_holds(
        gateway: tuple[TestClient[Any], Server, Context]) -> None:
    client, redis, ctx = gateway
    headers = {"Authorization": "Bearer " + mint(TEST_JWT_SECRET, "cashier-1", ["cashier"],
                                                 "fac-1")}
    assert client.post("/api/v1/payments", json=PAYMENT, headers=headers).status_code == 201
    assert _fallbacks(ctx) == 0
    redis.stop()
    created = client.post("/api/v1/payments", json=PAYMENT, headers=headers)
    assert created.status_code == 201, created.text
    assert client.get(f"/api/v1/payments/{created.json()['id']}",
                      headers=headers).status_code == 200
    assert client.get("/api/v1/payment-providers").status_code == 200
    # Readiness says so, but keeps the gateway in rotation: payments do not need Redis.
    ready = client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["redis"].startswith("degraded")
    # Five a minute: the local count goes on from what this gateway saw since Redis left.
    codes = [client.post("/api/v1/payments", json=PAYMENT, headers=headers).status_code
             for _ in range(6)]
    assert 429 in codes and codes.count(201) <= 4
    assert _fallbacks(ctx) >= 3  # one per decision taken without Redis
    redis.start()
    # The limiter asks Redis again 5 s after it last failed: move its clock, do not wait.
    limiter = client.app.state["limiter"]
    assert isinstance(limiter, RateLimiter)
    limiter.clock = lambda: time.time() + limiter.retry_after + 0.5
    for _ in range(3):
        client.get("/api/v1/payment-providers")
    back = _fallbacks(ctx)
    for _ in range(3):
        client.get("/api/v1/payment-providers")
    assert _fallbacks(ctx) == back  # decided by Redis again
