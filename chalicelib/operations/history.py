"""Reading where an order stands with each integrator, and its whole attempt log.

A seller reads every attempt's error class and the service's message, not what the integrator answered nor a
payload template's reason: those are the integrator's and the admin's (an answer can echo a request header)."""

from __future__ import annotations

from typing import Any

from chalicelib.db.repository import repo
from chalicelib.domain.identity import Principal
from chalicelib.errors import NotFound

ADMIN_ONLY = frozenset({"response_body", "detail"})


def attempts_for(order_id: str, principal: Principal) -> dict[str, Any]:
    order = repo().orders.get(order_id)
    if order is None or not principal.may_see(order.seller_id):
        raise NotFound(f"order {order_id} not found")
    states = [state.public() for state in repo().deliveries.list_states(order_id)]
    attempts = repo().deliveries.list_attempts(order_id)
    if not principal.is_admin:
        attempts = [{k: v for k, v in attempt.items() if k not in ADMIN_ONLY} for attempt in attempts]
    return {"order_id": order_id, "deliveries": states, "attempts": attempts}
