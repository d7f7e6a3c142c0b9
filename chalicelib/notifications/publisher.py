"""Customer notifications on the SNS topic: once per change, mobile-push ready, retried rather than dropped.

Each notification has a stable id (order, event, what changed); publishing runs through Idempotency on that
id, so a redelivered SQS message or a repeated callback never pushes twice. A failed publish is put back on
the orders queue with a delay and the dispatcher publishes it again.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import queue
from chalicelib.aws import sns
from chalicelib.domain.order import Order
from chalicelib.idempotency import run_once
from chalicelib.messages import Notification
from chalicelib.observability import count, logger

RETRY_DELAY_SECONDS = 30

TITLES = {
    "order.dispatched": "Order sent",
    "order.accepted": "Order accepted",
    "order.preparing": "Being prepared",
    "order.ready": "Ready",
    "order.picked_up": "On its way",
    "order.delivered": "Delivered",
    "order.rejected": "Order rejected",
    "order.cancelled": "Order cancelled",
    "order.failed": "Order could not be placed",
    "delivery.failed": "Delivery problem",
}


def build(order: Order, event: str, text: str, *, key: str, data: dict[str, Any] | None = None) -> Notification:
    return Notification(
        notification_id=f"{order.id}:{event}:{key}",
        event=event,
        order_id=order.id,
        user_id=order.user_id,
        seller_id=order.seller_id,
        seller_name=str(order.seller.get("name", "")),
        text=text,
        data=data or {},
    )


def push_message(note: Notification) -> dict[str, str]:
    """`MessageStructure=json` body: each protocol gets its own payload (APNs and FCM formats)."""
    title = f"{note.seller_name}: {TITLES.get(note.event, note.event)}" if note.seller_name else note.event
    data = {"order_id": note.order_id, "event": note.event, **note.data}
    apns = json.dumps({"aps": {"alert": {"title": title, "body": note.text}, "sound": "default"}, **data})
    gcm = json.dumps({"notification": {"title": title, "body": note.text}, "data": data})
    default = json.dumps({"title": title, "body": note.text, **data})
    return {"default": default, "APNS": apns, "APNS_SANDBOX": apns, "GCM": gcm}


def _publish(data: dict[str, Any]) -> dict[str, Any]:
    note = Notification.model_validate(data["note"])
    attributes = {
        name: {"DataType": "String", "StringValue": value}
        for name, value in (
            ("order_id", note.order_id),
            ("user_id", note.user_id),
            ("seller_id", note.seller_id),
            ("event", note.event),
        )
    }
    response = sns().publish(
        TopicArn=queue.topic_arn(),
        Message=json.dumps(push_message(note)),
        MessageStructure="json",
        MessageAttributes=attributes,  # type: ignore[arg-type]
    )
    count("NotificationsPublished")
    return {"message_id": response["MessageId"]}


def publish(note: Notification) -> bool:
    """Publish at most once per notification id. On failure queue a retry and return False: the change that
    caused the notification has already been saved and must not be undone by a push problem."""
    data = {"id": note.notification_id, "note": note.model_dump(mode="json")}
    try:
        run_once(_publish, data=data, key_prefix="notification", key_path="id")
        return True
    except Exception:  # noqa: BLE001 - every publish failure takes the retry path
        logger.warning(
            "notification publish failed; retrying later", extra={"notification": note.notification_id}, exc_info=True
        )
        count("NotificationsDeferred")
        queue.send(note, delay_seconds=RETRY_DELAY_SECONDS)
        return False


def notify(order: Order, event: str, text: str, *, key: str, data: dict[str, Any] | None = None) -> bool:
    return publish(build(order, event, text, key=key, data=data))


def publish_operator_event(event: str, integrator: str, text: str, data: dict[str, Any] | None = None) -> bool:
    """An event about an integrator rather than an order (`integrator.disabled`): for operators and sellers'
    back offices subscribed to the topic, with the `event` and `integrator` attributes. Published by the one
    caller whose conditional write made the change, so it is not repeated; a failure is logged and counted (the
    change itself is visible in the API)."""
    body = json.dumps({"event": event, "integrator": integrator, "text": text, **(data or {})})
    try:
        sns().publish(
            TopicArn=queue.topic_arn(),
            Message=json.dumps({"default": body}),
            MessageStructure="json",
            MessageAttributes={
                "event": {"DataType": "String", "StringValue": event},
                "integrator": {"DataType": "String", "StringValue": integrator},
            },
        )
    except Exception:  # noqa: BLE001 - an operator event must never undo the change it reports
        logger.exception("operator event not published", extra={"event": event, "integrator": integrator})
        count("OperatorEventsFailed")
        return False
    count("OperatorEventsPublished")
    return True
