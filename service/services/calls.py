"""Calls to a payment's provider, each recorded in payment_attempts and the metrics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from service.db.models import PaymentAttempt
from service.providers.contract import ProviderError, ProviderReply, RefundReply
from service.providers.outcome import CallOutcome, classify
from service.services.context import Context

T = TypeVar("T")


class ProviderCalls:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

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
                    created_at=self.ctx.clock.now(),
                )
            )


def _timed(fn: Callable[[], T]) -> tuple[T | None, ProviderError | None, float]:
    """Call `fn`, keeping a provider error as a value: every outcome gets recorded."""
    started = time.perf_counter()
    try:
        return fn(), None, time.perf_counter() - started
    except ProviderError as exc:
        return None, exc, time.perf_counter() - started
