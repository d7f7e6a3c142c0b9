"""The OpenAPI document route, built from the routes the app has registered."""

from __future__ import annotations

from chalice.app import Request, Response

from chalicelib.api.http import RouteTable, json_response

routes = RouteTable("/api/v1")


@routes.route("/openapi.json", ["GET"], public=True)
def openapi_document(_request: Request) -> Response:
    from chalicelib.api.openapi import build_document

    assert routes.app is not None, "attached in app.py"
    return json_response(build_document(routes.app))
