"""The one adapter contract every provider family implements."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from service.domain.status import PaymentStatus


class ProviderError(Exception):
    """A provider call did not give a usable answer."""


class ProviderUnavailable(ProviderError):
    """Timeout or transport failure: the outcome at the provider is not known."""


class ProviderTimeout(ProviderUnavailable):
    """The provider did not answer within PROVIDER_TIMEOUT_SECONDS."""


class ProviderIntegrityError(ProviderError):
    """The provider answered about a different amount or currency than we asked for."""


class ProviderRefused(ProviderError):
    """The provider refused the request itself (bad credentials, bad request)."""


@dataclass(frozen=True)
class ChargeRequest:
    reference: str
    amount: Decimal
    currency: str
    payer_phone: str | None
    description: str | None
    callback_url: str


@dataclass(frozen=True)
class ProviderReply:
    """What the provider says about a payment or refund, mapped to our vocabulary."""

    status: PaymentStatus
    provider_reference: str | None
    amount: Decimal
    currency: str
    http_status: int
    decline_reason: str | None = None


@dataclass(frozen=True)
class RefundReply:
    completed: bool
    provider_reference: str | None
    http_status: int
    reason: str | None = None


class Adapter(Protocol):
    code: str

    def initiate(self, request: ChargeRequest) -> ProviderReply: ...

    def status(self, reference: str, amount: Decimal, currency: str) -> ProviderReply: ...

    def refund(
        self, reference: str, refund_reference: str, amount: Decimal, currency: str
    ) -> RefundReply: ...


def check_integrity(reply: ProviderReply, amount: Decimal, currency: str) -> ProviderReply:
    """Reject a reply about another amount or currency: never book what we did not ask."""
    if reply.amount != amount or reply.currency != currency:
        raise ProviderIntegrityError(
            f"provider replied {reply.amount} {reply.currency} for a request of {amount} {currency}"
        )
    return reply
