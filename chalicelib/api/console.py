"""Public routes for the operator console page and its files. The page signs in with an admin token itself and
calls /api/v1 like any other client, so these routes need no authorizer."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api.http import error_response, header
from chalicelib.console.assets import serve
from chalicelib.errors import NotFound

console = Blueprint(__name__)


def _respond(name: str) -> Response:
    request = console.current_request
    served = serve(name, header(request, "if-none-match") if request is not None else None)
    if served is None:
        return error_response(NotFound(f"no console file named {name!r}"))
    headers: dict[str, str | list[str]] = dict(served.headers)
    return Response(body=served.body, status_code=served.status, headers=headers)


@console.route("/console", methods=["GET"])
def console_page() -> Response:
    request = console.current_request
    path = str(dict(request.context or {}).get("path") or "") if request is not None else ""
    if path.endswith("/"):
        # API Gateway also routes /console/ here, where the page's relative URLs would miss: send the browser to
        # the canonical address (relative, so it keeps any stage prefix).
        return Response(body="", status_code=301, headers={"Location": "../console", "Cache-Control": "no-cache"})
    return _respond("index.html")


@console.route("/console/{asset}", methods=["GET"])
def console_asset(asset: str) -> Response:
    return _respond(asset)
