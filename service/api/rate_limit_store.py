"""The rate limiter's store: Redis while it answers, a process-local count while it does not.

Redis is a cache (DESIGN.md): losing it may cost accuracy, never a payment. While Redis is
unreachable each gateway counts its own callers in memory, so the limit still holds per
process; every decision taken that way is counted, so on-call can see it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import structlog
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from prometheus_client import Counter
from redis.exceptions import RedisError

log = structlog.get_logger()
T = TypeVar("T")
# Errors that mean "Redis did not answer", not "this request is wrong".
UNAVAILABLE = (RedisError, OSError, TimeoutError)


class FallbackStore(Store):
    def __init__(self, primary: Store, fallback_decisions: Counter, *, retry_after: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.primary = primary
        self.local = MemoryStore()
        self.decisions = fallback_decisions
        self.retry_after = retry_after
        self.clock = clock
        # While Redis is known to be down, requests do not each wait for its timeout.
        self._down_until = 0.0

    @property
    def degraded(self) -> bool:
        return self.clock() < self._down_until

    async def _either(self, call: Callable[[Store], Awaitable[T]], name: str) -> T:
        if not self.degraded:
            try:
                result = await call(self.primary)
            except UNAVAILABLE as exc:
                if not self._down_until:
                    log.warning("rate_limit.redis_unavailable", error=type(exc).__name__,
                                operation=name)
                self._down_until = self.clock() + self.retry_after
            else:
                if self._down_until:
                    log.info("rate_limit.redis_back")
                    self._down_until = 0.0
                return result
        if name == "get":  # the limiter reads once per request: one decision
            self.decisions.inc()
        return await call(self.local)

    async def set(self, key: str, value: str | bytes,
                  expires_in: int | timedelta | None = None) -> None:
        await self._either(lambda s: s.set(key, value, expires_in), "set")

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        return await self._either(lambda s: s.get(key, renew_for), "get")

    async def delete(self, key: str) -> None:
        await self._either(lambda s: s.delete(key), "delete")

    async def delete_all(self) -> None:
        await self._either(lambda s: s.delete_all(), "delete_all")

    async def exists(self, key: str) -> bool:
        return await self._either(lambda s: s.exists(key), "exists")

    async def expires_in(self, key: str) -> int | None:
        return await self._either(lambda s: s.expires_in(key), "expires_in")

    def with_namespace(self, namespace: str) -> FallbackStore:
        raise NotImplementedError("the rate-limit store is used without namespaces")
