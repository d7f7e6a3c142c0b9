"""A delivery as it would be sent, without sending it: what an admin checks before saving a payload template.

The body comes from the dispatcher's own `render_body` and the headers from the transport's and the auth code,
so the preview cannot drift from what is sent. Nothing leaves the service: no POST, no OAuth2 token request,
nothing queued."""

from __future__ import annotations

import json
import time
from typing import Any

from chalicelib.db.repository import repo
from chalicelib.dispatch.authentication import masked_auth_headers
from chalicelib.dispatch.transport import delivery_headers
from chalicelib.domain.delivery import webhook_id
from chalicelib.domain.sample_order import sample_order
from chalicelib.errors import InvalidInput, NotFound
from chalicelib.integrators import payload
from chalicelib.integrators.cache import load_integrator
from chalicelib.integrators.models import PayloadPreview, PreviewRequest


def preview_delivery(name: str, request: PreviewRequest) -> dict[str, Any]:
    integrator = load_integrator(name)
    if integrator is None:
        raise NotFound(f"integrator {name} not found")
    order = repo().orders.get(request.order_id) if request.order_id else sample_order()
    if order is None:
        raise NotFound(f"order {request.order_id} not found")
    candidate = "payload_template" in request.model_fields_set
    template = request.payload_template if candidate else integrator.payload_template
    try:
        body = payload.render_body(order, request.event, template)
    except payload.PayloadTemplateError as exc:
        details = [{"field": "payload_template", "message": str(exc)}]
        raise InvalidInput(f"the payload template fails for order {order.id}", details) from None
    msg_id = webhook_id(order.id, request.event, order.version, integrator.name)
    headers = {
        **delivery_headers(request.event, msg_id, int(time.time())),
        **masked_auth_headers(integrator, msg_id, body),
    }
    return PayloadPreview(event=request.event, headers=headers, body=json.loads(body)).model_dump(mode="json")
