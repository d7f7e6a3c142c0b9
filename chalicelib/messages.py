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
    # When the event was raised (a new round: when the admin asked): the delivery deadline counts from here.
    # Optional so that jobs queued before deadlines existed still parse; None means no deadline.
    raised_at: str | None = None
    # The integrator registration the job was made for: a job left by a registration since deleted is not sent to
    # a later registration of the same name. None: made for a registration without an id (or before they had one).
    registration_id: str | None = None

    @property
    def run_key(self) -> list[int]:
        """Orders the jobs of one delivery: a later round, attempt or resumption sorts after an earlier one."""
        return [self.round, self.attempt, self.resume]


class AckCheck(BaseModel):
    """Look, when an acknowledgement window closes, whether the integrator called back in time. Windows longer
    than SQS's 15-minute delay are covered by re-queueing the check until it is due."""

    kind: Literal["ack_check"] = "ack_check"
    order_id: str
    integrator: str
    due_at: str
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
    # Who it is for (SNS attribute `audience`): customer pushes, or seller-only alerts such as an overdue ack.
    audience: Literal["customer", "seller"] = "customer"


class DrainWaiting(BaseModel):
    """Resume an integrator's waiting deliveries, oldest first (its circuit closed, or it was enabled again)."""

    kind: Literal["drain_waiting"] = "drain_waiting"
    integrator: str
    after: str | None = None  # the next page starts after this `updated_at`
    correlation_id: str | None = None


class ProbeCircuit(BaseModel):
    """An open circuit's cool-down is over: send its oldest waiting delivery as the probe."""

    kind: Literal["probe_circuit"] = "probe_circuit"
    integrator: str
    correlation_id: str | None = None


AnyMessage = OrderEvent | DeliveryJob | AckCheck | Notification | DrainWaiting | ProbeCircuit
QueueMessage = Annotated[AnyMessage, Field(discriminator="kind")]
_adapter: TypeAdapter[AnyMessage] = TypeAdapter(QueueMessage)


def parse_message(body: str) -> AnyMessage:
    """Raises pydantic.ValidationError for a body that is not one of the known messages."""
    return _adapter.validate_json(body)


__all__ = [
    "AckCheck",
    "AnyMessage",
    "DeliveryJob",
    "DrainWaiting",
    "Notification",
    "OrderEvent",
    "ProbeCircuit",
    "QueueMessage",
    "parse_message",
]
