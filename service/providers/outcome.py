"""What a provider call came to, and which outcomes count against the provider's health."""

from __future__ import annotations

from enum import StrEnum

from service.domain.status import OPEN, UNSUCCESSFUL
from service.providers.contract import (
    ProviderError,
    ProviderIntegrityError,
    ProviderRefused,
    ProviderReply,
    ProviderTimeout,
    ProviderUnavailable,
)


class CallOutcome(StrEnum):
    SUCCESS = "success"
    PENDING = "pending"
    DECLINED = "declined"  # the provider said no to the payment (or never saw it: 404)
    REFUSED = "refused"  # the provider refused the request itself (4xx: credentials, input)
    ERROR = "error"  # transport error, 5xx, a reply that is not the contract's JSON
    TIMEOUT = "timeout"
    INTEGRITY_ERROR = "integrity_error"  # a reply about another amount or currency


# Provider health counts what the provider failed to do. A decline or a refusal is a working
# provider answering; it belongs to the payment failure rate, not to provider health.
ANSWERED = frozenset(
    {CallOutcome.SUCCESS, CallOutcome.PENDING, CallOutcome.DECLINED, CallOutcome.REFUSED})
UNANSWERED = frozenset(CallOutcome) - ANSWERED
OPERATIONS = ("initiate", "status", "refund")


def classify(reply: ProviderReply | None, error: ProviderError | None) -> CallOutcome:
    if isinstance(error, ProviderTimeout):
        return CallOutcome.TIMEOUT
    if isinstance(error, ProviderUnavailable):
        return CallOutcome.ERROR
    if isinstance(error, ProviderIntegrityError):
        return CallOutcome.INTEGRITY_ERROR
    if isinstance(error, ProviderRefused):
        return CallOutcome.REFUSED
    if error is not None:
        return CallOutcome.ERROR
    assert reply is not None
    if reply.status in UNSUCCESSFUL:
        return CallOutcome.DECLINED
    return CallOutcome.PENDING if reply.status in OPEN else CallOutcome.SUCCESS
