"""The queue contract: every message kind parses to its model, anything else is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chalicelib.domain.events import EventType, OrderEvent
from chalicelib.messages import DeliveryJob, Notification, parse_message


def test_each_kind_parses_to_its_model() -> None:
    event = OrderEvent(type=EventType.CREATED, order_id="ord_1", version=1)
    job = DeliveryJob(order_id="ord_1", integrator="p", event=EventType.CREATED, version=1, webhook_id="msg_1")
    note = Notification(
        notification_id="n", event="order.dispatched", order_id="ord_1", user_id="u", seller_id="s",
        seller_name="Shop", text="sent",
    )  # fmt: skip
    for message in (event, job, note):
        assert parse_message(message.model_dump_json()) == message


def test_kinds_on_the_wire_never_change() -> None:
    """Messages wait in the queue across deploys: a renamed kind would strand them."""
    assert OrderEvent.model_fields["kind"].default == "order_event"
    assert DeliveryJob.model_fields["kind"].default == "delivery_retry"
    assert Notification.model_fields["kind"].default == "notification"


@pytest.mark.parametrize("body", ["{not json", '{"kind": "carrier_pigeon"}', '{"kind": "order_event"}', "[]"])
def test_unreadable_messages_are_refused(body: str) -> None:
    with pytest.raises(ValidationError):
        parse_message(body)
