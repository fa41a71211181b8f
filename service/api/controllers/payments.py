"""The payment API: create, read, list, verify, cancel, refund."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from anyio import to_thread
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter

from service.api.contract import AUTHENTICATED, BODY, CALLER, KEYED, errors
from service.api.deps import provide_caller, provide_keyed, respond, services_of
from service.api.guards import database_answers
from service.api.schemas import CreatePayment, RefundPayment, VerifyPayment
from service.clock import parse_instant
from service.domain.caller import Caller
from service.domain.status import PaymentStatus
from service.domain.views import PaymentPage, PaymentView, RefundView
from service.errors import InvalidInput
from service.services.idempotency import Keyed
from service.services.payments import NewPayment

# RFC 3339, as JSON Schema means by "date-time" (an offset is required).
INSTANT = {"format": "date-time"}


class PaymentController(Controller):
    path = "/api/v1/payments"
    tags = ["payments"]
    dependencies = {"caller": Provide(provide_caller, sync_to_thread=False),
                    "keyed": Provide(provide_keyed, sync_to_thread=False)}
    middleware = [database_answers]
    security = AUTHENTICATED

    @post("/", summary="Create a payment", responses=errors(CALLER, BODY, KEYED, 403, 502))
    async def create(
        self,
        data: JSONBody[CreatePayment],
        caller: NamedDependency[Caller],
        keyed: NamedDependency[Keyed | None],
        state: State,
    ) -> Response[PaymentView]:
        services = services_of(state)
        new = NewPayment(
            provider=data.provider,
            amount=data.decimal_amount(),
            currency=data.currency,
            facility_id=data.facility_id or caller.facility_id or "",
            patient_id=data.patient_id,
            invoice_id=data.invoice_id,
            payer_phone=data.payer_phone,
            description=data.description,
        )
        if not new.facility_id:
            raise InvalidInput(
                "facility_id is required (your token names no facility)", field="facility_id"
            )
        return respond(await to_thread.run_sync(services.creation.create, caller, new, keyed))

    @get("/", summary="List payments (newest first)", responses=errors(CALLER, 400, 403, 422))
    async def list_payments(
        self,
        caller: NamedDependency[Caller],
        state: State,
        status: Annotated[PaymentStatus | None, Parameter(required=False)] = None,
        provider: Annotated[str | None, Parameter(required=False, max_length=32)] = None,
        facility_id: Annotated[str | None, Parameter(required=False, max_length=64)] = None,
        patient_id: Annotated[str | None, Parameter(required=False, max_length=64)] = None,
        created_from: Annotated[str | None, Parameter(
            required=False, schema_extra=INSTANT, description="Created at or after")] = None,
        created_to: Annotated[str | None, Parameter(
            required=False, schema_extra=INSTANT, description="Created before")] = None,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 50,
        cursor: Annotated[int | None, Parameter(required=False, ge=1)] = None,
    ) -> PaymentPage:
        services = services_of(state)
        return await to_thread.run_sync(
            lambda: services.payments.queries.list(
                caller,
                status=status,
                provider=provider,
                facility_id=facility_id,
                patient_id=patient_id,
                created_from=_instant(created_from, "created_from"),
                created_to=_instant(created_to, "created_to"),
                limit=limit,
                cursor=cursor,
            )
        )

    @get("/{payment_id:str}", summary="Get a payment", responses=errors(CALLER, 404))
    async def get_payment(
        self,
        payment_id: FromPath[str],
        caller: NamedDependency[Caller],
        state: State,
    ) -> PaymentView:
        services = services_of(state)
        found = await services.reads.submit(payment_id)
        return services.payments.queries.visible(caller, payment_id, found)

    @post(
        "/{payment_id:str}/verify",
        summary="Verify a manual payment (cash, cheque, bank transfer); finance roles",
        status_code=200, responses=errors(CALLER, BODY, KEYED, 403, 404),
    )
    async def verify(
        self,
        payment_id: FromPath[str],
        data: JSONBody[VerifyPayment],
        caller: NamedDependency[Caller],
        keyed: NamedDependency[Keyed | None],
        state: State,
    ) -> Response[PaymentView]:
        services = services_of(state)
        return respond(await to_thread.run_sync(
            services.payments.verify, caller, payment_id, data.approve, data.note, keyed))

    @post("/{payment_id:str}/cancel", summary="Cancel a payment; finance roles", status_code=200,
          responses=errors(CALLER, BODY, KEYED, 403, 404))
    async def cancel(
        self,
        payment_id: FromPath[str],
        caller: NamedDependency[Caller],
        keyed: NamedDependency[Keyed | None],
        state: State,
    ) -> Response[PaymentView]:
        services = services_of(state)
        return respond(await to_thread.run_sync(
            services.payments.cancel, caller, payment_id, keyed))

    @post("/{payment_id:str}/refunds", summary="Refund fully or partly; finance roles",
          description="201: refunded. 202: the provider has not answered yet; the refund is "
                      "retried and its status moves from pending.",
          responses={**errors(CALLER, BODY, KEYED, 403, 404, 502),
                     202: ResponseSpec(RefundView, description="Accepted: still pending")})
    async def refund(
        self,
        payment_id: FromPath[str],
        data: JSONBody[RefundPayment],
        caller: NamedDependency[Caller],
        keyed: NamedDependency[Keyed | None],
        state: State,
    ) -> Response[RefundView]:
        services = services_of(state)
        amount = Decimal(data.amount) if data.amount is not None else None
        return respond(await to_thread.run_sync(
            services.refunds.refund, caller, payment_id, amount, data.reason, keyed))


def _instant(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=field) from None
