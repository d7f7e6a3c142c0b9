"""order-relay: every function that deploys, and the wiring between them. Logic lives in chalicelib/.

Functions: the API (`app`, every route of the tables in chalicelib/api/), `bearer_auth` (API Gateway
authorizer), `dispatch_orders` (orders queue), `sweep_outbox` (every minute), and live tracking: the WebSocket
API's `websocket_connect`, `websocket_message`, `websocket_disconnect`, and `push_tracking` (notifications topic,
`audience=customer`), which sends each change to the pages watching the order.
"""

from __future__ import annotations

import os
from typing import Any

from chalice.app import AuthRequest, AuthResponse, Chalice, Rate, SNSEvent, SQSEvent, WebsocketEvent

from chalicelib.api import callbacks, console, docs, integrators, orders, portal, tokens, tracking
from chalicelib.api.authorizer import authorize
from chalicelib.api.middleware import per_invocation
from chalicelib.settings import DEFAULT_DISPATCH_MAX_CONCURRENCY, required_setting

app = Chalice(app_name="order-relay", configure_logs=False)
app.experimental_feature_flags.update(["WEBSOCKETS"])
# Read when the app is loaded for deployment (`make package` / `make deploy` pass the stage's variables from
# .chalice/config.json) and in each function. No default: a guessed name would wire a stage to another's queue.
ORDERS_QUEUE_NAME = os.environ.get("ORDERS_QUEUE_NAME") or required_setting("ORDERS_QUEUE_NAME")
NOTIFICATIONS_TOPIC_NAME = (
    os.environ.get("NOTIFICATIONS_TOPIC_NAME")
    or os.environ.get("NOTIFICATIONS_TOPIC_ARN", "").rsplit(":", 1)[-1]
    or required_setting("NOTIFICATIONS_TOPIC_NAME")
)
DISPATCH_MAX_CONCURRENCY = int(os.environ.get("DISPATCH_MAX_CONCURRENCY", DEFAULT_DISPATCH_MAX_CONCURRENCY))


@app.authorizer(ttl_seconds=60)
def bearer_auth(auth_request: AuthRequest) -> AuthResponse:
    return authorize(auth_request.token)


app.register_middleware(per_invocation, "all")
for table in (
    orders.routes,
    integrators.routes,
    tokens.routes,
    callbacks.routes,
    portal.routes,
    tracking.routes,
    docs.routes,
    console.routes,
    portal.pages,
    tracking.pages,
):
    table.attach(app, bearer_auth)


@app.on_sqs_message(
    queue=ORDERS_QUEUE_NAME, batch_size=10, maximum_concurrency=DISPATCH_MAX_CONCURRENCY, name="dispatch_orders"
)
def dispatch_orders(event: SQSEvent) -> dict[str, Any]:
    from chalicelib.dispatch.batch import handle_batch  # deferred: only this function pays for the dispatcher

    return handle_batch(event.to_dict(), event.context)


@app.schedule(Rate(1, unit=Rate.MINUTES), name="sweep_outbox")
def sweep_outbox(event: Any) -> dict[str, int]:
    from chalicelib.dispatch.waiting import sweep as sweep_waiting
    from chalicelib.orders.service import sweep_outbox as sweep

    return {"requeued": sweep(), "resumed_integrators": sweep_waiting()}


@app.on_ws_connect()
def track_connect(event: WebsocketEvent) -> dict[str, Any]:
    from chalicelib.tracking.sockets import on_connect

    return on_connect(event.to_dict())


@app.on_ws_message()
def track_message(event: WebsocketEvent) -> dict[str, Any]:
    from chalicelib.tracking.sockets import on_message

    return on_message(event.to_dict())


@app.on_ws_disconnect()
def track_disconnect(event: WebsocketEvent) -> dict[str, Any]:
    from chalicelib.tracking.sockets import on_disconnect

    return on_disconnect(event.to_dict())


@app.on_sns_message(topic=NOTIFICATIONS_TOPIC_NAME, name="push_tracking")
def push_tracking(event: SNSEvent) -> dict[str, int]:
    from chalicelib.tracking.fanout import handle_sns  # deferred: only this function pays for the fan-out

    return handle_sns(event.to_dict())
