"""Public routes for the operator console page and its files. The page signs in with an admin token itself and
calls /api/v1 like any other client, so these routes need no authorizer."""

from __future__ import annotations

from chalice.app import Request, Response

from chalicelib.api.http import RouteTable
from chalicelib.api.static import file_response

routes = RouteTable(prefix="")


@routes.route("/console", ["GET"], public=True)
def console_page(request: Request) -> Response:
    path = str(dict(request.context or {}).get("path") or "")
    if path.endswith("/"):
        # API Gateway also routes /console/ here, where the page's relative URLs would miss: send the browser to
        # the canonical address (relative, so it keeps any stage prefix).
        return Response(body="", status_code=301, headers={"Location": "../console", "Cache-Control": "no-cache"})
    return file_response(request, "index.html")


@routes.route("/console/{asset}", ["GET"], public=True)
def console_asset(request: Request, asset: str) -> Response:
    return file_response(request, asset)
