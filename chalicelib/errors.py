"""Domain errors: each carries its HTTP status and code, mapped to a response in one place (api.http)."""

from __future__ import annotations

import math
from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    @property
    def headers(self) -> dict[str, str]:
        """Headers the answer carries besides the JSON body (none unless the error says how to recover)."""
        return {}


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


class StillInProgress(Conflict):
    """The first request with this Idempotency-Key is still running: the client repeats it after `Retry-After`
    seconds and then gets that first request's answer."""

    retry_after_seconds = 1

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class PreconditionFailed(DomainError):
    status_code = 412
    code = "precondition_failed"


class TooManyRequests(DomainError):
    """Over a quota: the client repeats the request after `Retry-After` seconds."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after_seconds: float, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, details)
        self.retry_after_seconds = max(1, math.ceil(retry_after_seconds))

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}
