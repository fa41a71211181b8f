"""Request bodies, vetted once before a handler runs: only a UTF-8 JSON object is taken."""

# Litestar would take a text/plain body as JSON and answer 500 to invalid UTF-8 inside a string or
# to deep nesting; here each of those is a 4xx naming what is wrong. The parsed object is kept on
# the request, so the idempotency fingerprint is its canonical form.

from __future__ import annotations

from typing import Any

from litestar import Request

from service.domain.idempotency import canonical_json
from service.errors import Malformed
from service.services.payload import check_media_type, parse_object

PARSED = "nilecare_json"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def require_json_object(request: Request[Any, Any, Any]) -> None:
    """before_request hook: vet the body of every POST/PUT/PATCH that is not raw (webhooks
    read and verify their own bytes)."""
    if request.method not in BODY_METHODS:
        return
    handler = request.route_handler
    if handler.opt.get("raw_body"):
        return
    takes_body = "data" in handler.parsed_fn_signature.parameters
    raw = await request.body()
    if not raw:
        if takes_body:
            raise Malformed("this operation takes a JSON object body "
                            "(Content-Type: application/json)", field="body")
        return
    check_media_type(request.headers.get("content-type"))
    request.state[PARSED] = parse_object(raw)


def canonical(request: Request[Any, Any, Any]) -> str:
    """The vetted body in canonical form: key order and whitespace do not matter."""
    parsed = request.state.get(PARSED)
    return "" if parsed is None else canonical_json(parsed)
