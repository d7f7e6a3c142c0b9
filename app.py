"""order-relay: routes, the authorizer and event wiring. Every line of logic lives in chalicelib/."""

from __future__ import annotations

import os
from typing import Any

from chalice.app import AuthRequest, AuthResponse, Chalice, Rate, Request, Response, SQSEvent

from chalicelib.api import handlers
from chalicelib.api.console import console
from chalicelib.api.http import Router

app = Chalice(app_name="order-relay", configure_logs=False)
app.register_blueprint(console)
# The queue name is needed when the app is loaded for deployment; stages set it in .chalice/config.json.
ORDERS_QUEUE_NAME = os.environ.get("ORDERS_QUEUE_NAME", "order-relay-dev-orders")
DISPATCH_MAX_CONCURRENCY = int(os.environ.get("DISPATCH_MAX_CONCURRENCY", "5"))


@app.authorizer(ttl_seconds=60)
def bearer_auth(auth_request: AuthRequest) -> AuthResponse:
    return handlers.authorize(auth_request.token)


app.register_middleware(handlers.per_invocation, "all")
route = Router(app, bearer_auth)


@route("/orders", ["POST"])
def create_order(request: Request) -> Response:
    return handlers.create_order(request)


@route("/orders", ["GET"])
def list_orders(request: Request) -> Response:
    return handlers.list_orders(request)


@route("/orders/{order_id}", ["GET"])
def get_order(request: Request, order_id: str) -> Response:
    return handlers.get_order(request, order_id)


@route("/orders/{order_id}", ["PATCH"], content_types=["application/json", "application/merge-patch+json"])
def update_order(request: Request, order_id: str) -> Response:
    return handlers.update_order(request, order_id)


@route("/orders/{order_id}", ["DELETE"])
def cancel_order(request: Request, order_id: str) -> Response:
    return handlers.cancel_order(request, order_id)


@route("/orders/{order_id}/deliveries", ["GET"])
def list_deliveries(request: Request, order_id: str) -> Response:
    return handlers.list_deliveries(request, order_id)


@route("/orders/{order_id}/deliveries/{integrator}/retry", ["POST"], admin_only=True)
def retry_delivery(request: Request, order_id: str, integrator: str) -> Response:
    return handlers.retry_delivery(request, order_id, integrator)


@route("/tokens", ["POST"], admin_only=True)
def create_token(request: Request) -> Response:
    return handlers.create_token(request)


@route("/tokens", ["GET"], admin_only=True)
def list_tokens(_request: Request) -> Response:
    return handlers.list_tokens()


@route("/tokens/{token_id}", ["DELETE"], admin_only=True)
def revoke_token(_request: Request, token_id: str) -> Response:
    return handlers.revoke_token(token_id)


@route("/integrators", ["POST"], admin_only=True)
def create_integrator(request: Request) -> Response:
    return handlers.create_integrator(request)


@route("/integrators", ["GET"], admin_only=True)
def list_integrators(_request: Request) -> Response:
    return handlers.list_integrators()


@route("/integrators/{name}", ["GET"], admin_only=True)
def get_integrator(_request: Request, name: str) -> Response:
    return handlers.get_integrator(name)


@route("/integrators/{name}", ["PATCH"], admin_only=True, content_types=["application/json"])
def update_integrator(request: Request, name: str) -> Response:
    return handlers.update_integrator(request, name)


@route("/integrators/{name}", ["DELETE"], admin_only=True)
def delete_integrator(_request: Request, name: str) -> Response:
    return handlers.delete_integrator(name)


@route("/integrators/{name}/replay", ["POST"], admin_only=True)
def replay_deliveries(request: Request, name: str) -> Response:
    return handlers.replay_deliveries(request, name)


@route("/callbacks/{integrator}", ["POST"], public=True)
def receive_callback(request: Request, integrator: str) -> Response:
    return handlers.receive_callback(request, integrator)


@route("/openapi.json", ["GET"], public=True)
def openapi_document(_request: Request) -> Response:
    return handlers.openapi_document(app)


@app.on_sqs_message(
    queue=ORDERS_QUEUE_NAME, batch_size=10, maximum_concurrency=DISPATCH_MAX_CONCURRENCY, name="dispatch_orders"
)
def dispatch_orders(event: SQSEvent) -> dict[str, Any]:
    return handlers.dispatch_batch(event.to_dict(), event.context)


@app.schedule(Rate(1, unit=Rate.MINUTES), name="sweep_outbox")
def sweep_outbox(event: Any) -> dict[str, int]:
    return handlers.sweep_outbox()
