"""Which integrator hears which event: the planner's rules, without AWS."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.dispatch.planner import drops_unsent_create, plan
from chalicelib.domain.delivery import DeliveryState, DeliveryStatus
from chalicelib.domain.events import EventType, OrderEvent
from chalicelib.domain.integrator import Integrator
from chalicelib.domain.order import Order
from chalicelib.domain.order_status import OrderStatus
from chalicelib.domain.sample_order import sample_order


def integrator(**kw: Any) -> Integrator:
    values: dict[str, Any] = {
        "name": "p",
        "url": "https://p.example/o",
        "auth_type": "none",
        "auth": {},
        "events": list(EventType),
        "enabled": True,
        "timeout_seconds": 5.0,
        "seller_ids": None,
    }
    return Integrator(**{**values, **kw})


def order(status: OrderStatus = OrderStatus.PENDING) -> Order:
    return sample_order().model_copy(update={"id": "ord_1", "status": status, "version": 3})


def state(status: DeliveryStatus, *, has_order: bool) -> DeliveryState:
    return DeliveryState(
        order_id="ord_1",
        integrator="p",
        status=status,
        event=EventType.CREATED,
        webhook_id="msg_x",
        has_order=has_order,
        updated_at="2026-11-25T10:00:00.000Z",
    )


def event(kind: EventType) -> OrderEvent:
    return OrderEvent(type=kind, order_id="ord_1", version=3)


def test_a_new_order_goes_to_every_integrator_that_wants_it() -> None:
    assert plan(event(EventType.CREATED), order(), integrator(), None) is EventType.CREATED
    assert plan(event(EventType.CREATED), order(), integrator(enabled=False), None) is None
    assert plan(event(EventType.CREATED), order(), integrator(seller_ids=["s-2"]), None) is None
    assert plan(event(EventType.CREATED), order(), integrator(events=["order.updated"]), None) is None


def test_a_create_is_not_sent_twice() -> None:
    delivered = state(DeliveryStatus.DELIVERED, has_order=True)
    retrying = state(DeliveryStatus.RETRYING, has_order=False)
    assert plan(event(EventType.CREATED), order(), integrator(), delivered) is None
    assert plan(event(EventType.CREATED), order(), integrator(), retrying) is None
    # A "pending" claim left by a crashed dispatcher is run again (same webhook id).
    crashed = state(DeliveryStatus.PENDING, has_order=False)
    assert plan(event(EventType.CREATED), order(), integrator(), crashed) is EventType.CREATED


def test_updates_go_only_to_integrators_that_have_the_order() -> None:
    has_it = state(DeliveryStatus.DELIVERED, has_order=True)
    assert plan(event(EventType.UPDATED), order(), integrator(), has_it) is EventType.UPDATED
    assert plan(event(EventType.UPDATED), order(), integrator(), None) is None
    still_retrying = state(DeliveryStatus.RETRYING, has_order=False)
    assert plan(event(EventType.UPDATED), order(), integrator(), still_retrying) is None


@pytest.mark.parametrize("kind", [EventType.CREATED, EventType.UPDATED])
def test_a_cancelled_order_sends_no_earlier_event(kind: EventType) -> None:
    has_it = state(DeliveryStatus.DELIVERED, has_order=True)
    assert plan(event(kind), order(OrderStatus.CANCELLED), integrator(), has_it) is None


def test_a_cancel_reaches_only_integrators_that_have_the_order() -> None:
    cancel = event(EventType.CANCELLED)
    has_it = state(DeliveryStatus.DELIVERED, has_order=True)
    waiting = state(DeliveryStatus.RETRYING, has_order=False)
    assert plan(cancel, order(OrderStatus.CANCELLED), integrator(), has_it) is EventType.CANCELLED
    assert plan(cancel, order(OrderStatus.CANCELLED), integrator(), waiting) is None
    assert drops_unsent_create(cancel, waiting)
    assert not drops_unsent_create(cancel, has_it)
    assert not drops_unsent_create(event(EventType.UPDATED), waiting)


def test_a_row_an_earlier_registration_of_the_name_left_counts_as_no_row() -> None:
    """Issue 20: a name deleted and registered again does not inherit the orders its earlier registration had."""
    had_it = state(DeliveryStatus.DELIVERED, has_order=True).model_copy(update={"registration_id": "reg_old"})
    current, legacy = integrator(registration_id="reg_new"), integrator()
    for kind, status in ((EventType.UPDATED, OrderStatus.PENDING), (EventType.CANCELLED, OrderStatus.CANCELLED)):
        assert plan(event(kind), order(status), current, had_it) is None
        assert plan(event(kind), order(status), integrator(registration_id="reg_old"), had_it) is not None
    # Rows written before registrations had ids belong only to an integrator that has none either.
    unmarked = state(DeliveryStatus.DELIVERED, has_order=True)
    assert plan(event(EventType.UPDATED), order(), legacy, unmarked) is EventType.UPDATED
    assert plan(event(EventType.UPDATED), order(), current, unmarked) is None
