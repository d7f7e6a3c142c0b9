"""Sending failed (or expired) deliveries again on an admin's request: one delivery, or an integrator's
failures after an outage. A new round keeps the webhook id, so the integrator can still deduplicate."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator, model_validator

from chalicelib import queue
from chalicelib.db import integrators as configs
from chalicelib.db.concurrency import StaleWrite
from chalicelib.db.repository import repo
from chalicelib.domain.clock import iso
from chalicelib.domain.delivery import DeliveryStatus
from chalicelib.domain.events import EventType
from chalicelib.domain.integrator import IntegratorConfig
from chalicelib.domain.order_status import OrderStatus
from chalicelib.errors import Conflict, NotFound
from chalicelib.messages import DeliveryJob


def retry_failed(
    order_id: str, integrator: str, correlation_id: str | None, *, config: IntegratorConfig | None = None
) -> dict[str, Any]:
    """Start a new round of attempts for a failed or expired delivery (a fresh deadline counts from now), for the
    registration that made it only (`config`: the integrator as already read, if it was)."""
    order = repo().orders.get(order_id)
    state = repo().deliveries.get_state(order_id, integrator)
    if order is None or state is None:
        raise NotFound(f"no delivery of order {order_id} to {integrator}")
    config = config or configs.get(integrator)
    if config is None:
        raise NotFound(f"integrator {integrator} not found")
    if not state.belongs_to(config.registration_id):
        raise Conflict(
            f"this delivery belongs to an earlier registration of {integrator}, since deleted; "
            "the integrator registered now under that name never had this order"
        )
    if state.status not in (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED):
        raise Conflict(f"delivery is {state.status}; only a failed or expired delivery can be retried")
    if order.status == OrderStatus.CANCELLED and state.event is not EventType.CANCELLED:
        raise Conflict("order is cancelled; its earlier events are no longer sent")
    next_round = state.revision + 1
    job = DeliveryJob(
        order_id=order_id,
        integrator=integrator,
        event=state.event,
        version=order.version,
        webhook_id=state.webhook_id,
        attempt=1,
        round=next_round,
        correlation_id=correlation_id,
        raised_at=iso(),
        registration_id=state.registration_id,
    )
    try:
        repo().deliveries.set_fields(
            state, status=DeliveryStatus.RETRYING.value, updated_at=iso(), last_error="retry requested"
        )
    except StaleWrite:
        raise Conflict("delivery changed meanwhile; retry the request") from None
    queue.send(job, correlation_id=correlation_id)
    return {
        "order_id": order_id,
        "integrator": integrator,
        "status": DeliveryStatus.RETRYING.value,
        "round": next_round,
    }


class ReplayRequest(BaseModel):
    """Replay an integrator's failed deliveries after an outage: every one last changed in [since, until]."""

    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime
    until: AwareDatetime

    @field_validator("since", "until", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        # ISO 8601 text, as the document says; a bare number would be read as seconds since 1970.
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 date-time with a time zone")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ReplayRequest:
        if self.until <= self.since:
            raise ValueError("until must be after since")
        return self


def replay_failed(integrator: str, request: ReplayRequest, correlation_id: str | None) -> dict[str, Any]:
    config = configs.get(integrator)
    if config is None:
        raise NotFound(f"integrator {integrator} not found")
    failed = repo().deliveries.find(integrator, DeliveryStatus.FAILED.value, iso(request.since), iso(request.until))
    replayed, skipped = [], []
    for state in failed:
        try:
            retry_failed(state.order_id, integrator, correlation_id, config=config)
            replayed.append(state.order_id)
        except (Conflict, NotFound) as exc:
            skipped.append({"order_id": state.order_id, "reason": exc.message})
    return {"integrator": integrator, "replayed": replayed, "skipped": skipped}
