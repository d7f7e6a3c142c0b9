"""The bearer-token authorizer's body: a presented token becomes a principal, or the request is refused."""

from __future__ import annotations

from chalice.app import AuthResponse

from chalicelib.api.http import allow, deny
from chalicelib.observability import logger


def authorize(raw_header: str) -> AuthResponse:
    from chalicelib import bearer  # deferred: only the authorizer function pays for token storage

    scheme, _, token = (raw_header or "").partition(" ")
    principal = bearer.authenticate(token.strip()) if scheme.lower() == "bearer" and token else None
    if principal is None:
        logger.info("token refused", extra={"token_id": bearer.token_id_hint(token.strip())})
        return deny()
    return allow(principal)
