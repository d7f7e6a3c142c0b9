"""The orders-queue contract: every message the dispatcher consumes, one discriminated union on `kind`.

A new message type is a model here plus a branch in `dispatch.batch`. The `kind` values are on the wire (messages
may wait in the queue across a deploy): rename a class freely, never a `kind`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from chalicelib.domain.events import EventType, OrderEvent


class DeliveryJob(BaseModel):
    """One attempt to get one event of one order to one integrator (queued with a delay for each retry)."""

    kind: Literal["delivery_retry"] = "delivery_retry"
    order_id: str
    integrator: str
    event: EventType
    version: int
    webhook_id: str
    attempt: int = 1
    round: int = 1
    resume: int = 0  # counts resumptions after a failed probe, so the resumed attempt is not a replay
    correlation_id: str | None = None


class Notification(BaseModel):
    """A customer or seller notification; queued again when a publish failed."""

    kind: Literal["notification"] = "notification"
    notification_id: str
    event: str
    order_id: str
    user_id: str
    seller_id: str
    seller_name: str
    text: str
    data: dict[str, Any] = {}


class DrainWaiting(BaseModel):
    """Resume an integrator's waiting deliveries, oldest first (its circuit closed, or it was enabled again)."""

    kind: Literal["drain_waiting"] = "drain_waiting"
    integrator: str
    correlation_id: str | None = None


class ProbeCircuit(BaseModel):
    """An open circuit's cool-down is over: send its oldest waiting delivery as the probe."""

    kind: Literal["probe_circuit"] = "probe_circuit"
    integrator: str
    correlation_id: str | None = None


AnyMessage = OrderEvent | DeliveryJob | Notification | DrainWaiting | ProbeCircuit
QueueMessage = Annotated[AnyMessage, Field(discriminator="kind")]
_adapter: TypeAdapter[AnyMessage] = TypeAdapter(QueueMessage)


def parse_message(body: str) -> AnyMessage:
    """Raises pydantic.ValidationError for a body that is not one of the known messages."""
    return _adapter.validate_json(body)


__all__ = [
    "AnyMessage",
    "DeliveryJob",
    "DrainWaiting",
    "Notification",
    "OrderEvent",
    "ProbeCircuit",
    "QueueMessage",
    "parse_message",
]
