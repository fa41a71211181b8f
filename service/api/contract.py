"""The published contract: the problem+json error schema, which errors each operation
documents, the bearer-JWT security scheme, and the response headers of errors.

Handlers declare their error statuses with `errors(...)`; success bodies are documented from
their return types (service/domain/views.py). The tests run schemathesis with every check
against a real gateway, so a status, header or body the document leaves out fails there.
"""

from typing import Any, NotRequired, TypedDict, cast

from litestar.enums import ParamType
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType

from service.api import bodies
from service.domain.views import PaymentView, RefundView
from service.providers.signing import HEADER

PROBLEM = "application/problem+json"
BEARER = "bearer"
WEBHOOKS = "/api/v1/webhooks/{provider}"
# Every operation that reads the caller: the handler, its controller or its router sets it.
AUTHENTICATED: list[dict[str, list[str]]] = [{BEARER: []}]


class FieldError(TypedDict):
    field: str
    message: str


class Problem(TypedDict):
    """RFC 9457 problem details; `field` names the input at fault (null when none is)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    field: str | None
    errors: NotRequired[list[FieldError]]
    payment: NotRequired[PaymentView]
    refund: NotRequired[RefundView]
    dependency: NotRequired[str]
    checks: NotRequired[dict[str, str]]


WHY: dict[int, str] = {
    400: "The body is not a JSON object: not JSON, not UTF-8, nested too deeply, or another "
         "JSON value",
    401: "No bearer token, or one that has expired or is not valid (WWW-Authenticate says "
         "which scheme)",
    403: "The caller's roles or facility do not allow this",
    404: "No such resource (another facility's is reported as absent)",
    409: "The resource's state does not allow this, or a request with the same "
         "Idempotency-Key is still running (then Retry-After says when to retry)",
    413: "The body is larger than the gateway takes (MAX_REQUEST_BYTES)",
    415: "The body is not application/json",
    422: "A field is missing, of the wrong type or not allowed: `field` names the first and "
         "`errors` lists each; or the provider is not configured on this deployment; or the "
         "Idempotency-Key was used with another request",
    429: "The caller's requests this minute are used up: retry after Retry-After seconds",
    502: "The payment provider refused or answered what cannot be trusted: `payment` "
         "(or `refund`) shows where the money stands",
    503: "A dependency the request needs is not answering: retry after Retry-After seconds",
}

# Statuses whose problem carries Retry-After (409: only a key still in flight).
RETRY_AFTER = {"409", "429", "503"}

# The errors every authenticated operation can answer, whatever it does.
CALLER = (401, 429, 503)
# ...and every operation that reads a JSON body or takes an Idempotency-Key.
BODY = (400, 413, 415, 422)
KEYED = (409, 422)


def errors(*statuses: int | tuple[int, ...],
           why: dict[int, str] | None = None) -> dict[int, ResponseSpec]:
    """The problem+json responses of an operation, e.g. `errors(CALLER, BODY, 404)`; `why`
    replaces the usual description of a status where this operation means another thing."""
    flat: set[int] = set()
    for status in statuses:
        flat.update(status if isinstance(status, tuple) else (status,))
    return {status: ResponseSpec(data_container=Problem, media_type=PROBLEM,
                                 description=(why or {}).get(status, WHY[status]),
                                 generate_examples=False)
            for status in sorted(flat)}


def components() -> Components:
    return Components(security_schemes={BEARER: SecurityScheme(
        type="http", scheme="bearer", bearer_format="JWT",
        description="An HS256 JWT with claims sub, exp, roles (list) and facility_id. "
                    "`nilecare token` mints one; `make run` prints one.")})


def finish(document: OpenAPI) -> OpenAPI:
    """What handler declarations cannot say: the request bodies' own schemas (service/api/
    bodies.py) and the headers of error responses. Litestar's default 400 (its validation
    error body, which this API never sends) is dropped."""
    retry_after = OpenAPIHeader(
        schema=Schema(type=OpenAPIType.INTEGER, minimum=1),
        description="Seconds after which the same request may succeed")
    challenge = OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING),
                              description='Bearer realm="nilecare"')
    if document.components is not None and document.components.schemas is not None:
        # Litestar's rendering of a pydantic model drops its patterns and its refusal of
        # unknown fields; the document states pydantic's own (a plain dict serialises as is).
        document.components.schemas.update(cast(Any, bodies.schemas()))
    for item in (document.paths or {}).values():
        for operation in (item.get, item.put, item.post, item.delete, item.patch):
            if operation is None or not operation.responses:
                continue
            for status, response in list(operation.responses.items()):
                if not isinstance(response, OpenAPIResponse):
                    continue
                if status >= "4" and PROBLEM not in (response.content or {}):
                    # Litestar's default validation error: ours is a problem, or a 422.
                    del operation.responses[status]
                    continue
                headers: dict[str, OpenAPIHeader | Reference] = dict(response.headers or {})
                if status in RETRY_AFTER:
                    headers["Retry-After"] = retry_after
                if status == "401" and operation.security:
                    headers["WWW-Authenticate"] = challenge
                response.headers = headers or None
    webhook = (document.paths or {}).get(WEBHOOKS)
    if webhook is not None and webhook.post is not None:
        _signed(webhook.post)
    return document


def _signed(operation: Operation) -> None:
    """The webhook reads and verifies its own bytes, so Litestar sees neither its body nor
    its signature header: both are stated here."""
    operation.parameters = [*(operation.parameters or []), Parameter(
        name=HEADER, param_in=ParamType.HEADER, required=True,
        description="t=<unix seconds>,v1=<hex HMAC-SHA256 of \"{t}.{raw body}\" with "
                    "WEBHOOK_SECRET>; several v1= values are allowed while a secret rotates",
        schema=Schema(type=OpenAPIType.STRING))]
    operation.request_body = RequestBody(required=True, content={
        "application/json": OpenAPIMediaType(schema=cast(Any, bodies.webhook_event()))})

