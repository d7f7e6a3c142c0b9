"""The WebSocket API's three routes, as API Gateway calls them (and the local stack, with the same events).

`$connect` carries the page's link in the query string (`?token=...`: a browser cannot set headers on a
WebSocket); a refused link answers 403, which API Gateway turns into a failed handshake. `$default` takes the
page's keep-alive (API Gateway closes a connection idle for 10 minutes) and answers nothing. `$disconnect`
removes the watcher.
"""

from __future__ import annotations

from typing import Any

ACCEPTED = {"statusCode": 200}
REFUSED = {"statusCode": 403, "body": "link not valid"}


def on_connect(event: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.tracking.service import connect

    token = (event.get("queryStringParameters") or {}).get("token")
    connection_id = event["requestContext"]["connectionId"]
    return ACCEPTED if connect(token, connection_id) else REFUSED


def on_message(event: dict[str, Any]) -> dict[str, Any]:
    return ACCEPTED


def on_disconnect(event: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.tracking.service import disconnect

    disconnect(event["requestContext"]["connectionId"])
    return ACCEPTED
