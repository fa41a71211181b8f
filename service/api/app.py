"""The gateway's Litestar application, built from Settings."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from anyio import to_thread
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.asyncio import Redis

from service.api import contract, docs
from service.api.auth import Verifier
from service.api.batching import Batcher
from service.api.body import require_json_object
from service.api.controllers.payments import PaymentController
from service.api.controllers.public import health, list_providers, metrics, ready, receive_webhook
from service.api.controllers.reconciliation import ReconciliationController
from service.api.deps import Services
from service.api.limits import RateLimiter, caller_and_limits
from service.api.problems import HANDLERS
from service.db.availability import Breaker, is_down
from service.db.engine import THREADS
from service.reconciliation.service import ReconciliationService
from service.services.context import Context
from service.services.creation import Creation
from service.services.payments import PaymentService
from service.services.queries import Found
from service.services.refunds import RefundService
from service.services.webhooks import WebhookService
from service.settings import Settings

UNLIMITED = ("/health", "/metrics", "/schema", "/api/v1/webhooks")


def http_metrics(ctx: Context) -> Any:
    def middleware(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = [500]

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await app(scope, receive, capture)
            finally:
                route = str(scope.get("path_template") or "unmatched")
                method = scope.get("method", "GET")
                ctx.metrics.http_requests.labels(method, route, str(status[0])).inc()
                ctx.metrics.http_duration.labels(method, route).observe(
                    time.perf_counter() - started
                )

        return wrapped

    return middleware


def allow_every_method(app: ASGIApp) -> ASGIApp:
    """OPTIONS answers with every method of the path. Litestar 2.25's own answer lists only
    the methods of the first handler registered at a path (POST, not GET, on /payments)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "OPTIONS":
            await app(scope, receive, send)
            return
        template = scope.get("path_template")
        methods = next((route.methods for route in scope["app"].routes
                        if route.path_format == template), {"OPTIONS"})
        allow = ", ".join(sorted(methods))

        async def with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 204:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", allow.encode())]}
            await send(message)

        await app(scope, receive, with_allow)

    return wrapped


async def _read(breaker: Breaker, payments: PaymentService,
                public_ids: Sequence[str]) -> list[Found | None]:
    """One batch of GETs. A batch that queued behind one the database failed fails at once
    with 503, as a request arriving then would, instead of waiting out the same timeouts:
    the failure trips the breaker here, before the next batch goes out."""
    breaker.check()
    try:
        return await to_thread.run_sync(payments.queries.found, public_ids)
    except Exception as exc:
        if is_down(exc):
            breaker.trip()
        raise


def create_app(settings: Settings, ctx: Context | None = None) -> Litestar:
    context = ctx or Context.build(settings, pipelined=True)
    payments = PaymentService(context)
    breaker = Breaker()
    services = Services(
        context, payments, Creation(payments), RefundService(payments),
        WebhookService(context, payments),
        ReconciliationService(context, payments.idempotency),
        Batcher(partial(_read, breaker, payments), lanes=2),
    )
    dsn = settings.redis_dsn()
    # Short socket timeouts: a Redis that hangs must cost a request a second, not a minute.
    redis = Redis.from_url(dsn, socket_connect_timeout=1, socket_timeout=1) if dsn else None
    limiter = RateLimiter(settings.rate_limit_per_minute, redis,
                          context.metrics.rate_limit_fallback)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # The database pools are sized to this (service/db/engine.py).
        to_thread.current_default_thread_limiter().total_tokens = THREADS
        # What startup built (modules, the app, the models) lives as long as the process:
        # out of the collector's sight, a full collection no longer walks it mid-request.
        contract.finish(app.openapi_schema)
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if redis is not None:
                await redis.aclose()
            context.close()

    return Litestar(
        route_handlers=[
            docs.assets(),
            PaymentController,
            ReconciliationController,
            list_providers,
            receive_webhook,
            health,
            ready,
            metrics,
        ],
        exception_handlers=HANDLERS,
        middleware=[http_metrics(context), allow_every_method,
                    caller_and_limits(Verifier(settings.jwt_secret.get_secret_value()),
                                      limiter, UNLIMITED)],
        state=State({"services": services, "redis": redis, "breaker": breaker,
                     "limiter": limiter}),
        before_request=require_json_object,
        lifespan=[lifespan],
        request_max_body_size=settings.max_request_bytes,
        openapi_config=docs.openapi_config(),
        on_app_init=[_no_debug],
        debug=False,
        # service/logs.py configures the one log stream; Litestar's own would add a second
        # format (and a queue handler) to the same loggers.
        logging_config=None,
    )


def _no_debug(config: AppConfig) -> AppConfig:
    # Never a stack trace to a client, whatever LITESTAR_DEBUG says.
    config.debug = False
    return config
