"""The integrator portal's routes: the admin's links and revocation, the exchange of a link for a session, and
the session's own routes under /api/v1/portal.

Portal routes carry no bearer authorizer (a portal session is not an API token); each one checks the session
itself (`_session`) before anything else, with the scope it needs, and reads only the session's integrator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Request, Response

from chalicelib.api.http import RouteTable, correlation_id, header, int_query, json_response
from chalicelib.api.static import file_response
from chalicelib.portal.scopes import Scope

if TYPE_CHECKING:
    from chalicelib.portal.access import PortalSession

PREFIX = "/api/v1"
routes = RouteTable(PREFIX)
pages = RouteTable(prefix="")  # the page itself, outside /api/v1


def _session(request: Request, scope: Scope = Scope.VIEW) -> PortalSession:
    from chalicelib.portal import access

    session = access.authenticate(header(request, "authorization"))
    session.require(scope)
    return session


def _base(request: Request) -> str:
    from chalicelib.api.integrators import _base_url

    return _base_url(request)


def _done(session: PortalSession, action: str, **detail: object) -> None:
    from chalicelib.portal import activity

    activity.record(session.integrator, session.session_id, action, dict(detail))


# --- admin ---------------------------------------------------------------------------------------------------------


@routes.route("/integrators/{name}/portal-links", ["POST"], admin_only=True)
def create_portal_link(request: Request, name: str) -> Response:
    from chalicelib.integrators import registry
    from chalicelib.portal import access
    from chalicelib.validation import parse_json, validate

    body = validate(parse_json(request.raw_body) if request.raw_body else {}, access.PortalLinkRequest)
    registry.require(name)
    return json_response(access.issue_link(name, body, _base(request)), 201)


@routes.route("/integrators/{name}/portal-sessions", ["DELETE"], admin_only=True)
def revoke_portal_sessions(_request: Request, name: str) -> Response:
    from chalicelib.integrators import registry
    from chalicelib.portal import access

    registry.require(name)
    return json_response(access.revoke_sessions(name))


@routes.route("/integrators/{name}/portal-activity", ["GET"], admin_only=True)
def portal_activity(request: Request, name: str) -> Response:
    from chalicelib.integrators import registry
    from chalicelib.portal import activity

    registry.require(name)
    return json_response({"items": activity.recent(name, int_query(request, "limit", 100, 1, 200))})


# --- the session ---------------------------------------------------------------------------------------------------


@routes.route("/portal/sessions", ["POST"], public=True)
def open_portal_session(request: Request) -> Response:
    from chalicelib.portal import access
    from chalicelib.validation import parse_model

    body = parse_model(request.raw_body, access.OpenSessionRequest)
    return json_response(access.open_session(body.code), 201)


@routes.route("/portal/session", ["GET"], public=True)
def portal_session(request: Request) -> Response:
    return json_response(_session(request).view())


@routes.route("/portal/session", ["DELETE"], public=True)
def end_portal_session(request: Request) -> Response:
    from chalicelib.portal import access

    access.sign_out(_session(request))
    return Response(body="", status_code=204)


@routes.route("/portal/deliveries", ["GET"], public=True)
def portal_deliveries(request: Request) -> Response:
    from chalicelib.portal import service

    session = _session(request)
    limit = int_query(request, "limit", 25, 1, 100)
    return json_response(service.list_deliveries(session.integrator, dict(request.query_params or {}), limit))


@routes.route("/portal/deliveries/{order_id}", ["GET"], public=True)
def portal_delivery(request: Request, order_id: str) -> Response:
    from chalicelib.portal import service

    return json_response(service.get_delivery(_session(request).integrator, order_id))


@routes.route("/portal/deliveries/{order_id}/retry", ["POST"], public=True)
def portal_retry_delivery(request: Request, order_id: str) -> Response:
    from chalicelib.portal import service

    session = _session(request, Scope.RETRY)
    answer = service.retry(session.integrator, order_id, correlation_id(request))
    _done(session, "retry", order_id=order_id)
    return json_response(answer, 202)


@routes.route("/portal/replay", ["POST"], public=True)
def portal_replay(request: Request) -> Response:
    from chalicelib.operations import redelivery
    from chalicelib.validation import parse_model

    session = _session(request, Scope.RETRY)
    body = parse_model(request.raw_body, redelivery.ReplayRequest)
    answer = redelivery.replay_failed(session.integrator, body, correlation_id(request))
    _done(session, "replay", since=body.since.isoformat(), until=body.until.isoformat(), count=len(answer["replayed"]))
    return json_response(answer, 202)


@routes.route("/portal/health", ["GET"], public=True)
def portal_health(request: Request) -> Response:
    from chalicelib.portal import service

    return json_response(service.health(_session(request).integrator))


@routes.route("/portal/endpoint", ["GET"], public=True)
def portal_endpoint(request: Request) -> Response:
    from chalicelib.portal import service

    return json_response(service.endpoint(_session(request).integrator, _base(request)))


@routes.route("/portal/endpoint", ["PATCH"], public=True)
def portal_change_endpoint(request: Request) -> Response:
    from chalicelib.portal import service
    from chalicelib.validation import parse_model

    session = _session(request, Scope.MANAGE_ENDPOINT)
    change = parse_model(request.raw_body, service.EndpointChange)
    answer = service.change_endpoint(session.integrator, change, _base(request))
    _done(session, "change_endpoint", **change.model_dump(mode="json", exclude_unset=True))
    return json_response(answer)


@routes.route("/portal/callback-secret", ["POST"], public=True)
def portal_rotate_secret(request: Request) -> Response:
    from chalicelib.portal import service

    session = _session(request, Scope.ROTATE_SECRET)
    answer = service.rotate_callback_secret(session.integrator, _base(request))
    _done(session, "rotate_callback_secret")
    return json_response(answer, 201)


@routes.route("/portal/test-events", ["POST"], public=True)
def portal_test_event(request: Request) -> Response:
    from chalicelib.portal import service

    session = _session(request)
    answer = service.send_test_event(session.integrator)
    _done(session, "test_event", order_id=answer["order_id"], status=answer["status"])
    return json_response(answer, 201)


@routes.route("/portal/catalog", ["GET"], public=True)
def portal_catalog(request: Request) -> Response:
    from chalicelib.portal import service

    return json_response(service.catalog(_session(request).integrator))


# --- the page ------------------------------------------------------------------------------------------------------


@pages.route("/portal", ["GET"], public=True)
def portal_page(request: Request) -> Response:
    """The portal's page: its scripts are served beside the console's (/console/portal.js), sharing api.js and
    dom.js; the link's code is read from the URL fragment by the page, never sent here."""
    return file_response(request, "portal.html")
