"""The OpenAPI document's patterns against the parsers they describe: a string matches the
pattern exactly when the parser accepts it (and, for amounts, finds it within the limits)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from service.domain import catalog, patterns
from service.domain.money import AMOUNT_PATTERN, MAX_AMOUNT, parse_amount

# Strings near the rules: digits, points, the separators, signs, other scripts' digits.
NEAR_AMOUNTS = st.text(alphabet="0123456789.0 -+e٣", max_size=14)
NEAR_PHONES = st.text(alphabet="0123456789+ -\t٩x", max_size=20)


@settings(max_examples=600)
@given(low=st.integers(0, 10**7), span=st.integers(0, 10**7), probe=st.integers(0, 3 * 10**7))
@example(low=0, span=0, probe=0)
@example(low=9, span=1, probe=10)
@example(low=10, span=989, probe=999)
def test_an_integer_range_matches_exactly_its_members(low: int, span: int, probe: int) -> None:
    high = low + span
    pattern = re.compile(f"(?:{patterns.integers(low, high)})")
    assert bool(pattern.fullmatch(str(probe))) == (low <= probe <= high)
    assert pattern.fullmatch(str(low)) and pattern.fullmatch(str(high))


def _accepts(raw: str, low: Decimal, high: Decimal) -> bool:
    try:
        return low <= parse_amount(raw) <= high
    except ValueError:
        return False


@settings(max_examples=600)
@given(raw=st.one_of(NEAR_AMOUNTS, st.decimals(0, 2 * 10**9, places=2).map(str)))
@example(raw="0.01")
@example(raw="0.0")
@example(raw="00.10")
@example(raw="1000000000.00")
@example(raw="1000000000.01")
@example(raw=".5")
def test_the_amount_pattern_is_what_parse_amount_takes(raw: str) -> None:
    assert bool(re.fullmatch(AMOUNT_PATTERN, raw)) == _accepts(raw, Decimal("0.01"), MAX_AMOUNT)


@pytest.mark.parametrize("spec", catalog.PROVIDERS, ids=lambda s: s.code)
@settings(max_examples=80)
@given(raw=st.one_of(NEAR_AMOUNTS, st.decimals(0, 6 * 10**6, places=2).map(str)))
def test_each_providers_amount_pattern_is_its_limits(spec: catalog.ProviderSpec,
                                                      raw: str) -> None:
    pattern = patterns.amount(spec.min_amount, spec.max_amount)
    for probe in (raw, str(spec.min_amount), str(spec.max_amount),
                  str(spec.max_amount + Decimal("0.01")), str(spec.min_amount - Decimal("0.01"))):
        assert bool(re.fullmatch(pattern, probe)) == _accepts(
            probe, spec.min_amount, spec.max_amount), probe


def test_limits_a_pattern_cannot_state_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot state"):
        patterns.amount(Decimal("0.50"), Decimal(10))
    with pytest.raises(ValueError, match="cannot state"):
        patterns.amount(Decimal(1), Decimal("10.50"))


def _phone_ok(raw: str) -> bool:
    try:
        catalog.normalise_phone(raw)
    except ValueError:
        return False
    return True


@settings(max_examples=600)
@given(raw=st.one_of(NEAR_PHONES, st.from_regex(catalog.PHONE_PATTERN, fullmatch=True)))
@example(raw="+249912345678")
@example(raw="0912345678")
@example(raw="00249 91-234-5678")
@example(raw="+249912345678\n")
@example(raw="+249٩12345678")
def test_the_phone_pattern_is_what_normalise_phone_takes(raw: str) -> None:
    assert bool(re.fullmatch(catalog.PHONE_PATTERN, raw)) == _phone_ok(raw)
