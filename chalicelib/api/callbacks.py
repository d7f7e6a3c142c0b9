"""The integrators' callback route (public: authenticated by the integrator's signature, not a bearer token)."""

from __future__ import annotations

from chalice.app import Request, Response

from chalicelib.api.http import RouteTable, json_response

routes = RouteTable("/api/v1")


@routes.route("/callbacks/{integrator}", ["POST"], public=True)
def receive_callback(request: Request, integrator: str) -> Response:
    from chalicelib.callbacks import receive

    status, body = receive(integrator, dict(request.headers or {}), request.raw_body or b"")
    return json_response(body, status)
