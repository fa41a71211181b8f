"""Operator text with {placeholders}: as a Prometheus template, or as the expected string."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Literal

Format = Literal["percent", "count", "seconds", "burn"]

_GO_VALUE: dict[Format, str] = {
    "percent": "{{ $value | humanizePercentage }}",
    "count": '{{ $value | printf "%.0f" }}',
    "seconds": '{{ $value | printf "%.1f" }}s',
    "burn": '{{ $value | printf "%.1f" }}x',
}
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def decimal_text(value: Decimal) -> str:
    """A decimal written exactly and without exponent: 0.1, 100, 14.4."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def show(value: float | Decimal, fmt: Format) -> str:
    """What the Prometheus template for `fmt` prints for `value` (mirrors Go's formatting)."""
    number = float(value)
    if fmt == "percent":
        return format(number * 100, ".4g") + "%"
    if fmt == "count":
        return f"{number:.0f}"
    if fmt == "seconds":
        return f"{number:.1f}s"
    return f"{number:.1f}x"


def show_duration(seconds: Decimal) -> str:
    """A span as an operator says it: 2.1 days, 5 days, 12 hours, 45 minutes."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            amount = f"{seconds / size:.1f}".removesuffix(".0")
            return f"{amount} {unit}{'' if amount == '1' else 's'}"
    return f"{seconds:.0f} seconds"


def show_threshold(value: Decimal, fmt: Format) -> str:
    """A threshold as an operator reads it: exact, in the signal's unit."""
    if fmt == "percent":
        return decimal_text(value * 100) + "%"
    if fmt == "seconds":
        return decimal_text(value) + "s"
    if fmt == "burn":
        return decimal_text(value) + "x"
    return decimal_text(value)


def to_template(text: str, fmt: Format, constants: Mapping[str, str]) -> str:
    """`text` with {value} and {label} placeholders turned into Prometheus template calls."""

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "value":
            return _GO_VALUE[fmt]
        if key in constants:
            return constants[key]
        return f"{{{{ $labels.{key} }}}}"

    return _PLACEHOLDER.sub(replace, text)


def expected(text: str, fmt: Format, value: float | Decimal,
             labels: Mapping[str, str], constants: Mapping[str, str]) -> str:
    """What Prometheus renders from `text` for `value` and `labels` (for generated tests)."""

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "value":
            return show(value, fmt)
        if key in constants:
            return constants[key]
        if key not in labels:
            raise ValueError(f"placeholder {{{key}}} is not a label of this alert")
        return labels[key]

    return _PLACEHOLDER.sub(replace, text)
