"""Concurrent GETs share their database read and their rate-limit round trip
(service/api/batching.py), on a real app, MariaDB and Redis: each request still gets its
own answer, another facility's payment stays absent, and the limit counts every request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, event

from service.api.app import create_app
from service.db import migrate
from service.services.context import Context
from service.settings import Settings
from tests.conftest import random_key
from tests.integration.test_api import auth
from tests.servers import free_port


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a real uvicorn in this event loop (requests truly concurrent, as a test
    client's are not), and a client of it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the gateway did not start"
            await asyncio.sleep(0.02)
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                     timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        await task


CASH = {"provider": "cash", "amount": "150.00", "currency": "SDG", "patient_id": "p-1"}


@pytest.fixture
def app_parts(settings_factory: Callable[..., Settings], mysql_url: str, redis_url: str,
              ) -> Callable[[int], tuple[Any, Context]]:
    engine = create_engine(mysql_url)
    migrate.prepare(engine)
    engine.dispose()

    def make(limit: int) -> tuple[Any, Context]:
        settings = settings_factory(database_url=mysql_url, redis_url=redis_url,
                                    rate_limit_per_minute=limit)
        ctx = Context.build(settings, CollectorRegistry(), pipelined=True)  # as the gateway
        return create_app(settings, ctx), ctx

    return make


def test_concurrent_gets_share_reads_and_each_gets_its_own_answer(
        app_parts: Callable[[int], tuple[Any, Context]]) -> None:
    app, ctx = app_parts(100_000)
    selects: list[str] = []
    event.listen(ctx.reader, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: selects.append(statement))
    mine, theirs = auth(facility="fac-1", sub="reader-1"), auth(facility="fac-2", sub="r-2")

    async def scenario() -> None:
        async with served(app) as client:
            own = [(await client.post("/api/v1/payments", json=CASH, headers=mine)).json()
                   for _ in range(3)]
            other = (await client.post("/api/v1/payments", json=CASH, headers=theirs)).json()
            selects.clear()
            asked = [p["id"] for p in own] * 10 + [other["id"], "pay_missing",
                                                   own[0]["id"].upper()] * 3
            replies = await asyncio.gather(*(
                client.get(f"/api/v1/payments/{i}", headers=mine) for i in asked))
            for payment_id, reply in zip(asked, replies, strict=True):
                if payment_id in (other["id"], "pay_missing"):
                    assert reply.status_code == 404, reply.text
                    assert reply.json()["detail"] == f"no payment {payment_id!r}"
                    continue
                assert reply.status_code == 200, reply.text
                # The id the database's collation finds: a case variant is the same payment.
                expected = next(p for p in own if p["id"].casefold() == payment_id.casefold())
                assert reply.json() == expected
            # Each GET was answered, and they shared their reads.
            reads = [s for s in selects if "FROM payments" in s]
            assert 1 <= len(reads) < len(asked) // 2, (len(reads), len(asked))
            # The other facility sees its own payment.
            seen = await client.get(f"/api/v1/payments/{other['id']}", headers=theirs)
            assert seen.status_code == 200 and seen.json() == other

    asyncio.run(scenario())


def test_the_rate_limit_counts_every_request_of_a_shared_round_trip(
        app_parts: Callable[[int], tuple[Any, Context]]) -> None:
    app, ctx = app_parts(10)
    # Buckets are per token subject and the Redis store outlives this test: fresh subjects.
    busy = auth(sub=f"busy-{random_key()}")
    calm = auth(sub=f"calm-{random_key()}")

    async def scenario() -> None:
        async with served(app) as client:
            replies = await asyncio.gather(
                *(client.get("/api/v1/payments/pay_x", headers=busy) for _ in range(30)),
                *(client.get("/api/v1/payments/pay_x", headers=calm) for _ in range(4)))
            codes = [r.status_code for r in replies]
            assert sorted(codes[:30]) == [404] * 10 + [429] * 20
            assert codes[30:] == [404] * 4
            assert all(r.headers.get("Retry-After") for r in replies if r.status_code == 429)

    asyncio.run(scenario())
    # Every decision was Redis's: none fell back to a gateway's own count.
    assert not ctx.metrics.registry.get_sample_value("nilecare_rate_limit_fallback_total")
