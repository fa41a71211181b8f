"""Dependencies handed to controllers: the caller and the process-wide services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import State

from service.api.auth import caller_from_header
from service.domain.caller import Caller
from service.services.context import Context
from service.services.payments import PaymentService
from service.services.refunds import RefundService
from service.services.webhooks import WebhookService


@dataclass
class Services:
    ctx: Context
    payments: PaymentService
    refunds: RefundService
    webhooks: WebhookService


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services


def provide_caller(request: Request[Any, Any, Any], state: State) -> Caller:
    services: Services = state.services
    return caller_from_header(request.headers.get("authorization"),
                              services.ctx.settings.jwt_secret.get_secret_value())
