"""Inbound provider webhooks: verify, vet, deduplicate, then ask the provider."""

# A body that passes the signature check but is not an event we can act on (not JSON, not UTF-8,
# fields of the wrong type or length, a reference we never issued) is answered with a 4xx problem,
# recorded as rejected, and changes nothing.

from __future__ import annotations

import hashlib
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.db.models import Payment, PaymentWebhook
from service.domain.catalog import BY_CODE
from service.domain.views import WebhookReceipt
from service.errors import InvalidInput, NileCareError, NotFound, Unauthenticated
from service.providers import signing
from service.services.context import Context
from service.services.payload import check_media_type, parse_object
from service.services.payments import PaymentService

# Column widths of payment_webhooks and payments.reference.
MAX_EVENT_ID = 64
MAX_EVENT_TYPE = 64
MAX_REFERENCE = 40
# Kept of a body (characters): a TEXT column holds 64 KiB of UTF-8.
MAX_STORED_PAYLOAD = 16_000


class WebhookService:
    def __init__(self, ctx: Context, payments: PaymentService) -> None:
        self.ctx = ctx
        self.payments = payments

    def receive(self, provider: str, signature: str | None, content_type: str | None,
                raw: bytes) -> WebhookReceipt:
        metrics = self.ctx.metrics.webhooks
        spec = BY_CODE.get(provider)
        if not self.ctx.settings.feature_webhooks:
            raise NotFound("webhooks are switched off (FEATURE_WEBHOOKS=false)", field="provider")
        if spec is None or not spec.electronic:
            metrics.labels("unknown", "rejected").inc()
            raise NotFound(f"no webhooks are accepted for provider {provider!r}", field="provider")
        try:
            signing.verify(self.ctx.settings.webhook_secret.get_secret_value(), signature, raw,
                           time.time(), self.ctx.settings.webhook_tolerance_seconds)
        except signing.SignatureError as exc:
            metrics.labels(provider, "rejected").inc()
            raise Unauthenticated(str(exc), field=signing.HEADER) from None
        try:
            check_media_type(content_type)
            event = _event(parse_object(raw))
            payment = self._payment(provider, event["data"]["reference"])
        except NileCareError as exc:
            metrics.labels(provider, "rejected").inc()
            self._record_rejected(provider, raw, exc)
            raise
        try:
            with self.ctx.sessions.begin() as session:
                session.add(PaymentWebhook(
                    provider_code=provider, event_id=event["id"], event_type=event["type"],
                    payment_reference=payment.reference, payload=_stored(raw),
                    result="received", received_at=self.ctx.clock.now()))
        except IntegrityError:
            metrics.labels(provider, "duplicate").inc()
            return {"received": True, "duplicate": True}
        self.refresh(payment)
        metrics.labels(provider, "accepted").inc()
        return {"received": True, "duplicate": False, "matched": True}

    def _payment(self, provider: str, reference: str) -> Payment:
        with self.ctx.sessions() as session:
            payment = session.scalars(
                select(Payment).where(Payment.reference == reference,
                                      Payment.provider_code == provider)).first()
        if payment is None:
            raise InvalidInput(f"no {provider} payment has reference {reference!r}",
                               field="data.reference")
        return payment

    def _record_rejected(self, provider: str, raw: bytes, error: NileCareError) -> None:
        """Keep the evidence once per distinct body; a resent body adds nothing."""
        digest = hashlib.sha256(raw).hexdigest()[:48]
        try:
            with self.ctx.sessions.begin() as session:
                session.add(PaymentWebhook(
                    provider_code=provider, event_id=f"rejected:{digest}",
                    event_type=f"invalid:{error.field or 'body'}"[:MAX_EVENT_TYPE],
                    payment_reference=None, payload=_stored(raw),
                    result=f"rejected:{error.status}", received_at=self.ctx.clock.now()))
        except IntegrityError:
            pass

    def refresh(self, payment: Payment) -> None:
        """Ask the provider for the payment's status and apply it (forward moves only).

        The webhook body only says *which* payment changed; the provider's own answer to
        a signed request decides the status, so a replayed or forged-but-signed-with-a-
        leaked-secret body cannot settle a payment the provider never settled.
        """
        adapter = self.ctx.providers.adapter(payment.provider_code)
        if adapter is None:
            return
        reply, _error = self.payments.calls.call(
            payment.id, payment.provider_code, "status",
            lambda: adapter.status(payment.reference, payment.amount, payment.currency))
        if reply is not None:
            self.payments.transitions.apply_reply(payment.id, reply, "webhook")


def _event(event: dict[str, Any]) -> dict[str, Any]:
    """The fields we act on, each a string of a length our tables hold."""
    for name, longest in (("id", MAX_EVENT_ID), ("type", MAX_EVENT_TYPE)):
        value = event.get(name)
        if not isinstance(value, str) or not 1 <= len(value) <= longest:
            raise InvalidInput(f"the event needs {name!r}: a string of 1 to {longest} "
                               "characters", field=name)
    data = event.get("data")
    if not isinstance(data, dict):
        raise InvalidInput("the event needs 'data': an object", field="data")
    reference = data.get("reference")
    if not isinstance(reference, str) or not 1 <= len(reference) <= MAX_REFERENCE:
        raise InvalidInput(f"the event needs data.reference: a string of 1 to {MAX_REFERENCE} "
                           "characters", field="data.reference")
    return event


def _stored(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")[:MAX_STORED_PAYLOAD]
