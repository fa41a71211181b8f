"""Route guards: checks that run before a handler, ahead of its dependencies and body."""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

from service.db.availability import Breaker


def database_answers(app: ASGIApp) -> ASGIApp:
    """503 at once while the database is known not to answer (see db/availability.py).

    A route middleware, not a Litestar guard: Litestar runs a synchronous guard in a worker
    thread and hands it a copy of the handler, which cost a GET more than its database read."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        breaker: Breaker | None = scope["app"].state.get("breaker")
        if breaker is not None:
            breaker.check()
        await app(scope, receive, send)

    return guarded
