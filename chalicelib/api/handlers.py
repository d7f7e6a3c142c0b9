"""Route bodies: read the request, call one use case, shape the response.

Every Chalice function (API, authorizer, dispatcher, sweeper) imports app.py and so this module; the use
cases are imported inside the handlers so that each function pays only for what it runs (the authorizer
never loads requests, the dispatcher never loads the OpenAPI builder).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chalice.app import Response

from chalicelib.api.http import allow, correlation_id, deny, header, int_query, json_response, principal_of
from chalicelib.api.http import version_header as if_match
from chalicelib.observability import flush_metrics, logger

if TYPE_CHECKING:
    from chalice.app import AuthResponse, Chalice, Request

PREFIX = "/api/v1"


def authorize(raw_header: str) -> AuthResponse:
    from chalicelib import tokens

    scheme, _, token = (raw_header or "").partition(" ")
    principal = tokens.authenticate(token.strip()) if scheme.lower() == "bearer" and token else None
    if principal is None:
        logger.info("token refused", extra={"token_id": tokens.token_id_hint(token.strip())})
        return deny()
    return allow(principal)


def per_invocation(event: Any, get_response: Any) -> Any:
    """Middleware for every function: register the Lambda context with Idempotency (a crashed call's lock
    expires with it), and write this invocation's metrics."""
    from chalicelib.idempotency import register_lambda_context

    context = getattr(event, "lambda_context", None) or getattr(event, "context", None)
    register_lambda_context(context)
    try:
        return get_response(event)
    finally:
        flush_metrics()


# --- orders ----------------------------------------------------------------------------------------------------


def _order_response(resource: dict[str, Any], status: int = 200, extra: dict[str, str] | None = None) -> Response:
    headers = {"ETag": f'"{resource["version"]}"', **(extra or {})}
    return json_response(resource, status, headers)


def create_order(request: Request) -> Response:
    from chalicelib.orders import service
    from chalicelib.orders.models import CreateOrderRequest
    from chalicelib.validation import parse_model

    body = parse_model(request.raw_body, CreateOrderRequest)
    key = header(request, "idempotency-key")
    resource, replayed = service.create_order(
        body, principal_of(request), correlation_id=correlation_id(request), idempotency_key=key
    )
    extra = {"Location": f"{PREFIX}/orders/{resource['id']}"}
    if replayed:
        extra["Idempotent-Replayed"] = "true"
    return _order_response(resource, 201, extra)


def list_orders(request: Request) -> Response:
    from chalicelib.orders import service
    from chalicelib.orders.status import OrderStatus

    params: dict[str, str] = dict(request.query_params or {})
    status = params.get("status")
    if status is not None and status not in set(OrderStatus):
        from chalicelib.errors import InvalidInput

        raise InvalidInput(
            "unknown status filter", [{"field": "status", "message": f"one of {', '.join(OrderStatus)}"}]
        )
    body = service.list_orders(
        principal_of(request),
        seller_id=params.get("seller_id"),
        user_id=params.get("user_id"),
        status=status,
        limit=int_query(request, "limit", 20, 1, service.MAX_LIMIT),
        cursor=params.get("cursor"),
    )
    return json_response(body)


def get_order(request: Request, order_id: str) -> Response:
    from chalicelib.orders import service

    return _order_response(service.get_order(order_id, principal_of(request)))


def update_order(request: Request, order_id: str) -> Response:
    from chalicelib.orders import service
    from chalicelib.validation import parse_json

    version = if_match(request)
    patch = parse_json(request.raw_body)
    resource = service.update_order(
        order_id, patch, principal_of(request), if_match=version, correlation_id=correlation_id(request)
    )
    return _order_response(resource)


def cancel_order(request: Request, order_id: str) -> Response:
    from chalicelib.orders import service

    resource = service.cancel_order(
        order_id,
        principal_of(request),
        if_match=if_match(request),
        correlation_id=correlation_id(request),
        reason=dict(request.query_params or {}).get("reason"),
    )
    return _order_response(resource)


