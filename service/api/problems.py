"""The one place errors become RFC 9457 problem+json responses."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from service.errors import NileCareError

PROBLEM = "application/problem+json"
log = structlog.get_logger("nilecare.api")


def problem(
    status: int,
    title: str,
    detail: str,
    request: Request[Any, Any, Any],
    field: str | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": f"https://nilecare.sd/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if field is not None:
        body["field"] = field
    body.update(extra)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="nilecare"'
    return Response(body, status_code=status, media_type=PROBLEM, headers=headers)


def on_service_error(request: Request[Any, Any, Any], exc: NileCareError) -> Response[Any]:
    return problem(exc.status, exc.title, exc.detail, request, exc.field, **exc.extra)


def on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            errors.append(
                {"field": str(item.get("key") or "body"), "message": str(item.get("message", ""))}
            )
    if not errors:
        # Litestar reports an unparsable body without a key: it is the body that is wrong.
        return problem(400, "Malformed request", _plain(exc.detail), request, "body")
    first = errors[0]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(400, "Invalid input", detail, request, first["field"], errors=errors)


def on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    titles = {
        401: "Authentication required",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        413: "Request too large",
        429: "Too many requests",
    }
    title = titles.get(
        exc.status_code,
        "Malformed request"
        if exc.status_code == 400
        else "Bad request"
        if exc.status_code < 500
        else "Error",
    )
    # Litestar raises a bare 400 for a body it cannot decode (malformed JSON).
    field = "body" if exc.status_code in (400, 413) else None
    response = problem(exc.status_code, title, _plain(exc.detail), request, field)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # The process boundary for requests: log everything, tell the client nothing internal.
    log.exception("unhandled error", path=request.url.path, method=request.method)
    return problem(500, "Internal error", "the request failed; it has been logged", request)


def _plain(detail: str) -> str:
    return detail if detail else "invalid request"


HANDLERS: dict[type[Exception] | int, Any] = {
    NileCareError: on_service_error,
    ValidationException: on_validation,
    HTTPException: on_http,
    Exception: on_unexpected,
}

__all__ = ["HANDLERS", "PROBLEM", "MediaType", "problem"]
