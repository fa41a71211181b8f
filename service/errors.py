"""One error hierarchy for the service; api/problems.py maps it to problem+json once."""

from __future__ import annotations


class NileCareError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, field: str | None = None, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra


class InvalidInput(NileCareError):
    status = 422
    title = "Invalid input"


class Unauthenticated(NileCareError):
    status = 401
    title = "Authentication required"


class Forbidden(NileCareError):
    status = 403
    title = "Forbidden"


class NotFound(NileCareError):
    status = 404
    title = "Not found"


class Conflict(NileCareError):
    status = 409
    title = "Conflict"


class ProviderFailure(NileCareError):
    status = 502
    title = "Payment provider error"


class Unavailable(NileCareError):
    status = 503
    title = "Service unavailable"
