"""Prometheus durations ("30s", "5m", "1d") kept as written and as seconds."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, order=True)
class Duration:
    """A single-unit Prometheus duration."""

    seconds: int
    text: str

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = re.fullmatch(r"(\d+)([smhdw])", text)
        if not match:
            raise ValueError(f"'{text}' is not a duration like 30s, 5m, 1h or 1d")
        return cls(int(match.group(1)) * _UNITS[match.group(2)], text)

    @classmethod
    def of(cls, seconds: int) -> Duration:
        """The shortest exact single-unit spelling of `seconds`."""
        for unit, size in sorted(_UNITS.items(), key=lambda kv: -kv[1]):
            if seconds and seconds % size == 0:
                return cls(seconds, f"{seconds // size}{unit}")
        return cls(seconds, f"{seconds}s")

    def __str__(self) -> str:
        return self.text
