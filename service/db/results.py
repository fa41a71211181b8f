"""What a statement's result says: how many rows an UPDATE or DELETE touched."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult


def rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)
