"""Amounts as Decimal with two places: parsing, fees and formatting."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from service.domain import patterns

CENT = Decimal("0.01")
# DECIMAL(18,2) holds sixteen integer digits; one billion is far beyond any hospital bill.
MAX_AMOUNT = Decimal("1000000000.00")
CURRENCIES = frozenset({"SDG", "USD"})


# ASCII digits, optionally a point and one or two more: no sign, exponent, spaces, grouping
# or other scripts' digits (Decimal would take "1e3", " 5.00 " and Arabic-Indic digits).
AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")
# What parse_amount accepts, for the OpenAPI document.
AMOUNT_PATTERN = patterns.amount(CENT, MAX_AMOUNT)


def parse_amount(raw: object) -> Decimal:
    """A positive amount given as a string such as "150.00" (at most two decimals).

    Raises ValueError with a sentence a client can act on.
    """
    if not isinstance(raw, str):
        raise ValueError('must be a string such as "150.00" (amounts are never JSON numbers)')
    if not AMOUNT.fullmatch(raw):
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        raise ValueError(f"{shown!r} is not an amount: write ASCII digits with at most two "
                         'decimal places, such as "150.00"')
    value = Decimal(raw)
    if value <= 0:
        raise ValueError("must be greater than zero")
    if value > MAX_AMOUNT:
        raise ValueError(f"may not exceed {MAX_AMOUNT}")
    return value.quantize(CENT)


def fmt(value: Decimal) -> str:
    return str(value.quantize(CENT))


@dataclass(frozen=True)
class FeeSchedule:
    percent: Decimal
    fixed: Decimal = Decimal("0")
    minimum: Decimal = Decimal("0")
    maximum: Decimal | None = None

    def __post_init__(self) -> None:
        if self.percent < 0 or self.percent >= 100:
            raise ValueError(f"fee percent must be in [0, 100), got {self.percent}")
        if self.maximum is not None and self.maximum < self.minimum:
            raise ValueError("fee maximum is below the fee minimum")

    def fee(self, amount: Decimal) -> Decimal:
        """Percentage plus fixed part, clamped to [minimum, maximum] and never above amount."""
        raw = amount * self.percent / Decimal(100) + self.fixed
        fee = max(raw, self.minimum)
        if self.maximum is not None:
            fee = min(fee, self.maximum)
        return min(fee.quantize(CENT, rounding=ROUND_HALF_UP), amount)
