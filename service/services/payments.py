"""Payment operations: who may take a payment, and the finance actions verify and cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from service.domain.caller import CREATE_ROLES, Caller, require_finance
from service.domain.catalog import BY_CODE, ProviderSpec, Verification, normalise_phone
from service.domain.status import PaymentStatus
from service.errors import Conflict, Forbidden, InvalidInput
from service.services.calls import ProviderCalls
from service.services.context import Context
from service.services.idempotency import Attach, Idempotency, Keyed, Outcome
from service.services.queries import PaymentQueries
from service.services.transitions import Transitions

S = PaymentStatus
# An invoice with one of these payments may not be charged again: it is paid, or its
# outcome is still open and a second charge could take the money twice.
BLOCKS_NEW_CHARGE = frozenset(
    {
        S.PENDING,
        S.PROCESSING,
        S.UNKNOWN,
        S.AWAITING_VERIFICATION,
        S.VERIFIED,
        S.CONFIRMED,
        S.PARTIALLY_REFUNDED,
    }
)


@dataclass(frozen=True)
class NewPayment:
    provider: str
    amount: Decimal
    currency: str
    facility_id: str
    patient_id: str
    invoice_id: str | None = None
    payer_phone: str | None = None
    description: str | None = None


class PaymentService:
    """The payment operations of the API, and the parts they share: the read side, the
    status changes and the recorded provider calls (creation, refunds and webhooks use
    them too)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.idempotency = Idempotency(ctx.sessions, ctx.metrics.idempotency,
                                       timedelta(hours=settings.idempotency_ttl_hours),
                                       timedelta(seconds=settings.idempotency_lock_seconds),
                                       ctx.clock)
        self.queries = PaymentQueries(ctx)
        self.transitions = Transitions(ctx)
        self.calls = ProviderCalls(ctx)

    # --- create (service/services/creation.py writes it) ---------------------------------
    def check(self, caller: Caller, new: NewPayment) -> ProviderSpec:
        """Whether `caller` may take this payment, and its provider's spec."""
        if not caller.has_any(CREATE_ROLES):
            raise Forbidden("your role may not take payments", field="roles")
        if not caller.may_see(new.facility_id):
            raise Forbidden("you may only take payments for your own facility", field="facility_id")
        spec = BY_CODE.get(new.provider)
        if spec is None:
            raise InvalidInput(
                f"unknown provider {new.provider!r}; see GET /api/v1/payment-providers",
                field="provider",
            )
        if not self.ctx.providers.available(spec):
            raise InvalidInput(
                f"provider {spec.code} is not configured on this deployment", field="provider"
            )
        if new.currency not in spec.currencies:
            raise InvalidInput(
                f"{spec.code} accepts {', '.join(spec.currencies)}, not {new.currency}",
                field="currency",
            )
        if not spec.min_amount <= new.amount <= spec.max_amount:
            raise InvalidInput(
                f"{spec.code} accepts amounts from {spec.min_amount} to {spec.max_amount}",
                field="amount",
            )
        if spec.needs_phone:
            if not new.payer_phone:
                raise InvalidInput(
                    f"{spec.code} needs the payer's phone number", field="payer_phone"
                )
            normalise_phone(new.payer_phone)
        return spec

    # --- finance actions ------------------------------------------------------------------
    def verify(self, caller: Caller, public_id: str, approve: bool, note: str | None,
               keyed: Keyed | None = None) -> Outcome:
        require_finance(caller)
        payment = self.queries.owned(caller, public_id)
        spec = BY_CODE[payment.provider_code]

        def verify(attach: Attach) -> Outcome:
            if spec.verification == Verification.AUTOMATIC:
                raise Conflict(f"{spec.code} payments are verified by the provider, not by "
                               "hand", field="payment_id")
            if payment.status != S.AWAITING_VERIFICATION:
                raise Conflict(f"payment is {payment.status}, not awaiting_verification",
                               field="payment_id")
            target = S.VERIFIED if approve else S.REJECTED
            fields = {} if approve else {"failure_reason": (note or "rejected by finance")[:255]}
            if not self.transitions.move(payment.id, target, caller.subject,
                                         attach=lambda session: attach(session, public_id),
                                         **fields):
                raise Conflict("payment changed while verifying; reload and retry",
                               field="payment_id")
            return Outcome(200, self.queries.view_by_id(payment.id))

        return self.idempotency.run(
            keyed, verify, lambda resource: Outcome(200, self.queries.view_of(resource)))

    def cancel(self, caller: Caller, public_id: str, keyed: Keyed | None = None) -> Outcome:
        require_finance(caller)
        payment = self.queries.owned(caller, public_id)

        def cancel(attach: Attach) -> Outcome:
            if payment.status not in (S.PENDING, S.AWAITING_VERIFICATION):
                raise Conflict(f"a {payment.status} payment cannot be cancelled",
                               field="payment_id")
            if not self.transitions.move(payment.id, S.CANCELLED, caller.subject,
                                         attach=lambda session: attach(session, public_id)):
                raise Conflict("payment changed while cancelling; reload and retry",
                               field="payment_id")
            return Outcome(200, self.queries.view_by_id(payment.id))

        return self.idempotency.run(
            keyed, cancel, lambda resource: Outcome(200, self.queries.view_of(resource)))
