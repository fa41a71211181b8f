"""Dependencies handed to controllers: the caller, its Idempotency-Key, the services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, Response
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import HeaderParameter

from service.api.batching import Batcher
from service.api.body import canonical
from service.api.limits import caller_of
from service.domain.caller import Caller
from service.reconciliation.service import ReconciliationService
from service.services.context import Context
from service.services.creation import Creation
from service.services.idempotency import MAX_KEY_LENGTH, Keyed, Outcome
from service.services.payments import PaymentService
from service.services.queries import Found
from service.services.refunds import RefundService
from service.services.webhooks import WebhookService

# Printable ASCII without blanks at either end (HTTP strips them from a header's value).
KEY_PATTERN = r"^[!-~]([ -~]*[!-~])?$"
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
    # GETs of one payment that queue while a read is out share the next one.
    reads: Batcher[str, Found | None]


def respond(outcome: Outcome) -> Response[Any]:
    """An operation's outcome as sent: its status and body (the first response, replayed
    verbatim to a retry with the same Idempotency-Key). The handler's return annotation
    documents the body."""
    return Response(outcome.body, status_code=outcome.status)


def services_of(state: State) -> Services:
    """The app's services. Handlers take them from the app's state, not as a dependency:
    Litestar resolves a handler's independent dependencies concurrently in an anyio task
    group, and with the caller beside them that group cost a GET a third of its CPU."""
    services: Services = state.services
    return services


def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    """The caller the middleware verified (service/api/limits.py): the token is read once."""
    return caller_of(request.state.dict())


def provide_keyed(
    request: Request[Any, Any, Any],
    caller: NamedDependency[Caller],
    idempotency_key: Annotated[str | None, HeaderParameter(
        name="Idempotency-Key", required=False, description=IDEMPOTENCY_HELP,
        # Documented only: Keyed.of checks it, naming the header (Litestar would name the
        # parameter, idempotency_key).
        schema_extra={"min_length": 1, "max_length": MAX_KEY_LENGTH, "pattern": KEY_PATTERN})
    ] = None,
) -> Keyed | None:
    if idempotency_key is None:
        return None
    return Keyed.of(caller.subject, idempotency_key, request.method, request.url.path,
                    canonical(request))
