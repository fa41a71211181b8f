"""Natural batching (service/api/batching.py): what queues while a batch is out goes in
the next one, each request gets its own result or its batch's error, and nothing hangs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from service.api.batching import Batcher


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
