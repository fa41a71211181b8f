"""Matching rules: reference first, then amount and date; each discrepancy type."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from service.reconciliation.rules import Candidate, Issue, Line, Matcher

DAY = date(2025, 3, 1)
PAY = Candidate(1, "NC-1", Decimal("100.00"), "SDG", DAY)


def line(n: int, amount: str = "100.00", currency: str = "SDG", days: int = 1,
         reference: str | None = "NC-1") -> Line:
    return Line(n, DAY + timedelta(days=days), Decimal(amount), currency, reference)


def test_reference_match_and_each_reference_discrepancy() -> None:
    assert Matcher().by_reference(line(1), PAY).matched
    assert Matcher().by_reference(line(1, amount="90.00"), PAY).issue == Issue.AMOUNT
    assert Matcher().by_reference(line(1, currency="USD"), PAY).issue == Issue.CURRENCY
    assert Matcher().by_reference(line(1, days=6), PAY).issue == Issue.TIMING
    matcher = Matcher()
    matcher.by_reference(line(1), PAY)
    assert matcher.by_reference(line(2), PAY).issue == Issue.DUPLICATE


def test_amount_and_date_fallback_prefers_the_closest_payment() -> None:
    near = Candidate(2, "NC-2", Decimal("100.00"), "SDG", DAY + timedelta(days=1))
    found = Matcher().by_amount(line(1, reference=None), [PAY, near])
    assert found.matched and found.payment_id == 2
    assert Matcher().by_amount(line(1, amount="5.00", reference=None), [PAY]).issue == \
        Issue.MISSING


def test_unrecorded_only_after_the_settlement_window() -> None:
    matcher = Matcher(window=timedelta(days=2))
    assert [f.issue for f in matcher.unrecorded([PAY], DAY + timedelta(days=2))] == \
        [Issue.UNRECORDED]
    assert matcher.unrecorded([PAY], DAY + timedelta(days=1)) == []
