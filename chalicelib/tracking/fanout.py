"""The WebSocket fan-out: subscribed to the notifications topic with the filter `audience=customer`, it sends each
customer-facing change of an order to every page watching that order.

One change costs, whatever the number of watchers: a GetItem of the order, a Query of its deliveries (the newest
ETA), a GetItem of its revocation row and one Query per shard of watchers; then one `PostToConnection` per watcher.
Each frame is the whole public view with its sequence number (the order's `version`), so a page that missed a frame
is whole again with the next one, and a page drops any frame not newer than what it shows. A frame larger than
MAX_FRAME_BYTES (API Gateway bills 32 KB units and refuses 128 KB) is sent as a `changed` nudge: the page re-reads.

A watcher whose connection is gone (410) is removed; one whose link was revoked is disconnected and removed.
Imports are deferred to the first message: this function should not pay for the API's modules.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

MAX_FRAME_BYTES = 32 * 1024
SEND_THREADS = 16
_client_lock = threading.Lock()
_clients: dict[str, Any] = {}


@dataclass
class FanOut:
    """What one change did: frames sent, connections found gone, revoked watchers dropped."""

    sent: int = 0
    gone: int = 0
    revoked: int = 0
    frames: list[int] = field(default_factory=list)


def management_endpoint() -> str:
    """The `@connections` API: TRACKING_MANAGEMENT_URL, else the page's WebSocket URL as https."""
    from chalicelib.settings import ConfigurationError, get_settings

    settings = get_settings()
    if settings.tracking_management_url:
        return settings.tracking_management_url.rstrip("/")
    url = settings.tracking_websocket_url
    if not url:
        raise ConfigurationError("order-relay is misconfigured: TRACKING_WEBSOCKET_URL is not set")
    return url.rstrip("/").replace("wss://", "https://", 1).replace("ws://", "http://", 1)


def connections_client() -> Any:
    """One `apigatewaymanagementapi` client per endpoint and process (API Gateway's, or the local stack's)."""
    endpoint = management_endpoint()
    found = _clients.get(endpoint)
    if found is None:
        with _client_lock:
            if endpoint not in _clients:
                from botocore.config import Config
                from botocore.session import get_session

                from chalicelib.settings import get_settings

                _clients[endpoint] = get_session().create_client(
                    "apigatewaymanagementapi",
                    region_name=get_settings().region,
                    endpoint_url=endpoint,
                    config=Config(connect_timeout=2, read_timeout=5, max_pool_connections=SEND_THREADS),
                )
            found = _clients[endpoint]
    return found


def reset_client() -> None:
    _clients.clear()


def handle_sns(event: dict[str, Any]) -> dict[str, int]:
    """The Lambda entry: one SNS record per invocation; messages for the seller's eyes are ignored (the
    subscription's filter already keeps them away)."""
    totals = {"orders": 0, "sent": 0, "gone": 0}
    for record in event.get("Records", []):
        message = record.get("Sns") or {}
        attributes = {k: (v or {}).get("Value") for k, v in (message.get("MessageAttributes") or {}).items()}
        if attributes.get("audience") != "customer" or not attributes.get("order_id"):
            continue
        result = push_order(str(attributes["order_id"]), eta=_eta(message.get("Message")))
        totals["orders"] += 1
        totals["sent"] += result.sent
        totals["gone"] += result.gone
    return totals


def _eta(body: Any) -> str | None:
    try:
        data = json.loads(body) if isinstance(body, str) else {}
    except ValueError:
        return None
    eta = data.get("eta") if isinstance(data, dict) else None
    return str(eta) if eta else None


def frame_for(view: Any) -> str:
    """The frame for one version of the view: the whole view, or a nudge to re-read when it would be too big."""
    body = json.dumps({"type": "order", "seq": view.version, "order": view.model_dump(mode="json")})
    if len(body.encode()) > MAX_FRAME_BYTES:
        return json.dumps({"type": "changed", "seq": view.version})
    return body


def push_order(order_id: str, eta: str | None = None) -> FanOut:
    """Send the order's current view to its watchers. Most orders have none: that costs the shard Queries only,
    and loads neither pydantic nor Powertools (tests/unit/test_cold_start.py)."""
    from chalicelib.tracking import store

    result = FanOut()
    watchers = list(store.watchers(order_id))
    if not watchers:
        return result
    from chalicelib.db.repository import repo
    from chalicelib.observability import count, logger
    from chalicelib.tracking.view import latest_eta, tracking_view

    order = repo().orders.get(order_id)
    if order is None:
        return result
    revoked = store.revoked_before(order_id)
    view = tracking_view(order, eta=eta or latest_eta(repo().deliveries.list_states(order_id)))
    frame = frame_for(view).encode()
    client = connections_client()

    def send(watcher: store.Watcher) -> str:
        try:
            if watcher.link_issued_ms <= revoked:
                client.delete_connection(ConnectionId=watcher.connection_id)
                store.remove_watcher(watcher)
                return "revoked"
            client.post_to_connection(ConnectionId=watcher.connection_id, Data=frame)
            return "sent"
        except client.exceptions.GoneException:
            store.remove_watcher(watcher)
            return "gone"

    with ThreadPoolExecutor(max_workers=min(SEND_THREADS, len(watchers))) as pool:
        outcomes = list(pool.map(send, watchers))
    result.sent, result.gone, result.revoked = (outcomes.count(k) for k in ("sent", "gone", "revoked"))
    result.frames.append(view.version)
    count("TrackingFramesSent", result.sent)
    if result.gone:
        count("TrackingConnectionsGone", result.gone)
    logger.info(
        "tracking frames sent",
        extra={"order_id": order_id, "version": view.version, "sent": result.sent, "gone": result.gone},
    )
    return result
