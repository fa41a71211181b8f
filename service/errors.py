"""One error hierarchy for the service; api/problems.py maps it to problem+json once."""

# Which status each kind of mistake gets (docs/integrators/errors.md's table says the same): a
# body that cannot be read as a JSON object is malformed (400); a field that is missing, of the
# wrong type or not allowed is invalid (422); a request that cannot be carried out in the
# resource's current state is a conflict (409).

from __future__ import annotations


class NileCareError(Exception):
    status = 400
    title = "Malformed request"

    def __init__(self, detail: str, field: str | None = None, *,
                 retry_after: int | None = None, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        # Seconds after which the same request may succeed (sent as Retry-After).
        self.retry_after = retry_after
        self.extra = extra


class Malformed(NileCareError):
    status = 400
    title = "Malformed request"


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


class UnsupportedMediaType(NileCareError):
    status = 415
    title = "Unsupported media type"


class ProviderFailure(NileCareError):
    status = 502
    title = "Payment provider error"


class Unavailable(NileCareError):
    status = 503
    title = "Service unavailable"
