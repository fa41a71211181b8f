"""Dependencies handed to controllers: the caller, its Idempotency-Key, the services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import HeaderParameter

from service.api.body import canonical
from service.api.limits import caller_of
from service.domain.caller import Caller
from service.reconciliation.service import ReconciliationService
from service.services.context import Context
from service.services.creation import Creation
from service.services.idempotency import Keyed
from service.services.payments import PaymentService
from service.services.refunds import RefundService
from service.services.webhooks import WebhookService

IDEMPOTENCY_HELP = (
    "Makes the POST safe to retry: the same key with the same body (in any key order) "
    "replays the first response; with another body, 422; while the first is still running, "
    "409 with Retry-After. Kept IDEMPOTENCY_TTL_HOURS (24 h), per caller."
)


@dataclass
class Services:
    ctx: Context
    payments: PaymentService
    creation: Creation
    refunds: RefundService
    webhooks: WebhookService
    reconciliation: ReconciliationService


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services


def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    """The caller the middleware verified (service/api/limits.py): the token is read once."""
    return caller_of(request.state.dict())


def provide_keyed(
    request: Request[Any, Any, Any],
    caller: NamedDependency[Caller],
    idempotency_key: Annotated[str | None, HeaderParameter(
        name="Idempotency-Key", required=False, description=IDEMPOTENCY_HELP)] = None,
) -> Keyed | None:
    if idempotency_key is None:
        return None
    return Keyed.of(caller.subject, idempotency_key, request.method, request.url.path,
                    canonical(request))
