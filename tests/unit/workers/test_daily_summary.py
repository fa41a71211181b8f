"""The daily summary's day and its rendering, without I/O."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from service.workers.daily_summary import DailySummary, Money, day_bounds, render

KHARTOUM = ZoneInfo("Africa/Khartoum")


def test_a_khartoum_day_starts_at_22_utc_the_evening_before() -> None:
    assert day_bounds(date(2025, 1, 31), KHARTOUM) == (datetime(2025, 1, 30, 22),
                                                       datetime(2025, 1, 31, 22))


def test_an_empty_day_says_so_and_html_escapes_what_it_shows() -> None:
    quiet = DailySummary(date(2025, 1, 31), "Africa/Khartoum", [], [
        Money("x", "<Bank & Co>", "SDG", 1, Decimal("1234567.5"), Decimal("0.5"))],
        [], 0, 0, {}, [], {"missing": 0})
    text, html = render(quiet)
    assert "No payments were created." in text and "Success rate n/a" in text
    assert "1,234,567.50" in text and "1,234,567.00" in text  # gross and net
    assert "No refunds were completed." in html
    assert "&lt;Bank &amp; Co&gt;" in html and "<Bank & Co>" in text
