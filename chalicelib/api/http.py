"""Where HTTP meets the domain: route tables, the caller's principal, and domain errors as JSON responses."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from chalice.app import AuthResponse, Chalice, Request, Response

from chalicelib.domain.identity import Principal, Role
from chalicelib.errors import AdminRequired, DomainError, InvalidInput, Unauthorized
from chalicelib.observability import logger

JSON = "application/json"
View = Callable[..., Response]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": JSON, **(headers or {})})


def error_response(error: DomainError, correlation: str | None = None) -> Response:
    body: dict[str, Any] = {"code": error.code, "message": error.message, "details": error.details}
    if correlation:
        body["correlation_id"] = correlation
    headers = {**error.headers, **({"X-Correlation-Id": correlation} if correlation else {})}
    return json_response({"error": body}, error.status_code, headers)


def internal_error(correlation: str) -> Response:
    """The contract's shape for a fault nobody expected: no detail leaks, the correlation id finds the trace."""
    body = {
        "code": "internal_error",
        "message": "an unexpected error occurred; quote the correlation id when reporting it",
        "details": [],
        "correlation_id": correlation,
    }
    return json_response({"error": body}, 500, {"X-Correlation-Id": correlation})


def principal_of(request: Request) -> Principal:
    """The caller as the authorizer described it (it ran before the route, in API Gateway or chalice local)."""
    context: dict[str, Any] = dict(request.context or {}).get("authorizer") or {}
    if not context.get("role"):
        raise Unauthorized("missing or invalid bearer token")
    return Principal(
        token_id=str(context.get("principalId") or context.get("token_id")),
        role=Role(context["role"]),
        seller_id=context.get("seller_id") or None,
    )


def correlation_id(request: Request) -> str:
    """The caller's X-Correlation-Id, else API Gateway's request id: carried on to the queue and every log line."""
    headers: Mapping[str, str] = request.headers or {}
    context: dict[str, Any] = dict(request.context or {})
    return headers.get("x-correlation-id") or context.get("requestId") or uuid.uuid4().hex


def header(request: Request, name: str) -> str | None:
    headers: Mapping[str, str] = request.headers or {}
    return headers.get(name)


def int_query(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = dict(request.query_params or {}).get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,6}", raw) or not low <= int(raw) <= high:
        raise InvalidInput(
            f"{name} must be a whole number from {low} to {high}",
            [{"field": name, "message": f"expected {low}..{high}, got {raw!r}"}],
        )
    return int(raw)


def version_header(request: Request, name: str = "If-Match") -> int | None:
    """`If-Match: 3`, `"3"` or `W/"3"` -> 3."""
    raw = header(request, name)
    if raw is None:
        return None
    match = re.fullmatch(r'\s*(?:W/)?"?(\d{1,12})"?\s*', raw)
    if match is None:
        raise InvalidInput(f"{name} must be the order's version number", [{"field": name, "message": f"got {raw!r}"}])
    return int(match.group(1))


class RouteTable:
    """One resource's routes, declared beside their bodies and attached to the app in app.py with the bearer
    authorizer. Every route shares the same rules: bearer auth (none for public routes), the admin check, a
    correlation id on every log line, and each domain error answered as JSON."""

    def __init__(self, prefix: str = "/api/v1") -> None:
        self._prefix = prefix
        self._routes: list[tuple[str, list[str], bool, bool, list[str], View]] = []
        self.app: Chalice | None = None

    def route(
        self,
        path: str,
        methods: list[str],
        *,
        admin_only: bool = False,
        public: bool = False,
        content_types: list[str] | None = None,
    ) -> Callable[[View], View]:
        def declare(view: View) -> View:
            self._routes.append((path, methods, admin_only, public, content_types or [JSON], view))
            return view

        return declare

    def attach(self, app: Chalice, authorizer: Any) -> None:
        self.app = app
        for path, methods, admin_only, public, content_types, view in self._routes:
            app.route(
                self._prefix + path,
                methods=methods,
                authorizer=None if public else authorizer,
                content_types=content_types,
            )(_guarded(app, view, admin_only=admin_only, public=public))


def _guarded(app: Chalice, view: View, *, admin_only: bool, public: bool) -> View:
    @functools.wraps(view)
    def wrapper(**params: Any) -> Response:
        request = app.current_request
        assert request is not None
        correlation = correlation_id(request)
        logger.set_correlation_id(correlation)
        try:
            if not public:
                principal = principal_of(request)
                if admin_only and not principal.is_admin:
                    raise AdminRequired("this route needs an admin token")
            return view(request, **params)
        except DomainError as error:
            if error.status_code >= 500:
                logger.exception("request failed")
            return error_response(error, correlation if error.status_code >= 500 else None)
        except Exception:  # noqa: BLE001 - the one place every unexpected fault is answered and logged
            # A bug or an AWS fault: the trace goes to the log, the caller gets the contract's shape.
            logger.exception("unexpected error", extra={"route": request.path})
            return internal_error(correlation)

    return wrapper


def allow(principal: Principal) -> AuthResponse:
    """Authorizer answer: every route for a valid token; roles are checked by the routes themselves."""
    context = {"role": principal.role.value, "token_id": principal.token_id, "seller_id": principal.seller_id or ""}
    return AuthResponse(routes=["*"], principal_id=principal.token_id, context=context)


def deny() -> AuthResponse:
    return AuthResponse(routes=[], principal_id="anonymous")
