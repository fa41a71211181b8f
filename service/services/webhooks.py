"""Inbound provider webhooks: verify, deduplicate, then ask the provider what is true."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.clock import utcnow
from service.db.models import Payment, PaymentWebhook
from service.domain.catalog import BY_CODE
from service.errors import InvalidInput, NotFound, Unauthenticated
from service.providers import signing
from service.services.context import Context
from service.services.payments import PaymentService


class WebhookService:
    def __init__(self, ctx: Context, payments: PaymentService) -> None:
        self.ctx = ctx
        self.payments = payments

    def receive(self, provider: str, signature: str | None, raw: bytes) -> dict[str, Any]:
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
        event = _parse(raw)
        reference = event["data"]["reference"]
        try:
            with self.ctx.sessions.begin() as session:
                session.add(PaymentWebhook(
                    provider_code=provider, event_id=event["id"], event_type=event["type"],
                    payment_reference=reference, payload=raw.decode(), result="received",
                    received_at=utcnow()))
        except IntegrityError:
            metrics.labels(provider, "duplicate").inc()
            return {"received": True, "duplicate": True}
        with self.ctx.sessions() as session:
            payment = session.scalars(
                select(Payment).where(Payment.reference == reference,
                                      Payment.provider_code == provider)).first()
        if payment is None:
            metrics.labels(provider, "unmatched").inc()
            return {"received": True, "duplicate": False, "matched": False}
        self.refresh(payment)
        metrics.labels(provider, "accepted").inc()
        return {"received": True, "duplicate": False, "matched": True}

    def refresh(self, payment: Payment) -> None:
        """Ask the provider for the payment's status and apply it (forward moves only).

        The webhook body only says *which* payment changed; the provider's own answer to
        a signed request decides the status, so a replayed or forged-but-signed-with-a-
        leaked-secret body cannot settle a payment the provider never settled.
        """
        adapter = self.ctx.providers.adapter(payment.provider_code)
        if adapter is None:
            return
        reply, _error = self.payments.call(
            payment.id, payment.provider_code, "status",
            lambda: adapter.status(payment.reference, payment.amount, payment.currency))
        if reply is not None:
            self.payments.apply_reply(payment.id, reply, "webhook")


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        event = json.loads(raw)
    except ValueError:
        raise InvalidInput("webhook body is not valid JSON", field="body") from None
    if not isinstance(event, dict):
        raise InvalidInput("webhook body must be a JSON object", field="body")
    for name in ("id", "type"):
        if not isinstance(event.get(name), str) or not event[name]:
            raise InvalidInput(f"webhook event needs a string {name!r}", field=name)
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("reference"), str):
        raise InvalidInput("webhook event needs data.reference", field="data.reference")
    if len(event["id"]) > 64:
        raise InvalidInput("event id is longer than 64 characters", field="id")
    return event
