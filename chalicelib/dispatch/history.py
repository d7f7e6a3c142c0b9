"""Reading the attempt log and re-sending a failed delivery on an admin's request."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, model_validator

from chalicelib import queue
from chalicelib.db import deliveries as store
from chalicelib.db import orders as order_store
from chalicelib.dispatch.worker import DeliveryJob
from chalicelib.errors import Conflict, NotFound
from chalicelib.orders.domain import EventType, Principal, iso
from chalicelib.orders.status import OrderStatus


def attempts_for(order_id: str, principal: Principal) -> dict[str, Any]:
    order = order_store.get(order_id)
    if order is None or not principal.may_see(order.seller_id):
        raise NotFound(f"order {order_id} not found")
    hidden = ("delivered_webhook_ids", "revision", "order_id")
    states = [{k: v for k, v in state.items() if k not in hidden} for state in store.list_states(order_id)]
    return {"order_id": order_id, "deliveries": states, "attempts": store.list_attempts(order_id)}


def retry_failed(order_id: str, integrator: str, correlation_id: str | None) -> dict[str, Any]:
    """Start a new round of attempts for a failed delivery (the webhook id stays, so the integrator can still
    deduplicate)."""
    order = order_store.get(order_id)
    state = store.get_state(order_id, integrator)
    if order is None or state is None:
        raise NotFound(f"no delivery of order {order_id} to {integrator}")
    if state["status"] != "failed":
        raise Conflict(f"delivery is {state['status']}; only a failed delivery can be retried")
    if order.status == OrderStatus.CANCELLED and state["event"] != EventType.CANCELLED:
        raise Conflict("order is cancelled; its earlier events are no longer sent")
    next_round = int(state["revision"]) + 1
    job = DeliveryJob(
        order_id=order_id,
        integrator=integrator,
        event=EventType(state["event"]),
        version=order.version,
        webhook_id=state["webhook_id"],
        attempt=1,
        round=next_round,
        correlation_id=correlation_id,
    )
    if not store.set_fields(
        order_id, integrator, state["revision"], status="retrying", updated_at=iso(), last_error="retry requested"
    ):
        raise Conflict("delivery changed meanwhile; retry the request")
    queue.send(job, correlation_id=correlation_id)
    return {"order_id": order_id, "integrator": integrator, "status": "retrying", "round": next_round}


class ReplayRequest(BaseModel):
    """Replay an integrator's failed deliveries after an outage: every one last changed in [since, until]."""

    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime
    until: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> ReplayRequest:
        if self.until <= self.since:
            raise ValueError("until must be after since")
        return self


def replay_failed(integrator: str, request: ReplayRequest, correlation_id: str | None) -> dict[str, Any]:
    failed = store.find(integrator, "failed", iso(request.since), iso(request.until))
    replayed, skipped = [], []
    for state in failed:
        try:
            retry_failed(state["order_id"], integrator, correlation_id)
            replayed.append(state["order_id"])
        except (Conflict, NotFound) as exc:
            skipped.append({"order_id": state["order_id"], "reason": exc.message})
    return {"integrator": integrator, "replayed": replayed, "skipped": skipped}
