"""Payment operations: create, read, list, verify, cancel, refund, and status changes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, TypeVar, cast

from sqlalchemy import Row, Table, bindparam, select, update
from sqlalchemy.orm import Session

from service.clock import iso, utcnow
from service.db.models import Payment, PaymentAttempt
from service.domain.caller import CREATE_ROLES, Caller, require_finance
from service.domain.catalog import BY_CODE, ProviderSpec, Verification, normalise_phone
from service.domain.money import fmt
from service.domain.status import OPEN, SUCCESSFUL, UNSUCCESSFUL, PaymentStatus, advance
from service.errors import Conflict, Forbidden, InvalidInput, NotFound
from service.providers.contract import (
    ProviderError,
    ProviderReply,
    RefundReply,
)
from service.providers.outcome import CallOutcome, classify
from service.sealing import mask_phone
from service.services.context import Context
from service.services.idempotency import Attach, Idempotency, Keyed, Outcome

S = PaymentStatus
PAYMENTS = cast(Table, Payment.__table__)
# What a view shows, and the id and facility it is looked up and guarded by: a read selects
# these and builds the view from the row (the driver parses every selected column's
# description, and an ORM object costs more than the row it is made from).
SHOWN = [PAYMENTS.c[name] for name in (
    "id", "public_id", "reference", "provider_code", "status", "amount", "currency",
    "total_fees", "net_amount", "refunded_amount", "facility_id", "patient_id", "invoice_id",
    "payer_account", "description", "provider_reference", "failure_reason", "created_at",
    "updated_at", "completed_at")]
# Built once: its cache key is computed once, and a read only binds the id.
SHOWN_BY_PUBLIC_ID = select(*SHOWN).where(PAYMENTS.c.public_id == bindparam("public_id"))
T = TypeVar("T")
FIRST_CHECK = timedelta(seconds=30)
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
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.idempotency = Idempotency(ctx.sessions, ctx.metrics.idempotency,
                                       timedelta(hours=settings.idempotency_ttl_hours),
                                       timedelta(seconds=settings.idempotency_lock_seconds))

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

    # --- provider calls and status changes --------------------------------------------------
    def call(
        self, payment_id: int, provider: str, operation: str, fn: Callable[[], ProviderReply]
    ) -> tuple[ProviderReply | None, ProviderError | None]:
        """Run one provider call, recording it in payment_attempts and the metrics."""
        reply, error, elapsed = _timed(fn)
        self._record(payment_id, provider, operation, classify(reply, error),
                     reply.status.value if reply else None,
                     reply.http_status if reply else None, elapsed, error)
        return reply, error

    def call_refund(
        self, payment_id: int, provider: str, fn: Callable[[], RefundReply]
    ) -> tuple[RefundReply | None, ProviderError | None]:
        """Run one refund call, recorded like every provider call (operation "refund")."""
        reply, error, elapsed = _timed(fn)
        if reply is not None:
            outcome = CallOutcome.SUCCESS if reply.completed else CallOutcome.DECLINED
            status = "succeeded" if reply.completed else "declined"
        else:
            outcome, status = classify(None, error), None
        self._record(payment_id, provider, "refund", outcome, status,
                     reply.http_status if reply else None, elapsed, error)
        return reply, error

    def _record(self, payment_id: int, provider: str, operation: str, outcome: CallOutcome,
                provider_status: str | None, http_status: int | None, elapsed: float,
                error: ProviderError | None) -> None:
        self.ctx.metrics.provider_requests.labels(provider, operation, outcome.value).inc()
        self.ctx.metrics.provider_duration.labels(provider, operation).observe(elapsed)
        with self.ctx.sessions.begin() as session:
            session.add(
                PaymentAttempt(
                    payment_id=payment_id,
                    provider_code=provider,
                    operation=operation,
                    request_id=str(uuid.uuid4()),
                    outcome=outcome.value,
                    provider_status=provider_status,
                    http_status=http_status,
                    latency_ms=int(elapsed * 1000),
                    error=str(error)[:255] if error else None,
                    created_at=utcnow(),
                )
            )

    def apply_reply(self, payment_id: int, reply: ProviderReply, actor: str,
                    fence: str | None = None) -> bool:
        """Apply a provider's answer through the state machine; False when it changes
        nothing or when `fence` (a worker's lease token) no longer holds the payment."""
        return self.move(payment_id, reply.status, actor, fence=fence,
                         **reply_facts(reply, utcnow()))

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
                        updated_by=actor, updated_at=utcnow(), **fields))
                return False
            now = utcnow()
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

    # --- reads -------------------------------------------------------------------------------
    def get(self, caller: Caller, public_id: str) -> dict[str, Any]:
        """Another facility's payment is reported as absent (see `owned`)."""
        row = self._shown(public_id)
        if row is None or not caller.may_see(row.facility_id):
            raise NotFound(f"no payment {public_id!r}", field="payment_id")
        return self.view(row)

    def list(
        self,
        caller: Caller,
        *,
        status: str | None,
        provider: str | None,
        facility_id: str | None,
        patient_id: str | None,
        created_from: datetime | None,
        created_to: datetime | None,
        limit: int,
        cursor: int | None,
    ) -> dict[str, Any]:
        query = select(*SHOWN)
        if caller.is_admin:
            if facility_id:
                query = query.where(Payment.facility_id == facility_id)
        else:
            if facility_id and facility_id != caller.facility_id:
                raise Forbidden(
                    "you may only list payments of your own facility", field="facility_id"
                )
            query = query.where(Payment.facility_id == caller.facility_id)
        if status:
            query = query.where(Payment.status == status)
        if provider:
            query = query.where(Payment.provider_code == provider)
        if patient_id:
            query = query.where(Payment.patient_id == patient_id)
        if created_from:
            query = query.where(Payment.created_at >= created_from)
        if created_to:
            query = query.where(Payment.created_at < created_to)
        if cursor is not None:
            query = query.where(Payment.id < cursor)
        query = query.order_by(Payment.id.desc()).limit(limit + 1)
        with self.ctx.reader.connect() as conn:
            rows = list(conn.execute(query))
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "items": [self.view(p) for p in rows],
            "next_cursor": str(rows[-1].id) if more and rows else None,
        }

    # --- finance actions ------------------------------------------------------------------
    def verify(self, caller: Caller, public_id: str, approve: bool, note: str | None,
               keyed: Keyed | None = None) -> Outcome:
        require_finance(caller)
        payment = self.owned(caller, public_id)
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
            if not self.move(payment.id, target, caller.subject,
                             attach=lambda session: attach(session, public_id), **fields):
                raise Conflict("payment changed while verifying; reload and retry",
                               field="payment_id")
            return Outcome(200, self._view_by_id(payment.id))

        return self.idempotency.run(keyed, verify,
                                    lambda resource: Outcome(200, self.view_of(resource)))

    def cancel(self, caller: Caller, public_id: str, keyed: Keyed | None = None) -> Outcome:
        require_finance(caller)
        payment = self.owned(caller, public_id)

        def cancel(attach: Attach) -> Outcome:
            if payment.status not in (S.PENDING, S.AWAITING_VERIFICATION):
                raise Conflict(f"a {payment.status} payment cannot be cancelled",
                               field="payment_id")
            if not self.move(payment.id, S.CANCELLED, caller.subject,
                             attach=lambda session: attach(session, public_id)):
                raise Conflict("payment changed while cancelling; reload and retry",
                               field="payment_id")
            return Outcome(200, self._view_by_id(payment.id))

        return self.idempotency.run(keyed, cancel,
                                    lambda resource: Outcome(200, self.view_of(resource)))

    def owned(self, caller: Caller, public_id: str) -> Payment:
        """The caller's payment. Another facility's is reported as absent, not forbidden:
        its existence is none of the caller's business."""
        payment = self._find(public_id)
        if payment is None or not caller.may_see(payment.facility_id):
            raise NotFound(f"no payment {public_id!r}", field="payment_id")
        return payment

    def view_of(self, public_id: str) -> dict[str, Any]:
        row = self._shown(public_id)
        assert row is not None
        return self.view(row)

    def _shown(self, public_id: str) -> Row[Any] | None:
        """What a view shows, in one statement on an autocommit connection."""
        with self.ctx.reader.connect() as conn:
            return conn.execute(SHOWN_BY_PUBLIC_ID, {"public_id": public_id}).first()

    def _find(self, public_id: str) -> Payment | None:
        """One statement on an autocommit connection."""
        with self.ctx.reader.connect() as conn:
            row = conn.execute(select(PAYMENTS).where(PAYMENTS.c.public_id == public_id)).first()
        return None if row is None else Payment(**row._mapping)

    def _view_by_id(self, payment_id: int) -> dict[str, Any]:
        with self.ctx.sessions() as session:
            payment = session.get(Payment, payment_id)
            assert payment is not None
            return self.view(payment)

    def view(self, p: Payment | Row[Any] | SimpleNamespace) -> dict[str, Any]:
        """The API's view of a payment: an ORM object, a row of SHOWN, or the values a create
        wrote."""
        phone = self.ctx.sealer.open(p.payer_account) if p.payer_account else None
        return {
            "id": p.public_id,
            "reference": p.reference,
            "provider": p.provider_code,
            "status": p.status,
            "amount": fmt(p.amount),
            "currency": p.currency,
            "fees": fmt(p.total_fees),
            "net_amount": fmt(p.net_amount),
            "refunded_amount": fmt(p.refunded_amount),
            "facility_id": p.facility_id,
            "patient_id": p.patient_id,
            "invoice_id": p.invoice_id,
            "payer_phone": mask_phone(phone) if phone else None,
            "description": p.description,
            "provider_reference": p.provider_reference,
            "failure_reason": p.failure_reason,
            "created_at": iso(p.created_at),
            "updated_at": iso(p.updated_at),
            "completed_at": iso(p.completed_at) if p.completed_at else None,
        }


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


def _timed(fn: Callable[[], T]) -> tuple[T | None, ProviderError | None, float]:
    """Call `fn`, keeping a provider error as a value: every outcome gets recorded."""
    started = time.perf_counter()
    try:
        return fn(), None, time.perf_counter() - started
    except ProviderError as exc:
        return None, exc, time.perf_counter() - started
