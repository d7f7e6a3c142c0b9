"""Which integrator hears which event of an order, decided from the order, the integrator and where that
integrator stands with it. Pure: no I/O, so every rule is unit-tested without AWS."""

from __future__ import annotations

from chalicelib.domain.delivery import DeliveryState
from chalicelib.domain.events import EventType, OrderEvent
from chalicelib.domain.integrator import Integrator
from chalicelib.domain.order import Order
from chalicelib.domain.order_status import OrderStatus


def drops_unsent_create(event: OrderEvent, state: DeliveryState | None) -> bool:
    """A cancel that overtakes an `order.created` still on its way: that integrator never hears of the order."""
    return event.type is EventType.CANCELLED and state is not None and state.status.in_flight and not state.has_order


def own_state(integrator: Integrator, state: DeliveryState | None) -> DeliveryState | None:
    """The row if it belongs to this registration of the integrator; a row an earlier registration of the same
    name left is not this one's (it never received that order), so it counts as no row."""
    return state if state is not None and state.belongs_to(integrator.registration_id) else None


def plan(event: OrderEvent, order: Order, integrator: Integrator, state: DeliveryState | None) -> EventType | None:
    """The event this integrator should receive now, or None."""
    if not integrator.enabled:
        return None
    state = own_state(integrator, state)
    has_order = bool(state and state.has_order)
    # A queued retry will carry the latest content; a "pending" claim left by a crash is simply run again.
    retrying = bool(state and state.status.queued)
    if event.type is EventType.CANCELLED:
        return EventType.CANCELLED if has_order and integrator.wants(event.type, order.seller_id) else None
    if order.status == OrderStatus.CANCELLED:
        return None  # superseded: the cancel event decides what this integrator hears
    if event.type is EventType.CREATED:
        wanted = integrator.wants(event.type, order.seller_id)
        return EventType.CREATED if wanted and not has_order and not retrying else None
    if has_order and integrator.wants(event.type, order.seller_id):
        return EventType.UPDATED
    return None  # an order.created still retrying carries the latest content anyway
