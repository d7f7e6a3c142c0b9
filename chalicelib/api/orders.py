"""Orders routes: create, list, read, change and cancel orders, and see or re-send their deliveries.

Use cases are imported inside each route: every function of the app imports this module, and only the API
function should pay for the order service (the authorizer and the dispatcher never do)."""

from __future__ import annotations

from typing import Any

from chalice.app import Request, Response

from chalicelib.api.http import RouteTable, correlation_id, header, int_query, json_response, principal_of
from chalicelib.api.http import version_header as if_match

PREFIX = "/api/v1"
routes = RouteTable(PREFIX)


def _with_tracking(request: Request, resource: dict[str, Any]) -> dict[str, Any]:
    """The customer's tracking link, made per answer (a signature, no read): see chalicelib/tracking."""
    from chalicelib.api.tracking import public_base
    from chalicelib.tracking.service import link_for

    return {**resource, "tracking_url": link_for(resource["id"], public_base(request))}


def _order_response(resource: dict[str, Any], status: int = 200, extra: dict[str, str] | None = None) -> Response:
    headers = {"ETag": f'"{resource["version"]}"', **(extra or {})}
    return json_response(resource, status, headers)


@routes.route("/orders", ["POST"])
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
    return _order_response(_with_tracking(request, resource), 201, extra)


@routes.route("/orders", ["GET"])
def list_orders(request: Request) -> Response:
    from chalicelib.domain.order_status import OrderStatus
    from chalicelib.errors import InvalidInput
    from chalicelib.orders import service

    params: dict[str, str] = dict(request.query_params or {})
    status = params.get("status")
    if status is not None and status not in set(OrderStatus):
        raise InvalidInput(
            "unknown status filter", [{"field": "status", "message": f"one of {', '.join(OrderStatus)}"}]
        )
    delivery = params.get("delivery")
    if delivery is not None and delivery != "overdue":
        raise InvalidInput(
            "unknown delivery filter", [{"field": "delivery", "message": "overdue (an acknowledgement is overdue)"}]
        )
    body = service.list_orders(
        principal_of(request),
        seller_id=params.get("seller_id"),
        user_id=params.get("user_id"),
        status=status,
        overdue=delivery == "overdue",
        limit=int_query(request, "limit", 20, 1, service.MAX_LIMIT),
        cursor=params.get("cursor"),
    )
    return json_response(body)


@routes.route("/orders/{order_id}", ["GET"])
def get_order(request: Request, order_id: str) -> Response:
    from chalicelib.orders import service

    return _order_response(_with_tracking(request, service.get_order(order_id, principal_of(request))))


@routes.route("/orders/{order_id}", ["PATCH"], content_types=["application/json", "application/merge-patch+json"])
def update_order(request: Request, order_id: str) -> Response:
    from chalicelib.orders import service
    from chalicelib.validation import parse_json

    version = if_match(request)
    patch = parse_json(request.raw_body)
    resource = service.update_order(
        order_id, patch, principal_of(request), if_match=version, correlation_id=correlation_id(request)
    )
    return _order_response(resource)


@routes.route("/orders/{order_id}", ["DELETE"])
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


@routes.route("/orders/{order_id}/deliveries", ["GET"])
def list_deliveries(request: Request, order_id: str) -> Response:
    from chalicelib.operations import history

    return json_response(history.attempts_for(order_id, principal_of(request)))


@routes.route("/orders/{order_id}/deliveries/{integrator}/retry", ["POST"], admin_only=True)
def retry_delivery(request: Request, order_id: str, integrator: str) -> Response:
    from chalicelib.operations import redelivery

    return json_response(redelivery.retry_failed(order_id, integrator, correlation_id(request)), 202)
