"""The providers list, and the endpoints without a caller: webhooks, health, readiness,
metrics."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from service.api.contract import BODY, WEBHOOKS, errors
from service.api.deps import services_of
from service.api.guards import database_answers
from service.api.problems import problem
from service.db import migrate
from service.db.availability import RETRY_AFTER_SECONDS
from service.domain import catalog
from service.domain.money import fmt
from service.domain.views import Health, ProviderList, Readiness, WebhookReceipt
from service.providers.signing import HEADER


@get("/api/v1/payment-providers", tags=["providers"],
     summary="The payment providers (public: no token needed)", responses=errors(429))
async def list_providers(state: State) -> ProviderList:
    services = services_of(state)
    registry = services.ctx.providers
    return {
        "providers": [
            {
                "name": p.code,
                "display_name": p.display_name,
                "type": p.type.value,
                "currencies": list(p.currencies),
                "fees": {
                    "percent": str(p.fees.percent),
                    "fixed": fmt(p.fees.fixed),
                    "min": fmt(p.fees.minimum),
                    "max": fmt(p.fees.maximum) if p.fees.maximum is not None else None,
                },
                "limits": {"min": fmt(p.min_amount), "max": fmt(p.max_amount)},
                "verification": p.verification.value,
                "active": registry.available(p),
            }
            for p in catalog.PROVIDERS
        ]
    }


@post(
    WEBHOOKS.replace("{provider}", "{provider:str}"),
    status_code=200,
    tags=["webhooks"],
    summary="Provider webhook (HMAC-signed)",
    # The service reads and verifies the bytes itself: a signed body that is not an event
    # is still recorded before it is refused.
    opt={"raw_body": True},
    middleware=[database_answers],
    responses=errors(BODY, 401, 404, 503, why={
        401: "The X-NileCare-Signature header is missing, malformed, stale or does not match "
             "the body"}),
)
async def receive_webhook(
    provider: FromPath[str], request: Request[Any, Any, Any], state: State
) -> WebhookReceipt:
    services = services_of(state)
    raw = await request.body()
    return await to_thread.run_sync(
        services.webhooks.receive, provider, request.headers.get(HEADER),
        request.headers.get("content-type"), raw
    )


@get("/health", tags=["ops"], summary="Liveness (no dependencies)")
async def health() -> Health:
    return {"status": "ok"}


@get("/health/ready", tags=["ops"], summary="Readiness: database, migrations, Redis",
     responses=errors(503))
async def ready(
    state: State, request: Request[Any, Any, Any]
) -> Response[Readiness]:
    services = services_of(state)
    checks: dict[str, str] = {}

    def database() -> None:
        try:
            with services.ctx.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["database"] = f"failed: {type(exc).__name__}"
            return
        try:
            current = migrate.current(services.ctx.engine)
            head = migrate.head()
            checks["migrations"] = "ok" if current == head else f"at {current}, head is {head}"
        except Exception as exc:  # noqa: BLE001
            checks["migrations"] = f"failed: {type(exc).__name__}"

    await to_thread.run_sync(database)
    breaker = request.app.state.get("breaker")
    if breaker is not None and checks.get("database") == "ok":
        breaker.close()
    degraded = False
    redis = request.app.state.get("redis")
    if redis is not None:
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            # Redis is a cache: without it payments go on (rate limits count locally), so
            # the gateway stays in rotation and says it is degraded.
            checks["redis"] = f"degraded: {type(exc).__name__}"
            degraded = True
    failed = {k: v for k, v in checks.items() if v != "ok" and k != "redis"}
    if failed:
        return problem(503, "Not ready", "failed checks: " + ", ".join(sorted(failed)), request,
                       retry_after=RETRY_AFTER_SECONDS, extra={"checks": checks})
    return Response({"status": "degraded" if degraded else "ready", "checks": checks})


@get("/metrics", tags=["ops"], summary="Prometheus metrics", include_in_schema=False)
async def metrics(state: State) -> Response[bytes]:
    services = services_of(state)
    return Response(generate_latest(services.ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
