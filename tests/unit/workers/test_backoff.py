"""The verification schedule: per-status steps, then daily."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.domain.status import PaymentStatus
from service.workers.backoff import Backoff


def test_processing_backs_off_to_daily() -> None:
    backoff = Backoff()
    delays = [backoff.delay(PaymentStatus.PROCESSING, n) for n in range(1, 7)]
    assert delays == [
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(hours=1),
        timedelta(days=1),
        timedelta(days=1),
    ]


def test_unknown_is_asked_sooner_than_processing() -> None:
    backoff = Backoff()
    assert backoff.delay(PaymentStatus.UNKNOWN, 1) < backoff.delay(PaymentStatus.PROCESSING, 1)


def test_scaled_keeps_the_shape() -> None:
    fast = Backoff().scaled(0.01)
    assert fast.delay(PaymentStatus.PROCESSING, 1) == timedelta(seconds=0.3)
    assert fast.delay(PaymentStatus.PROCESSING, 9) == timedelta(days=1) * 0.01


@pytest.mark.parametrize("factor", [0, -1])
def test_a_non_positive_scale_is_refused(factor: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Backoff().scaled(factor)


def test_unanswered_refunds_back_off_to_daily_and_scale_with_the_rest() -> None:
    backoff = Backoff()
    assert [backoff.refund_delay(n) for n in (1, 2, 4, 5, 30)] == [
        timedelta(seconds=30), timedelta(minutes=2), timedelta(hours=1), timedelta(days=1),
        timedelta(days=1)]
    assert backoff.scaled(0.01).refund_delay(1) == timedelta(seconds=0.3)
