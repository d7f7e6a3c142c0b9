"""Integrator admin routes: register, read, change and remove integrators, and replay their failures."""

from __future__ import annotations

from collections.abc import Mapping

from chalice.app import Request, Response

from chalicelib.api.http import RouteTable, correlation_id, int_query, json_response

PREFIX = "/api/v1"
routes = RouteTable(PREFIX)


@routes.route("/integrators", ["POST"], admin_only=True)
def create_integrator(request: Request) -> Response:
    from chalicelib.integrators import registry
    from chalicelib.integrators.models import CreateIntegratorRequest
    from chalicelib.validation import parse_model

    body = parse_model(request.raw_body, CreateIntegratorRequest)
    created = registry.create_integrator(body, callback_base=_base_url(request))
    return json_response(created, 201, {"Location": f"{PREFIX}/integrators/{created['name']}"})


@routes.route("/integrators", ["GET"], admin_only=True)
def list_integrators(request: Request) -> Response:
    from chalicelib.integrators import registry

    return json_response({"items": registry.list_integrators(callback_base=_base_url(request))})


@routes.route("/integrators/{name}", ["GET"], admin_only=True)
def get_integrator(request: Request, name: str) -> Response:
    from chalicelib.integrators import registry

    return json_response(registry.get_integrator_view(name, callback_base=_base_url(request)))


@routes.route("/integrators/{name}", ["PATCH"], admin_only=True)
def update_integrator(request: Request, name: str) -> Response:
    from chalicelib.integrators import registry
    from chalicelib.validation import parse_json

    return json_response(
        registry.update_integrator(name, parse_json(request.raw_body), callback_base=_base_url(request))
    )


@routes.route("/integrators/{name}", ["DELETE"], admin_only=True)
def delete_integrator(_request: Request, name: str) -> Response:
    from chalicelib.integrators import registry

    registry.delete_integrator(name)
    return Response(body="", status_code=204)


@routes.route("/integrators/{name}/health", ["GET"], admin_only=True)
def integrator_health(request: Request, name: str) -> Response:
    from chalicelib.integrators import registry
    from chalicelib.operations.health_report import health

    minutes = int_query(request, "minutes", 60, 1, 1440)
    registry.require(name)
    return json_response(health(name, minutes))


@routes.route("/integrators/{name}/replay", ["POST"], admin_only=True)
def replay_deliveries(request: Request, name: str) -> Response:
    from chalicelib.operations import redelivery
    from chalicelib.validation import parse_model

    body = parse_model(request.raw_body, redelivery.ReplayRequest)
    return json_response(redelivery.replay_failed(name, body, correlation_id(request)), 202)


@routes.route("/integrators/{name}/preview", ["POST"], admin_only=True)
def preview_integrator_payload(request: Request, name: str) -> Response:
    from chalicelib.integrators.models import PreviewRequest
    from chalicelib.operations.preview import preview_delivery
    from chalicelib.validation import parse_json, validate

    # No body previews the sample order through the saved template.
    body = validate(parse_json(request.raw_body) if request.raw_body else {}, PreviewRequest)
    return json_response(preview_delivery(name, body))


def _base_url(request: Request) -> str:
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
