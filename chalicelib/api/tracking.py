"""Live tracking for web customers: the public page, its JSON, and a seller's revocation of an order's links.

The page (`GET /track`, the token in the URL's fragment) and `GET /api/v1/track` (the token in the
`X-Tracking-Token` header) need no bearer token: the link is the capability. The page is served like the console
(same files machinery, same strict headers), with `connect-src` widened to the WebSocket API only.
"""

from __future__ import annotations

from collections.abc import Mapping

from chalice.app import Request, Response

from chalicelib.api.http import RouteTable, header, json_response, principal_of
from chalicelib.api.static import file_response

routes = RouteTable("/api/v1")
pages = RouteTable(prefix="")  # the page itself, outside /api/v1


def public_base(request: Request) -> str:
    """This API's own address as the caller reached it (PUBLIC_BASE_URL wins where set)."""
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


@routes.route("/track", ["GET"], public=True)
def read_tracking(request: Request) -> Response:
    from chalicelib.tracking.service import read_tracking as read

    return json_response(read(header(request, "x-tracking-token")), headers={"Cache-Control": "no-store"})


@routes.route("/orders/{order_id}/tracking-links", ["POST"])
def revoke_tracking_links(request: Request, order_id: str) -> Response:
    from chalicelib.tracking.service import revoke_links

    return json_response(revoke_links(order_id, principal_of(request), public_base(request)), 201)


def tracking_csp(websocket_url: str | None) -> str:
    """The console's policy with the WebSocket API's origin added to connect-src (and nothing else)."""
    from urllib.parse import urlsplit

    from chalicelib.console.assets import CONTENT_SECURITY_POLICY

    if not websocket_url:
        return CONTENT_SECURITY_POLICY
    parts = urlsplit(websocket_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return CONTENT_SECURITY_POLICY.replace("connect-src 'self'", f"connect-src 'self' {origin}")


@pages.route("/track", ["GET"], public=True)
def tracking_page(request: Request) -> Response:
    from chalicelib.settings import get_settings

    return file_response(request, "track.html", policy=tracking_csp(get_settings().tracking_websocket_url))
