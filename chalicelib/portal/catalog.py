"""The event catalog: every webhook the service sends, its headers and its body's JSON Schema. The same data
serves the portal's catalog page and the OpenAPI document's `webhooks` section, so the two cannot disagree."""

from __future__ import annotations

from typing import Any

from chalicelib.domain import order_status

TEST_HEADER = "X-Order-Relay-Test"
EVENTS: dict[str, str] = {
    "order.created": "A new order for you. Answer 2xx to accept it; then report its progress on your callback URL.",
    "order.updated": "An order you have changed (a note, its items); the body is the whole order as it is now.",
    "order.cancelled": "An order you have was cancelled; the body is the order as it was when cancelled.",
    "order.created.test": (
        f"A test event sent from your portal: an `order.created` for the sample order, signed and authenticated "
        f"as a real one, with `{TEST_HEADER}: true`. No such order exists; do not fulfil it."
    ),
}
HEADERS: list[tuple[str, str, dict[str, Any]]] = [
    ("webhook-id", "Stable across retries of one delivery: deduplicate on it", {"type": "string"}),
    ("webhook-timestamp", "Unix seconds when the attempt was signed", {"type": "string", "pattern": "^[0-9]+$"}),
    (
        "webhook-signature",
        "hmac integrators: space-separated `v1,<base64 HMAC-SHA256>` of `{webhook-id}.{webhook-timestamp}.{body}` "
        "with each current secret (Standard Webhooks)",
        {"type": "string"},
    ),
    (
        "X-Order-Event",
        "The event",
        {"type": "string", "enum": ["order.created", "order.updated", "order.cancelled"]},
    ),
    (
        "Authorization",
        "bearer integrators: `Bearer <your token>`; oauth2_client_credentials: `Bearer <token from your token URL>`",
        {"type": "string"},
    ),
    ("X-API-Key", "api_key integrators: your key, in the header you chose (X-API-Key unless set)", {"type": "string"}),
]
RESPONSES = {
    "2XX": "Accepted: the delivery is done (a JSON body with `external_id` or `id` is kept as your reference)",
    "408": "Retried later",
    "429": "Retried later, after `Retry-After` when given",
    "4XX": "Any other 4xx: the delivery fails at once, without retry",
    "5XX": "Retried with growing delays, up to the configured number of attempts",
}


def _party() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "name", "lat", "lng"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "phone": {"type": ["string", "null"]},
            "email": {"type": ["string", "null"]},
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "lng": {"type": "number", "minimum": -180, "maximum": 180},
        },
    }


def body_schema() -> dict[str, Any]:
    """The seed-shaped body sent when an integrator has no payload template (with one, its template's object)."""
    item = {
        "type": "object",
        "required": ["id", "name", "quantity"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "quantity": {"type": "integer"}},
    }
    order = {
        "type": "object",
        "required": ["id", "datetime", "timezone", "items"],
        "properties": {
            "id": {"type": "string"},
            "datetime": {"type": "string", "format": "date-time"},
            "timezone": {"type": "string", "description": "IANA time zone name"},
            "user_note": {"type": "string"},
            "items": {"type": "array", "items": item, "minItems": 1},
        },
    }
    return {
        "type": "object",
        "required": ["user", "seller", "order"],
        "properties": {"user": _party(), "seller": _party(), "order": order},
        "description": "Without a payload template. With one, the body is the object your template yields.",
    }


def reportable_statuses() -> list[str]:
    return sorted(status.value for status in order_status.REPORTABLE)


def events() -> list[dict[str, Any]]:
    """The catalog as the portal shows it."""
    return [
        {
            "event": name,
            "description": description,
            "headers": [{"name": header, "description": text} for header, text, _ in HEADERS]
            + ([{"name": TEST_HEADER, "description": "true: a test event"}] if name.endswith(".test") else []),
            "responses": RESPONSES,
        }
        for name, description in EVENTS.items()
    ] + [
        {
            "event": "callback",
            "description": "What you send back: POST your callback URL, signed with your callback secret "
            "(Standard Webhooks), body {order_id, status, external_id?, eta?, message?}.",
            "statuses": reportable_statuses(),
        }
    ]


def webhooks() -> dict[str, Any]:
    """The OpenAPI 3.1 `webhooks` section."""
    section: dict[str, Any] = {}
    for name, description in EVENTS.items():
        headers = [
            {
                "name": header,
                "in": "header",
                "required": header in ("webhook-id", "webhook-timestamp"),
                "description": text,
                "schema": schema,
            }
            for header, text, schema in HEADERS
        ]
        if name.endswith(".test"):
            headers.append(
                {"name": TEST_HEADER, "in": "header", "required": True, "schema": {"type": "string", "const": "true"}}
            )
        section[name] = {
            "post": {
                "operationId": f"webhook_{name.replace('.', '_')}",
                "summary": name,
                "description": description,
                "parameters": headers,
                "requestBody": {"required": True, "content": {"application/json": {"schema": body_schema()}}},
                "responses": {code: {"description": text} for code, text in RESPONSES.items()},
            }
        }
    return section
