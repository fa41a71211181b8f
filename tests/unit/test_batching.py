"""Natural batching (service/api/batching.py): what queues while a batch is out goes in
the next one, each request gets its own result or its batch's error, and nothing hangs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from functools import partial
from types import SimpleNamespace
from typing import Any, cast

import pymysql
import pytest
from prometheus_client import CollectorRegistry, Counter
from redis import exceptions as redis_exceptions
from redis.asyncio import Redis
from sqlalchemy import exc as sa_exc

from service.api import app
from service.api.batching import Batcher
from service.api.limits import RateLimiter
from service.db.availability import Breaker
from service.errors import Unavailable
from service.services.payments import PaymentService


class Backend:
    """Answers each key with its upper case; each batch waits until the test releases it."""

    def __init__(self, fail: set[int] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        self.fail = fail or set()

    async def run(self, keys: Sequence[str]) -> list[str]:
        self.batches.append(list(keys))
        await self.release.wait()
        if len(self.batches) in self.fail:
            raise ConnectionError(f"batch {len(self.batches)} lost its server")
        return [key.upper() for key in keys]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_what_queues_while_a_batch_is_out_goes_in_the_next_one() -> None:
    async def scenario() -> None:
        backend = Backend()
        batcher: Batcher[str, str] = Batcher(backend.run)
        first = asyncio.ensure_future(batcher.submit("a"))
        await _settle()
        assert backend.batches == [["a"]]  # alone, a request goes out at once
        rest = [asyncio.ensure_future(batcher.submit(k)) for k in ("b", "c", "b")]
        await _settle()
        assert backend.batches == [["a"]]  # they wait for the one lane
        backend.release.set()
        assert await first == "A"
        assert [await r for r in rest] == ["B", "C", "B"]
        assert backend.batches == [["a"], ["b", "c", "b"]]

    asyncio.run(scenario())


def test_a_failed_batch_fails_each_of_its_requests_and_the_next_batch_runs() -> None:
    async def scenario() -> None:
        backend = Backend(fail={1})
        batcher: Batcher[str, str] = Batcher(backend.run)
        doomed = [asyncio.ensure_future(batcher.submit(k)) for k in ("a", "b")]
        await _settle()
        later = asyncio.ensure_future(batcher.submit("c"))
        backend.release.set()
        for request in doomed:
            with pytest.raises(ConnectionError, match="batch 1"):
                await request
        assert await later == "C"
        assert backend.batches == [["a", "b"], ["c"]]

    asyncio.run(scenario())


def test_a_cancelled_request_leaves_its_batch_to_the_others() -> None:
    async def scenario() -> None:
        backend = Backend()
        batcher: Batcher[str, str] = Batcher(backend.run)
        gone = asyncio.ensure_future(batcher.submit("a"))
        stays = asyncio.ensure_future(batcher.submit("b"))
        await _settle()
        gone.cancel()  # its client went away mid-batch
        waiting = asyncio.ensure_future(batcher.submit("c"))
        queued_then_gone = asyncio.ensure_future(batcher.submit("d"))
        await _settle()
        queued_then_gone.cancel()  # cancelled before its batch went out: not sent
        backend.release.set()
        assert await stays == "B"
        assert await waiting == "C"
        assert gone.cancelled()
        assert backend.batches == [["a", "b"], ["c"]]

    asyncio.run(scenario())


def test_lanes_bound_the_batches_out_at_once_and_size_bounds_a_batch() -> None:
    async def scenario() -> None:
        backend = Backend()
        batcher: Batcher[str, str] = Batcher(backend.run, lanes=2, size=2)
        requests = [asyncio.ensure_future(batcher.submit(k)) for k in "abcde"]
        await _settle()
        # Two lanes took a batch of at most two each; the fifth waits.
        assert backend.batches == [["a", "b"], ["c", "d"]]
        backend.release.set()
        assert [await r for r in requests] == list("ABCDE")
        assert backend.batches[2:] == [["e"]]
        # Every lane ended: a later request starts one again.
        assert await batcher.submit("f") == "F"

    asyncio.run(scenario())


def test_a_wrong_count_of_results_is_an_error_not_a_hang() -> None:
    async def short(keys: Sequence[str]) -> list[str]:
        return list(keys)[1:]

    async def scenario() -> None:
        batcher: Batcher[str, str] = Batcher(short)
        requests = [asyncio.ensure_future(batcher.submit(k)) for k in "ab"]
        for request in requests:
            with pytest.raises(RuntimeError, match="a batch of 2 got 1 results"):
                await asyncio.wait_for(request, 5)

    asyncio.run(scenario())


def test_gets_queued_behind_a_read_the_database_failed_get_503_at_once() -> None:
    """A hung database costs the batch that is out its timeout, not every batch behind it."""
    calls: list[list[str]] = []

    class Queries:
        def found(self, ids: Sequence[str]) -> list[None]:
            calls.append(list(ids))
            time.sleep(0.2)  # the read hangs until the driver gives up
            raise sa_exc.OperationalError("SELECT", {}, pymysql.err.OperationalError(
                2013, "Lost connection to MySQL server during query"))

    payments = cast(PaymentService, SimpleNamespace(queries=Queries()))
    breaker = Breaker(hold=60)
    batcher: Batcher[str, Any] = Batcher(partial(app._read, breaker, payments))

    async def scenario() -> None:
        first = asyncio.ensure_future(batcher.submit("pay_1"))
        await _settle()
        behind = [asyncio.ensure_future(batcher.submit(f"pay_{n}")) for n in range(2, 7)]
        with pytest.raises(sa_exc.OperationalError):
            await first
        for request in behind:
            with pytest.raises(Unavailable):
                await request

    asyncio.run(scenario())
    assert calls == [["pay_1"]]
    assert breaker.open


def test_rate_limit_decisions_queued_behind_a_hung_redis_do_not_wait_for_it_again() -> None:
    executes: list[int] = []

    class HungPipeline:
        def __init__(self) -> None:
            self.commands = 0

        def incrby(self, key: str, n: int) -> None:
            self.commands += 1

        def expire(self, key: str, seconds: int) -> None:
            self.commands += 1

        async def execute(self) -> list[int]:
            executes.append(self.commands)
            await asyncio.sleep(0.2)  # the socket timeout
            raise redis_exceptions.TimeoutError("Timeout reading from socket")

    class HungRedis:
        def pipeline(self, transaction: bool) -> HungPipeline:
            return HungPipeline()

    registry = CollectorRegistry()
    fallbacks = Counter("fallbacks", "decisions", registry=registry)
    limiter = RateLimiter(3, cast(Redis, HungRedis()), fallbacks)

    async def scenario() -> list[int | None]:
        first = asyncio.ensure_future(limiter.hit("sub:a"))
        await _settle()
        behind = [asyncio.ensure_future(limiter.hit("sub:a")) for _ in range(5)]
        return [await first, *[await b for b in behind]]

    waits = asyncio.run(scenario())
    assert executes == [2]  # one round trip went out; the five behind it did not
    # Every decision was the gateway's own, and counted.
    assert registry.get_sample_value("fallbacks_total") == 6
    # Counted in memory meanwhile: the limit of 3 still holds.
    assert waits[:3] == [None, None, None] and all(w is not None for w in waits[3:])
