"""Domain errors: each carries its HTTP status and code, mapped to a response in one place (api.http)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidInput(DomainError):
    status_code = 422
    code = "validation_error"


class MalformedRequest(DomainError):
    status_code = 400
    code = "malformed_request"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class AdminRequired(Forbidden):
    """A valid token without the admin role on an admin route: told apart from a refused token (also a 403, from
    the gateway), so a client such as the console can say which it is."""

    code = "admin_required"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class PreconditionFailed(DomainError):
    status_code = 412
    code = "precondition_failed"
