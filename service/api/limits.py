"""Who is calling, read once per request, and whether they may: a rate limit per caller."""

# The bearer token is verified here, once, and the caller (or why there is none) is kept in
# the request's state for the handlers. The limit is a one-minute window per caller counted
# in Redis with INCRBY and EXPIRE in one round trip, which the decisions that queued while the
# last one was out share (service/api/batching.py); while Redis does not answer, each gateway
# counts its callers in memory (Redis is a cache: losing it may cost accuracy, never a
# payment), and every decision taken that way is counted, so on-call can see it.

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.api.auth import Verifier
from service.api.batching import Batcher
from service.domain.caller import Caller
from service.errors import NileCareError, Unauthenticated

log = structlog.get_logger()
CALLER = "nilecare_caller"
WINDOW = 60
# Errors that mean "Redis did not answer", not "this request is wrong".
UNAVAILABLE = (RedisError, OSError, TimeoutError)


class TooManyRequests(NileCareError):
    status = 429
    title = "Too many requests"


class RateLimiter:
    def __init__(self, limit: int, redis: Redis | None, fallback_decisions: Counter, *,
                 retry_after: float = 5.0, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.redis = redis
        self.fallback_decisions = fallback_decisions
        self.retry_after = retry_after
        self.clock = clock
        self.local: dict[tuple[str, int], int] = {}
        # While Redis is known to be down, requests do not each wait for its timeout.
        self._down_until = 0.0
        self._batches: Batcher[str, int | None] = Batcher(self._count)

    @property
    def degraded(self) -> bool:
        return self.clock() < self._down_until

    async def hit(self, identity: str) -> int | None:
        """Count one request of `identity`; None when allowed, else the seconds until its
        window resets."""
        now = self.clock()
        window = int(now // WINDOW)
        reset = WINDOW - int(now % WINDOW)
        count = await self._shared(identity, window) if self.redis is not None else None
        if count is None:
            count = self._local(identity, window)
        return None if count <= self.limit else reset

    async def _shared(self, identity: str, window: int) -> int | None:
        if self.degraded:
            self.fallback_decisions.inc()
            return None
        return await self._batches.submit(f"nilecare:rl:{identity}:{window}")

    async def _count(self, keys: Sequence[str]) -> list[int | None]:
        """One round trip for every decision that queued while the last was out: INCRBY
        and EXPIRE once per key, and each request its own place in its key's count."""
        assert self.redis is not None
        if self.degraded:
            # A batch that queued behind the one that found Redis gone does not wait out
            # the same timeout.
            self.fallback_decisions.inc(len(keys))
            return [None] * len(keys)
        hits = collections.Counter(keys)
        try:
            pipe = self.redis.pipeline(transaction=False)
            for key, n in hits.items():
                pipe.incrby(key, n)
                pipe.expire(key, WINDOW + 1)
            replies = await pipe.execute()
        except UNAVAILABLE as exc:
            if not self._down_until:
                log.warning("rate_limit.redis_unavailable", error=type(exc).__name__)
            self._down_until = self.clock() + self.retry_after
            self.fallback_decisions.inc(len(keys))
            return [None] * len(keys)
        if self._down_until:
            log.info("rate_limit.redis_back")
            self._down_until = 0.0
        # The last of a key's requests in this batch sees the count INCRBY returned, the
        # ones before it one less each: as if they had gone one by one.
        after = {key: int(count) - n
                 for (key, n), count in zip(hits.items(), replies[::2], strict=True)}
        counts: list[int | None] = []
        for key in keys:
            after[key] += 1
            counts.append(after[key])
        return counts

    def _local(self, identity: str, window: int) -> int:
        if len(self.local) > 10_000:  # forget windows that have passed
            self.local = {k: v for k, v in self.local.items() if k[1] >= window}
        count = self.local.get((identity, window), 0) + 1
        self.local[(identity, window)] = count
        return count


def caller_and_limits(verifier: Verifier, limiter: RateLimiter,
                      unlimited: tuple[str, ...]) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware: verify the bearer token once, then count the request against its
    caller (the token's subject, so minting new tokens buys no quota; else the address)."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            header = _header(scope, b"authorization")
            caller: Caller | Unauthenticated | None = None
            if header is not None:
                try:
                    caller = verifier.caller(header)
                except Unauthenticated as exc:
                    caller = exc
            state: dict[str, Any] = scope.setdefault("state", {})
            state[CALLER] = caller
            if not scope["path"].startswith(unlimited):
                client = scope.get("client")
                identity = (f"sub:{caller.subject}" if isinstance(caller, Caller)
                            else f"ip:{client[0] if client else 'unknown'}")
                wait = await limiter.hit(identity)
                if wait is not None:
                    raise TooManyRequests("too many requests from this caller; retry after "
                                          "the time in Retry-After", field="Authorization",
                                          retry_after=wait)
            await app(scope, receive, send)

        return wrapped

    return middleware


def caller_of(state: dict[str, Any]) -> Caller:
    """The verified caller of this request, or 401 saying what is wrong with its token."""
    found = state.get(CALLER)
    if isinstance(found, Caller):
        return found
    if isinstance(found, Unauthenticated):
        raise found
    raise Unauthenticated("send Authorization: Bearer <token>", field="Authorization")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
