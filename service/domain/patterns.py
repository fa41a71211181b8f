"""Regular expressions that match exactly the strings a parser here accepts, so the OpenAPI
document can state a rule the service enforces in code: an amount within limits, a Sudanese
mobile number. Written in the subset ECMA-262 (JSON Schema) and Python share; the unit tests
hold each to its parser on generated strings.
"""

from __future__ import annotations

from decimal import Decimal

FRACTION = r"(?:\.[0-9]{1,2})?"
SEPARATORS = "[ -]*"


def integers(low: int, high: int) -> str:
    """An alternation matching the decimal integers low..high written without leading zeros."""
    if not 0 <= low <= high:
        raise ValueError(f"not a range of natural numbers: {low}..{high}")
    parts: list[str] = []
    for digits in range(len(str(low)), len(str(high)) + 1):
        first = max(low, 10 ** (digits - 1) if digits > 1 else 0)
        last = min(high, 10 ** digits - 1)
        if first <= last:
            parts += _same_length(str(first), str(last))
    return "|".join(parts)


def _same_length(low: str, high: str) -> list[str]:
    if low == high:
        return [low]
    if len(low) == 1:
        return [_digits(int(low), int(high))]
    if low[0] == high[0]:
        return [low[0] + rest for rest in _same_length(low[1:], high[1:])]
    rest = len(low) - 1
    out: list[str] = []
    start, end = int(low[0]), int(high[0])
    if low[1:] != "0" * rest:
        out += [low[0] + tail for tail in _same_length(low[1:], "9" * rest)]
        start += 1
    tail_high: list[str] = []
    if high[1:] != "9" * rest:
        tail_high = [high[0] + tail for tail in _same_length("0" * rest, high[1:])]
        end -= 1
    if start <= end:
        out.append(_digits(start, end) + ("[0-9]" if rest == 1 else f"[0-9]{{{rest}}}"))
    return out + tail_high


def _digits(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def amount(low: Decimal, high: Decimal) -> str:
    """The amounts money.parse_amount accepts from `low` to `high` inclusive: ASCII digits
    (leading zeros allowed), at most two decimals. `high` is whole; `low` is one cent or
    whole."""
    if high != high.to_integral_value() or not Decimal("0.01") <= low <= high:
        raise ValueError(f"limits the pattern cannot state: {low}..{high}")
    top = int(high)
    exact_top = rf"{top}(?:\.0{{1,2}})?"
    parts = [f"0*{exact_top}"]
    if low == Decimal("0.01"):
        # Below one: a zero whole part, then a fraction that is not zero.
        parts.append(r"0+\.(?:0[1-9]|[1-9][0-9]?)")
        low = Decimal(1)
    if low != low.to_integral_value():
        raise ValueError(f"a lower limit with cents the pattern cannot state: {low}")
    bottom = int(low)
    if bottom < top:
        parts.insert(0, f"0*(?:{integers(bottom, top - 1)}){FRACTION}")
    return f"^(?:{'|'.join(parts)})$"


def separated(*atoms: str) -> str:
    """A whole string of `atoms` (regular expressions, one character each) in order, with
    spaces and dashes allowed around and between them: what a parser that first removes
    spaces and dashes would accept."""
    return f"^{SEPARATORS}{SEPARATORS.join(atoms)}{SEPARATORS}$"


def literal(text: str) -> list[str]:
    """`text` as atoms for `separated`."""
    return ["\\" + c if c in r"\^$.|?*+()[]{}" else c for c in text]
