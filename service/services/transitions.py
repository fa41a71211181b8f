"""Status changes of a stored payment, decided by the state machine under the row's lock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db.models import Payment
from service.domain.status import OPEN, SUCCESSFUL, UNSUCCESSFUL, PaymentStatus, advance
from service.errors import NotFound
from service.providers.contract import ProviderReply
from service.services.context import Context

S = PaymentStatus
FIRST_CHECK = timedelta(seconds=30)


class Transitions:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def apply_reply(self, payment_id: int, reply: ProviderReply, actor: str,
                    fence: str | None = None) -> bool:
        """Apply a provider's answer through the state machine; False when it changes
        nothing or when `fence` (a worker's lease token) no longer holds the payment."""
        return self.move(payment_id, reply.status, actor, fence=fence,
                         **reply_facts(reply, self.ctx.clock.now()))

    def move(self, payment_id: int, new: PaymentStatus, actor: str, *,
             fence: str | None = None, attach: Callable[[Session], None] | None = None,
             **fields: Any) -> bool:
        """Move a payment forward through the state machine; False if the move is refused.

        The row is locked for the decision, so a webhook and the worker racing on one
        payment cannot both apply their view. With `fence`, the move happens only while the
        payment's lease token is still `fence` (checked in the UPDATE itself): a worker whose
        lease passed to another changes nothing. `attach` runs in the same transaction when
        the move happens (an idempotency key records what it changed).
        """
        where = [Payment.id == payment_id]
        if fence is not None:
            where.append(Payment.lease_token == fence)
        with self.ctx.sessions.begin() as session:
            payment = session.scalars(select(Payment).where(*where).with_for_update()).first()
            if payment is None:
                if fence is not None:
                    self.ctx.metrics.leases_lost.inc()
                    return False
                raise NotFound(f"no payment {payment_id}", field="payment_id")
            current = S(payment.status)
            target = advance(current, new)
            if target is None:
                if new == current and fields:
                    # Same status, new facts (provider reference, next check): keep them, or
                    # a charge the provider left pending would never be polled.
                    session.execute(update(Payment).where(*where).values(
                        updated_by=actor, updated_at=self.ctx.clock.now(), **fields))
                return False
            now = self.ctx.clock.now()
            values: dict[str, Any] = {
                "status": target.value,
                "updated_by": actor,
                "updated_at": now,
                **fields,
            }
            if target in SUCCESSFUL:
                # A timeout before the provider confirmed is not a reason the payment failed.
                values.setdefault("failure_reason", None)
            if target not in OPEN:
                values.setdefault("next_check_at", None)
                values["completed_at"] = now
            session.execute(update(Payment).where(*where).values(**values))
            if attach is not None:
                attach(session)
            created_at = payment.created_at
            provider = payment.provider_code
        if target in SUCCESSFUL | UNSUCCESSFUL or target == S.CANCELLED:
            self.ctx.metrics.payments_completed.labels(provider, target.value).inc()
            self.ctx.metrics.processing_duration.labels(provider).observe(
                max((now - created_at).total_seconds(), 0.0)
            )
        return True


def reply_facts(reply: ProviderReply, now: datetime) -> dict[str, Any]:
    """What a provider's reply tells us besides its status: its reference, why it declined,
    and, while the outcome is open, when to ask again."""
    facts: dict[str, Any] = {}
    if reply.provider_reference:
        facts["provider_reference"] = reply.provider_reference
    if reply.status in UNSUCCESSFUL and reply.decline_reason:
        facts["failure_reason"] = reply.decline_reason[:255]
    if reply.status in OPEN:
        facts["next_check_at"] = now + FIRST_CHECK
    return facts
