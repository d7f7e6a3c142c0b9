"""OpenAPI 3.1 generated from the routes Chalice knows and the pydantic models the handlers validate with,
so the document cannot list a route that does not exist or a schema the code does not enforce."""

from __future__ import annotations

from functools import cache
from typing import Any

from chalice.app import Chalice
from pydantic import BaseModel

from chalicelib.callbacks import CallbackRequest
from chalicelib.integrators.models import (
    CreateIntegratorRequest,
    IntegratorView,
    PayloadPreview,
    PreviewRequest,
    UpdateIntegratorRequest,
)
from chalicelib.operations.redelivery import ReplayRequest
from chalicelib.orders.models import CreateOrderRequest, ErrorResponse, OrderList, OrderPatch, OrderResource
from chalicelib.portal import catalog
from chalicelib.portal.access import OpenSessionRequest, PortalLinkRequest
from chalicelib.portal.service import EndpointChange
from chalicelib.tokens import CreateTokenRequest, IssuedToken
from chalicelib.tracking.view import LinkIssued, TrackingDocument

# view name -> (summary, request model, success status, response model)
OPERATIONS: dict[str, tuple[str, type[BaseModel] | None, int, type[BaseModel] | None]] = {
    "create_order": ("Create an order (optional Idempotency-Key header)", CreateOrderRequest, 201, OrderResource),
    "list_orders": ("List orders, newest first", None, 200, OrderList),
    "get_order": ("Get one order with its deliveries and timeline", None, 200, OrderResource),
    "update_order": ("Change an order with a JSON merge patch (If-Match: version)", OrderPatch, 200, OrderResource),
    "cancel_order": ("Cancel an order; integrators that have it are told", None, 200, OrderResource),
    "list_deliveries": ("Every delivery attempt of an order", None, 200, None),
    "read_tracking": (
        "The public tracking view of one order, for the holder of its tracking link (header X-Tracking-Token; no "
        "bearer token). Any bad link answers 404 link_not_valid",
        None,
        200,
        TrackingDocument,
    ),
    "revoke_tracking_links": (
        "Refuse every tracking link of the order issued so far and answer a new one (the order's seller or admin)",
        None,
        201,
        LinkIssued,
    ),
    "retry_delivery": ("Send a failed delivery again (admin)", None, 202, None),
    "create_token": ("Issue an API token, shown once (admin)", CreateTokenRequest, 201, IssuedToken),
    "list_tokens": ("List tokens without their secrets (admin)", None, 200, None),
    "revoke_token": (
        "Revoke a token; `bootstrap-admin` disables the bootstrap admin token. 409 for the last admin token that "
        "works and does not expire (admin)",
        None,
        204,
        None,
    ),
    "create_integrator": ("Register an integrator (admin)", CreateIntegratorRequest, 201, IntegratorView),
    "list_integrators": ("List integrators, secrets masked (admin)", None, 200, None),
    "get_integrator": ("Get one integrator, secrets masked (admin)", None, 200, IntegratorView),
    "update_integrator": ("Change an integrator (admin)", UpdateIntegratorRequest, 200, IntegratorView),
    "delete_integrator": ("Remove an integrator (admin)", None, 204, None),
    "integrator_health": ("Circuit, waiting deliveries and the last minutes' attempts (admin)", None, 200, None),
    "replay_deliveries": (
        "Re-send an integrator's failed deliveries from a time range (admin)",
        ReplayRequest,
        202,
        None,
    ),
    "preview_integrator_payload": (
        "Show a delivery's headers (secrets masked) and body for an order or the sample order, through the saved "
        "or a candidate payload template; sends nothing (admin)",
        PreviewRequest,
        200,
        PayloadPreview,
    ),
    "receive_callback": ("Status update from an integrator, Standard Webhooks signed", CallbackRequest, 200, None),
    "create_portal_link": (
        "Issue a single-use, short-lived link into one integrator's portal with scopes (admin)",
        PortalLinkRequest,
        201,
        None,
    ),
    "revoke_portal_sessions": ("End every portal session and unopened link of an integrator (admin)", None, 200, None),
    "portal_activity": ("What the integrator's portal sessions did, newest first (admin)", None, 200, None),
    "open_portal_session": ("Exchange a portal link's code for a session (once)", OpenSessionRequest, 201, None),
    "portal_session": ("The portal session: integrator, scopes, expiry", None, 200, None),
    "end_portal_session": ("Sign out of the portal", None, 204, None),
    "portal_deliveries": (
        "The integrator's deliveries, newest first (`status`, `since`, `until`, `limit`, `cursor`)",
        None,
        200,
        None,
    ),
    "portal_delivery": ("One delivery with every attempt: what was sent and answered", None, 200, None),
    "portal_retry_delivery": ("Send a failed or expired delivery again (scope retry)", None, 202, None),
    "portal_replay": ("Send failed deliveries from a time range again (scope retry)", ReplayRequest, 202, None),
    "portal_health": ("Success rate, p95 latency, circuit, waiting count, rate limit", None, 200, None),
    "portal_endpoint": ("The integrator's endpoint settings", None, 200, None),
    "portal_change_endpoint": (
        "Change the endpoint's URL, events or timeout (scope manage_endpoint)",
        EndpointChange,
        200,
        None,
    ),
    "portal_rotate_secret": (
        "Rotate the callback secret, shown once; the previous one stays valid until the next rotation "
        "(scope rotate_secret)",
        None,
        201,
        None,
    ),
    "portal_test_event": ("Send a test order.created (marked X-Order-Relay-Test) now", None, 201, None),
    "portal_catalog": ("The event catalog and this integrator's body for the sample order", None, 200, None),
    "portal_page": ("The integrator portal (HTML; opens a link's session itself)", None, 200, None),
    "openapi_document": ("This document", None, 200, None),
    "console_page": ("The operator console (HTML; signs in with an admin token itself)", None, 200, None),
    "console_asset": ("The operator console's script modules, style sheet and icon", None, 200, None),
}
# Operations that also accept no body at all (a preview of the sample order through the saved template).
OPTIONAL_BODY = frozenset({"preview_integrator_payload", "create_portal_link"})
# Routes under /api/v1/portal that check a portal session themselves (not the bearer authorizer).
PORTAL_SESSION = frozenset(name for name in OPERATIONS if name.startswith("portal_") and name != "portal_page") | {
    "end_portal_session"
}
ERRORS = {
    "400": "Malformed request",
    "401": "Missing token",
    "403": "Not allowed",
    "404": "Not found",
    "409": "Conflict with the current state",
    "412": "Stale If-Match version",
    "413": "Body too large",
    "422": "Invalid fields",
    "500": "Unexpected fault (the error carries a correlation id)",
}
# Answers only some operations give, besides ERRORS.
OPERATION_ERRORS = {
    "create_order": {"429": "Over the seller's create quota (SELLER_ORDERS_PER_SECOND)"},
    "receive_callback": {
        "429": "More callbacks about one order within the 5-minute replay window than can be remembered; "
        "send it again after Retry-After seconds"
    },
    "portal_test_event": {"429": "The integrator's rate limit has no room now (Retry-After)"},
}
# Headers an error answer carries on some operations: how a client recovers without guessing.
ERROR_HEADERS = {
    ("receive_callback", "429"): {
        "Retry-After": {
            "description": "Seconds until the oldest remembered callback about this order leaves the replay window",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    ("create_order", "409"): {
        "Retry-After": {
            "description": "Seconds to wait before repeating a create whose Idempotency-Key is still in progress",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    ("create_order", "429"): {
        "Retry-After": {
            "description": "Seconds until the seller's quota has room again",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def _ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(view_name: str, secured: bool, schemas: dict[str, Any]) -> dict[str, Any]:
    summary, request, status, response = OPERATIONS.get(view_name, (view_name.replace("_", " "), None, 200, None))
    error_ref = _ref(ErrorResponse, schemas)
    content = {"application/json": {"schema": _ref(response, schemas)}} if response else None
    operation: dict[str, Any] = {
        "operationId": view_name,
        "summary": summary,
        "responses": {
            str(status): {"description": "Success", **({"content": content} if content else {})},
            **{
                code: {
                    "description": text,
                    "content": {"application/json": {"schema": error_ref}},
                    **({"headers": ERROR_HEADERS[view_name, code]} if (view_name, code) in ERROR_HEADERS else {}),
                }
                for code, text in {**ERRORS, **OPERATION_ERRORS.get(view_name, {})}.items()
            },
        },
    }
    if request is not None:
        operation["requestBody"] = {
            "required": view_name not in OPTIONAL_BODY,
            "content": {"application/json": {"schema": _ref(request, schemas)}},
        }
    operation["security"] = (
        [{"bearer": []}] if secured else [{"portalSession": []}] if view_name in PORTAL_SESSION else []
    )
    return operation


@cache
def _build(app: Chalice) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for path, methods in sorted(app.routes.items()):
        for method, entry in methods.items():
            params = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in entry.view_args
            ]
            operation = _operation(entry.view_name, entry.authorizer is not None, schemas)
            if params:
                operation["parameters"] = params
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "order-relay",
            "version": "1.0.0",
            "description": "Orders from POS tablets and apps, relayed to delivery, loyalty and "
            "food-ordering integrators.",
        },
        "paths": paths,
        "webhooks": catalog.webhooks(),
        "components": {
            "schemas": _with_callback_statuses(schemas),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "portalSession": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A portal session token (`prt_...`) from POST /api/v1/portal/sessions",
                },
            },
        },
    }


def _with_callback_statuses(schemas: dict[str, Any]) -> dict[str, Any]:
    """The statuses a partner may report on its callback, named in the callback's schema (others are kept on the
    delivery but move no order)."""
    status = schemas.get("CallbackRequest", {}).get("properties", {}).get("status")
    if status is not None:
        status["examples"] = catalog.reportable_statuses()
        status["description"] = "One of the examples moves the order forward; another status is kept, not applied"
    return schemas


def build_document(app: Chalice) -> dict[str, Any]:
    return _build(app)
