"""Refunds: full or partial, bounded by the database, retried by the worker when unanswered."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import cast

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from service.db.models import Payment, PaymentRefund
from service.domain.caller import Caller, require_finance
from service.domain.money import fmt
from service.domain.status import SETTLED
from service.domain.views import RefundStatus, RefundView
from service.errors import Conflict, ProviderFailure
from service.providers.contract import ProviderUnavailable
from service.services.idempotency import Attach, Keyed, Outcome
from service.services.payments import PaymentService

# A refund the provider did not answer is asked again by the payment worker after this.
FIRST_REFUND_RETRY = timedelta(seconds=30)


class RefundService:
    def __init__(self, payments: PaymentService) -> None:
        self.payments = payments
        self.ctx = payments.ctx

    def refund(self, caller: Caller, public_id: str, amount: Decimal | None,
               reason: str | None, keyed: Keyed | None = None) -> Outcome:
        require_finance(caller)
        payment = self.payments.queries.owned(caller, public_id)
        return self.payments.idempotency.run(
            keyed, lambda attach: self._refund(caller, payment, amount, reason, attach),
            self._answer)

    def _refund(self, caller: Caller, payment: Payment, amount: Decimal | None,
                reason: str | None, attach: Attach) -> Outcome:
        if payment.status not in SETTLED:
            raise Conflict(f"a {payment.status} payment cannot be refunded", field="payment_id")
        remaining = payment.amount - payment.refunded_amount
        wanted = remaining if amount is None else amount
        if wanted > remaining:  # what the payment allows now: a conflict with its state
            raise Conflict(
                f"at most {fmt(remaining)} {payment.currency} can still be refunded", field="amount"
            )
        adapter = self.ctx.providers.adapter(payment.provider_code)
        refund_id = f"re_{uuid.uuid4().hex}"
        now = self.ctx.clock.now()
        # Due for the worker only once this call has surely ended: if this process dies
        # mid-call, the worker still asks the provider (refund_id makes a retry safe).
        in_flight = timedelta(seconds=self.ctx.settings.provider_timeout_seconds)
        try:
            with self.ctx.sessions.begin() as session:
                refund = PaymentRefund(
                    public_id=refund_id,
                    payment_id=payment.id,
                    amount=wanted,
                    reason=reason,
                    status="pending" if adapter else "completed",
                    requested_by=caller.subject,
                    created_at=now,
                    completed_at=None if adapter else now,
                    attempts=0,
                    next_attempt_at=now + in_flight + FIRST_REFUND_RETRY if adapter else None,
                )
                session.add(refund)
                session.flush()
                attach(session, refund_id)
        except (IntegrityError, DBAPIError) as exc:
            if "exceed" in str(exc.orig):
                raise Conflict("refunds would exceed the payment amount", field="amount") from None
            raise
        if adapter is not None:
            reply, error = self.payments.calls.call_refund(
                payment.id,
                payment.provider_code,
                lambda: adapter.refund(payment.reference, refund_id, wanted, payment.currency),
            )
            if isinstance(error, ProviderUnavailable):
                # The refund stays pending; the payment worker asks again with backoff.
                self._refund_pending(refund_id)
                return Outcome(202, self._refund_view(refund_id))
            if reply is None:
                self._refund_status(refund_id, "failed", None)
                raise ProviderFailure(
                    f"{payment.provider_code} refused the refund: {error}", field="amount"
                )
            self._refund_status(
                refund_id, "completed" if reply.completed else "failed", reply.provider_reference
            )
        return Outcome(201, self._refund_view(refund_id))

    def _answer(self, refund_id: str) -> Outcome:
        """The answer to a retried keyed refund whose first request made this refund."""
        view = self._refund_view(refund_id)
        if view["status"] == "failed":
            raise ProviderFailure(f"the provider refused refund {refund_id}", field="amount",
                                  refund=view)
        return Outcome(202 if view["status"] == "pending" else 201, view)

    def _refund_status(self, refund_id: str, status: str, reference: str | None) -> None:
        with self.ctx.sessions.begin() as session:
            session.execute(
                update(PaymentRefund)
                .where(PaymentRefund.public_id == refund_id)
                .values(status=status, provider_reference=reference,
                        completed_at=self.ctx.clock.now(), attempts=PaymentRefund.attempts + 1,
                        next_attempt_at=None)
            )

    def _refund_pending(self, refund_id: str) -> None:
        with self.ctx.sessions.begin() as session:
            session.execute(
                update(PaymentRefund)
                .where(PaymentRefund.public_id == refund_id)
                .values(attempts=PaymentRefund.attempts + 1,
                        next_attempt_at=self.ctx.clock.now() + FIRST_REFUND_RETRY)
            )

    def _refund_view(self, refund_id: str) -> RefundView:
        with self.ctx.sessions() as session:
            refund = session.scalars(
                select(PaymentRefund).where(PaymentRefund.public_id == refund_id)
            ).one()
            payment = session.get(Payment, refund.payment_id)
            assert payment is not None
            return {
                "id": refund.public_id,
                "payment_id": payment.public_id,
                "amount": fmt(refund.amount),
                "currency": payment.currency,
                "status": cast(RefundStatus, refund.status),  # the table's CHECK
                "reason": refund.reason,
                "payment": self.payments.queries.view(payment),
            }

