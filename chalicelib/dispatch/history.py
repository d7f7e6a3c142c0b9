"""Reading where an order stands with each integrator, and its whole attempt log."""

from __future__ import annotations

from typing import Any

from chalicelib.db import deliveries as store
from chalicelib.db import orders as order_store
from chalicelib.domain.identity import Principal
from chalicelib.errors import NotFound


def attempts_for(order_id: str, principal: Principal) -> dict[str, Any]:
    order = order_store.get(order_id)
    if order is None or not principal.may_see(order.seller_id):
        raise NotFound(f"order {order_id} not found")
    states = [state.public() for state in store.list_states(order_id)]
    return {"order_id": order_id, "deliveries": states, "attempts": store.list_attempts(order_id)}
