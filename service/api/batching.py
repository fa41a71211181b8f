"""Requests that wait on the same kind of round trip share it.

While one batch is out (a Redis pipeline, a SELECT in a worker thread), the requests that
arrive queue; when it returns, the next batch takes all of them at once. Under load one
round trip, one thread hop and one parse of a result's column descriptions serve dozens of
requests; alone, a request goes out at once (natural batching: nothing waits on a timer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Batcher(Generic[K, V]):
    """`run` takes the keys of one batch and returns one result per key, in their order.
    If it raises, every request of that batch gets the error (a database or Redis outage
    fails them all alike). At most `lanes` batches are out at once, of at most `size` keys."""

    def __init__(self, run: Callable[[Sequence[K]], Awaitable[Sequence[V]]], *,
                 lanes: int = 1, size: int = 256) -> None:
        self.run = run
        self.lanes = lanes
        self.size = size
        self._queue: list[tuple[K, asyncio.Future[V]]] = []
        self._lanes: set[asyncio.Task[None]] = set()
        # Counted here, not by len(_lanes): a lane that has seen the queue empty stops
        # counting at once, before its task is done, so no request queues behind it.
        self._running = 0

    async def submit(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        self._queue.append((key, future))
        if self._running < self.lanes:
            self._running += 1
            # The lane is a task of its own: a request that is cancelled (its client went
            # away) does not take the others' batch down with it. The loop holds tasks
            # weakly, so the lane is kept here until it ends.
            lane = loop.create_task(self._lane())
            self._lanes.add(lane)
            lane.add_done_callback(self._lanes.discard)
        return await future

    async def _lane(self) -> None:
        try:
            await self._drain()
        finally:
            self._running -= 1

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:self.size], self._queue[self.size:]
            live = [(key, future) for key, future in batch if not future.cancelled()]
            if not live:
                continue
            try:
                results = await self.run([key for key, _ in live])
                if len(results) != len(live):
                    raise RuntimeError(f"a batch of {len(live)} got {len(results)} results")
            except BaseException as exc:
                for _, future in live:
                    if future.done():
                        continue
                    if isinstance(exc, Exception):
                        future.set_exception(exc)  # each request raises it
                    else:
                        future.cancel()
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), result in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(result)
