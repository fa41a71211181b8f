"""The payment API: create, read, list, verify, cancel, refund."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from anyio import to_thread
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, Parameter

from service.api.deps import Services, provide_caller, provide_keyed
from service.api.guards import database_answers
from service.api.schemas import CreatePayment, RefundPayment, VerifyPayment
from service.domain.caller import Caller
from service.domain.status import PaymentStatus
from service.errors import InvalidInput
from service.services.idempotency import Keyed, Outcome
from service.services.payments import NewPayment

STATUS_VALUES = [s.value for s in PaymentStatus]


def _response(outcome: Outcome) -> Response[dict[str, Any]]:
    return Response(outcome.body, status_code=outcome.status)


class PaymentController(Controller):
    path = "/api/v1/payments"
    tags = ["payments"]
    dependencies = {"caller": Provide(provide_caller, sync_to_thread=False),
                    "keyed": Provide(provide_keyed, sync_to_thread=False)}
    guards = [database_answers]

    @post("/", summary="Create a payment")
    async def create(
        self,
        data: JSONBody[CreatePayment],
        caller: NamedDependency[Caller],
        keyed: NamedDependency[Keyed | None],
        services: NamedDependency[Services],
    ) -> Response[dict[str, Any]]:
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
        return _response(await to_thread.run_sync(services.creation.create, caller, new, keyed))

    @get("/", summary="List payments (newest first)")
    async def list_payments(
        self,
        caller: NamedDependency[Caller],
        services: NamedDependency[Services],
        status: Annotated[str | None, Parameter(required=False)] = None,
        provider: Annotated[str | None, Parameter(required=False, max_length=32)] = None,
        facility_id: Annotated[str | None, Parameter(required=False, max_length=64)] = None,
        patient_id: Annotated[str | None, Parameter(required=False, max_length=64)] = None,
        created_from: Annotated[datetime | None, Parameter(required=False)] = None,
        created_to: Annotated[datetime | None, Parameter(required=False)] = None,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 50,
        cursor: Annotated[int | None, Parameter(required=False, ge=1)] = None,
    ) -> dict[str, Any]:
        if status is not None and status not in STATUS_VALUES:
            raise InvalidInput(
                f"unknown status {status!r}; one of {', '.join(STATUS_VALUES)}", field="status"
            )
        return await to_thread.run_sync(
            lambda: services.payments.queries.list(
                caller,
                status=status,
                provider=provider,
                facility_id=facility_id,
                patient_id=patient_id,
                created_from=_naive(created_from),
                created_to=_naive(created_to),
                limit=limit,
                cursor=cursor,
            )
        )

    @get("/{payment_id:str}", summary="Get a payment")
    async def get_payment(
        self,
        payment_id: FromPath[str],
        caller: NamedDependency[Caller],
        services: NamedDependency[Services],
    ) -> dict[str, Any]:
        return await to_thread.run_sync(services.payments.queries.get, caller, payment_id)

    @post(
        "/{payment_id:str}/verify",
        summary="Verify a manual payment (cash, cheque, bank transfer); finance roles",
    )
    async def verify(
        self,
        payment_id: FromPath[str],
        data: JSONBody[VerifyPayment],
        caller: NamedDependency[Caller],
        keyed: NamedDependency[Keyed | None],
        services: NamedDependency[Services],
    ) -> Response[dict[str, Any]]:
        return _response(await to_thread.run_sync(
            services.payments.verify, caller, payment_id, data.approve, data.note, keyed))

    @post("/{payment_id:str}/cancel", summary="Cancel a payment; finance roles")
    async def cancel(
        self,
        payment_id: FromPath[str],
        caller: NamedDependency[Caller],
        keyed: NamedDependency[Keyed | None],
        services: NamedDependency[Services],
    ) -> Response[dict[str, Any]]:
        return _response(await to_thread.run_sync(
            services.payments.cancel, caller, payment_id, keyed))

    @post("/{payment_id:str}/refunds", summary="Refund fully or partly; finance roles")
    async def refund(
        self,
        payment_id: FromPath[str],
        data: JSONBody[RefundPayment],
        caller: NamedDependency[Caller],
        keyed: NamedDependency[Keyed | None],
        services: NamedDependency[Services],
    ) -> Response[dict[str, Any]]:
        amount = Decimal(data.amount) if data.amount is not None else None
        return _response(await to_thread.run_sync(
            services.refunds.refund, caller, payment_id, amount, data.reason, keyed))


def _naive(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)
