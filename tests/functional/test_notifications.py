"""Notifications: the mover of a status publishes directly (one request); the queued retry of a failed publish,
which SQS may deliver more than once, still pushes once."""

from __future__ import annotations

import json
from typing import Any

from tests.support.aws import notifications
from tools.poller import drain


def test_a_queued_notification_delivered_twice_is_pushed_once(
    app: Any, sqs: Any, aws: dict[str, str], phone: str
) -> None:
    from chalicelib.messages import Notification

    note = Notification(
        notification_id="ord_1:order.ready:ready",
        event="order.ready",
        order_id="ord_1",
        user_id="u-1",
        seller_id="s-1",
        seller_name="Falafel House",
        text="Your order is ready.",
    )
    for _ in range(2):  # a retry message SQS delivers twice
        sqs.send_message(QueueUrl=aws["ORDERS_QUEUE_URL"], MessageBody=note.model_dump_json())
    assert all(not batch.failed_ids for batch in drain(app, sqs, aws["ORDERS_QUEUE_URL"]))
    pushed = notifications(phone)
    assert [n["MessageAttributes"]["event"]["Value"] for n in pushed] == ["order.ready"]
    assert json.loads(pushed[0]["Message"])["body"] == "Your order is ready."
