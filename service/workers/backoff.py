"""When the payment worker asks a provider about an open payment next (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from service.domain.status import PaymentStatus

S = PaymentStatus
DAY = timedelta(days=1)


def _seconds(*values: float) -> tuple[timedelta, ...]:
    return tuple(timedelta(seconds=v) for v in values)


# A card or wallet charge usually settles in seconds to minutes; a bank can take a day. An
# `unknown` payment is asked sooner at first: the money may have moved and the patient waits.
DEFAULT_STEPS: Mapping[PaymentStatus, tuple[timedelta, ...]] = {
    S.PROCESSING: _seconds(30, 120, 600, 3600),
    S.UNKNOWN: _seconds(15, 60, 300, 1800, 3600),
    S.AWAITING_VERIFICATION: _seconds(120, 600, 3600),
}


# A refund the provider did not answer: the patient waits for the money, so ask again soon,
# then back off as for an unknown payment.
REFUND_STEPS: tuple[timedelta, ...] = _seconds(30, 120, 600, 3600)


@dataclass(frozen=True)
class Backoff:
    """Per-status delays after the n-th check; past the last step, `tail` (daily)."""

    steps: Mapping[PaymentStatus, tuple[timedelta, ...]] = field(
        default_factory=lambda: dict(DEFAULT_STEPS))
    tail: timedelta = DAY
    refund_steps: tuple[timedelta, ...] = REFUND_STEPS

    def __post_init__(self) -> None:
        for status, delays in self.steps.items():
            if any(d <= timedelta(0) for d in delays):
                raise ValueError(f"backoff delays for {status} must be positive")
        if any(d <= timedelta(0) for d in self.refund_steps):
            raise ValueError("refund backoff delays must be positive")
        if self.tail <= timedelta(0):
            raise ValueError("the backoff tail must be positive")

    def delay(self, status: PaymentStatus, attempts: int) -> timedelta:
        """The wait after `attempts` checks (1 = the first check just happened)."""
        return self._pick(self.steps.get(status, ()), attempts)

    def refund_delay(self, attempts: int) -> timedelta:
        """The wait after `attempts` unanswered refund calls."""
        return self._pick(self.refund_steps, attempts)

    def _pick(self, delays: tuple[timedelta, ...], attempts: int) -> timedelta:
        index = max(attempts, 1) - 1
        return delays[index] if index < len(delays) else self.tail

    def scaled(self, factor: float) -> Backoff:
        """The same shape, faster or slower (tests and drills run it at a fraction)."""
        if factor <= 0:
            raise ValueError(f"backoff scale must be positive, got {factor}")
        return Backoff({s: tuple(d * factor for d in ds) for s, ds in self.steps.items()},
                       self.tail * factor, tuple(d * factor for d in self.refund_steps))
