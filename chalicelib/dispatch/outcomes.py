"""What delivery outcomes mean beyond the delivery: the first success dispatches the order, a failure is
reported, an expiry is reported to the seller, an order no integrator could receive fails, and an integrator
down for too long is disabled."""

from __future__ import annotations

from chalicelib.db import integrators
from chalicelib.db.repository import repo
from chalicelib.domain.circuit import Circuit
from chalicelib.domain.clock import iso
from chalicelib.domain.delivery import DeliveryStatus
from chalicelib.domain.order import Order
from chalicelib.domain.order_status import OrderStatus
from chalicelib.integrators import cache
from chalicelib.messages import DeliveryJob
from chalicelib.notifications import publisher
from chalicelib.observability import logger
from chalicelib.orders.progress import apply_status, move_from

# A delivery in one of these states will not reach its integrator unless an admin sends it again.
ENDED = (DeliveryStatus.FAILED, DeliveryStatus.SUPERSEDED, DeliveryStatus.EXPIRED)


def on_first_delivery(order: Order, integrator: str, *, event_id: str | None = None) -> None:
    """An integrator has the order: it is `dispatched` (one conditional write from the order the caller read;
    `event_id`: the order event whose outbox mark the same write clears)."""
    changed, moved = move_from(
        order, OrderStatus.DISPATCHED, source="dispatcher", message=f"sent to {integrator}", outbox_event=event_id
    )
    if moved and changed is not None:
        publisher.notify(
            changed, "order.dispatched", "Your order was sent to the shop's partners.", key="dispatched", winner=True
        )


def on_failure(order: Order, job: DeliveryJob) -> None:
    """Tell the customer, in words of our own: neither the partner's name nor what went wrong is theirs to read
    (the seller and admins see the error class and message on the delivery)."""
    publisher.notify(
        order,
        "delivery.failed",
        "We could not send your order to one of the shop's partners.",
        key=f"{job.integrator}:{job.webhook_id}:{job.round}",
        data={"integrator": job.integrator},
    )
    _fail_if_nobody_has_it(order)


def on_expired(order: Order, job: DeliveryJob, deliver_by: str) -> None:
    """Tell the seller (not the customer: the order may still reach another partner) that this partner will
    not get this event any more, once per round."""
    publisher.notify(
        order,
        "delivery.expired",
        f"{job.event.value} of order {order.id} did not reach {job.integrator} by {deliver_by}; "
        "it will not be sent again unless you retry it.",
        key=f"{job.integrator}:{job.webhook_id}:{job.round}",
        data={"integrator": job.integrator, "deliver_by": deliver_by},
        audience="seller",
    )
    _fail_if_nobody_has_it(order)


def _fail_if_nobody_has_it(order: Order) -> None:
    def nobody_has_it(current: Order) -> bool:
        states = repo().deliveries.list_states(current.id)
        return bool(states) and all(s.status in ENDED and not s.has_order for s in states)

    changed, moved = apply_status(
        order.id,
        OrderStatus.FAILED,
        source="dispatcher",
        message="no integrator could receive the order",
        when=nobody_has_it,
    )
    if moved and changed is not None:
        publisher.notify(changed, "order.failed", "Your order could not be placed.", key="failed", winner=True)


def disable_after_outage(integrator: str, circuit: Circuit) -> None:
    """The circuit has been open for CIRCUIT_DISABLE_AFTER_SECONDS: stop probing and tell the operators. Its
    waiting deliveries stay waiting; enabling the integrator again resumes them."""
    if not integrators.disable(integrator, updated_at=iso()):
        return
    cache.forget(integrator)
    logger.warning(
        "integrator disabled after a long outage", extra={"integrator": integrator, "opened_at": circuit.opened_at}
    )
    publisher.publish_operator_event(
        "integrator.disabled",
        integrator,
        f"{integrator} was disabled: unreachable since {circuit.opened_at}.",
        {"opened_at": circuit.opened_at, "last_error": circuit.last_error},
    )
