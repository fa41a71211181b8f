"""The payment state machine: which status may follow which."""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    AWAITING_VERIFICATION = "awaiting_verification"
    UNKNOWN = "unknown"
    VERIFIED = "verified"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


S = PaymentStatus

# A status may only move forward. Anything not listed here is refused, which is what keeps
# a late or replayed webhook from dragging a confirmed payment back to processing.
TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    S.PENDING: frozenset(
        {
            S.PROCESSING,
            S.AWAITING_VERIFICATION,
            S.UNKNOWN,
            S.CONFIRMED,
            S.FAILED,
            S.REJECTED,
            S.CANCELLED,
        }
    ),
    S.PROCESSING: frozenset(
        {S.AWAITING_VERIFICATION, S.UNKNOWN, S.CONFIRMED, S.FAILED, S.REJECTED, S.CANCELLED}
    ),
    # `unknown` is left only by asking the provider; it never returns to pending.
    S.UNKNOWN: frozenset(
        {S.PROCESSING, S.AWAITING_VERIFICATION, S.CONFIRMED, S.FAILED, S.REJECTED}
    ),
    S.AWAITING_VERIFICATION: frozenset(
        {S.VERIFIED, S.CONFIRMED, S.REJECTED, S.FAILED, S.CANCELLED}
    ),
    S.VERIFIED: frozenset({S.CONFIRMED, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.CONFIRMED: frozenset({S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.REJECTED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}

# Money has moved to us: these can be refunded and count as revenue.
SETTLED = frozenset({S.VERIFIED, S.CONFIRMED, S.PARTIALLY_REFUNDED})
SUCCESSFUL = frozenset({S.VERIFIED, S.CONFIRMED, S.PARTIALLY_REFUNDED, S.REFUNDED})
UNSUCCESSFUL = frozenset({S.FAILED, S.REJECTED})
TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt) | {S.CONFIRMED, S.VERIFIED}
# The outcome is still open at the provider: the worker asks about these.
OPEN = frozenset({S.PENDING, S.PROCESSING, S.UNKNOWN, S.AWAITING_VERIFICATION})


def can_move(current: PaymentStatus, new: PaymentStatus) -> bool:
    return new in TRANSITIONS[current]


def advance(current: PaymentStatus, reported: PaymentStatus) -> PaymentStatus | None:
    """The status to store when a provider reports `reported`, or None to keep `current`.

    Reports that would move backwards are ignored rather than refused: they are normal for
    retried or out-of-order webhooks. Only pending and processing may become `unknown`.
    """
    if reported == current or not can_move(current, reported):
        return None
    return reported