def list_deliveries(request: Request, order_id: str) -> Response:
    from chalicelib.dispatch import history

    return json_response(history.attempts_for(order_id, principal_of(request)))


def retry_delivery(request: Request, order_id: str, integrator: str) -> Response:
    from chalicelib.dispatch import history

    return json_response(history.retry_failed(order_id, integrator, correlation_id(request)), 202)


def replay_deliveries(request: Request, name: str) -> Response:
    from chalicelib.dispatch import history
    from chalicelib.validation import parse_model

    body = parse_model(request.raw_body, history.ReplayRequest)
    return json_response(history.replay_failed(name, body, correlation_id(request)), 202)


# --- tokens ----------------------------------------------------------------------------------------------------


def create_token(request: Request) -> Response:
    from chalicelib import tokens
    from chalicelib.validation import parse_model

    issued = tokens.issue_token(parse_model(request.raw_body, tokens.CreateTokenRequest))
    logger.info("token issued", extra={"token_id": issued.id, "role": issued.role})
    return json_response(issued.model_dump(mode="json"), 201, {"Location": f"{PREFIX}/tokens/{issued.id}"})


def list_tokens() -> Response:
    from chalicelib import tokens

    return json_response({"items": [view.model_dump(mode="json") for view in tokens.list_tokens()]})


def revoke_token(token_id: str) -> Response:
    from chalicelib import tokens
    from chalicelib.errors import NotFound

    if not tokens.revoke_token(token_id):
        raise NotFound(f"token {token_id} not found")
    logger.info("token revoked", extra={"token_id": token_id})
    return Response(body="", status_code=204)


# --- integrators -----------------------------------------------------------------------------------------------


def create_integrator(request: Request) -> Response:
    from chalicelib.integrators import registry
    from chalicelib.validation import parse_model

    body = parse_model(request.raw_body, registry.CreateIntegratorRequest)
    created = registry.create_integrator(body, callback_base=_base_url(request))
    return json_response(created, 201, {"Location": f"{PREFIX}/integrators/{created['name']}"})


def list_integrators() -> Response:
    from chalicelib.integrators import registry

    return json_response({"items": registry.list_integrators()})


def get_integrator(name: str) -> Response:
    from chalicelib.integrators import registry

    return json_response(registry.get_integrator_view(name))


def update_integrator(request: Request, name: str) -> Response:
    from chalicelib.integrators import registry
    from chalicelib.validation import parse_json

    return json_response(registry.update_integrator(name, parse_json(request.raw_body)))


def delete_integrator(name: str) -> Response:
    from chalicelib.integrators import registry

    registry.delete_integrator(name)
    return Response(body="", status_code=204)


def _base_url(request: Request) -> str:
    from chalicelib.settings import get_settings

    configured = get_settings().public_base_url
    if configured:
        return configured.rstrip("/")
    headers: Mapping[str, str] = request.headers or {}
    host = headers.get("host", "localhost")
    proto = headers.get("x-forwarded-proto", "https" if "amazonaws.com" in host else "http")
    stage = (request.context or {}).get("stage")
    prefix = f"/{stage}" if stage and "amazonaws.com" in host else ""
    return f"{proto}://{host}{prefix}"


# --- callbacks, docs, events -------------------------------------------------------------------------------------


def receive_callback(request: Request, integrator: str) -> Response:
    from chalicelib.callbacks import receive

    status, body = receive(integrator, dict(request.headers or {}), request.raw_body or b"")
    return json_response(body, status)


def openapi_document(app: Chalice) -> Response:
    from chalicelib.api.openapi import build_document

    return json_response(build_document(app))


def dispatch_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.dispatch.worker import handle_batch

    return handle_batch(event, context)


def sweep_outbox() -> dict[str, int]:
    from chalicelib.orders.service import sweep_outbox as sweep

    return {"requeued": sweep()}
