"""Route guards: checks that run before a handler, ahead of its dependencies and body."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.db.availability import Breaker


def database_answers(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """503 at once while the database is known not to answer (see db/availability.py)."""
    breaker: Breaker | None = connection.app.state.get("breaker")
    if breaker is not None:
        breaker.check()
