"""The one place errors become RFC 9457 problem+json responses.

Every problem carries `field` (the input at fault, or null when no input is), and the ones a
client should retry later carry Retry-After: 409 for a request still in flight, 429, 503.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from service.api.contract import PROBLEM
from service.db.availability import is_down, is_unavailable, unavailable
from service.errors import NileCareError

log = structlog.get_logger("nilecare.api")

TITLES = {
    400: "Malformed request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    502: "Payment provider error",
    503: "Service unavailable",
}


def problem(
    status: int,
    title: str,
    detail: str,
    request: Request[Any, Any, Any],
    field: str | None = None,
    retry_after: int | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response[Any]:
    body: dict[str, Any] = {
        "type": f"https://nilecare.sd/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "field": field,
    }
    body.update(extra or {})
    out = dict(headers or {})
    if status == 401 and field == "Authorization":  # not a webhook's signature
        out["WWW-Authenticate"] = 'Bearer realm="nilecare"'
    if retry_after is not None:
        out["Retry-After"] = str(max(int(retry_after), 1))
    return Response(body, status_code=status, media_type=PROBLEM, headers=out)


def on_service_error(request: Request[Any, Any, Any], exc: NileCareError) -> Response[Any]:
    if exc.extra.get("dependency") == "database":
        services = request.app.state.get("services")
        if services is not None:
            services.ctx.metrics.database_unavailable.inc()
    return problem(exc.status, exc.title, exc.detail, request, exc.field, exc.retry_after,
                   extra=exc.extra)


def on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        # A key names the field at fault ("" is a property named ""); "data" is the body.
        if isinstance(item, dict) and item.get("key") is not None and item["key"] != "data":
            errors.append({"field": str(item["key"]), "message": str(item.get("message", ""))})
    if not errors:
        # No field to blame: the body as a whole is not the JSON object this call takes.
        return problem(400, TITLES[400], "the body must be a JSON object of this operation's "
                       "fields", request, "body")
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(422, TITLES[422], detail, request, errors[0]["field"],
                   extra={"errors": errors})


def on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    headers = dict(exc.headers or {})
    field: str | None = None
    retry_after = None
    detail = exc.detail or "invalid request"
    if status == 400:  # Litestar could not decode the body
        field = "body"
    elif status == 404:
        field, detail = "path", f"no such resource: {request.method} {request.url.path}"
    elif status == 405:
        field = "method"
        detail = f"{request.method} is not allowed on {request.url.path}"
    elif status == 413:
        field = "body"
    elif status == 429:
        # The quota is the caller's (the token's subject): wait for its window to reset.
        field = "Authorization"
        detail = "too many requests from this caller; retry after the time in Retry-After"
        reset = headers.get("RateLimit-Reset", "")
        retry_after = int(reset) if reset.isdigit() else 60
    elif status >= 500:
        detail = "the request failed; it has been logged"
    title = TITLES.get(status, "Bad request" if status < 500 else "Error")
    return problem(status, title, detail, request, field, retry_after, headers)


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if is_unavailable(exc):
        breaker = request.app.state.get("breaker")
        if breaker is not None and is_down(exc):
            breaker.trip()
        log.warning("database.unavailable", path=request.url.path, method=request.method,
                    error=type(exc).__name__, reason=str(getattr(exc, "orig", exc))[:200])
        return on_service_error(request, unavailable())
    # The process boundary for requests: log everything, tell the client nothing internal.
    log.exception("unhandled error", path=request.url.path, method=request.method)
    return problem(500, TITLES[500], "the request failed; it has been logged", request)


HANDLERS: dict[type[Exception] | int, Any] = {
    NileCareError: on_service_error,
    ValidationException: on_validation,
    HTTPException: on_http,
    Exception: on_unexpected,
}

__all__ = ["HANDLERS", "PROBLEM", "MediaType", "problem"]
