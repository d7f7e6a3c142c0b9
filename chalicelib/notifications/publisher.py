"""Customer notifications (and seller alerts) on the SNS topic: once per change, mobile-push ready, retried
rather than dropped.

Each notification has a stable id (order, event, what changed). The caller whose conditional write made the
change publishes (`notify(winner=True)`): that write has exactly one winner, so the push goes straight out, one
request. Callers that may run again for the same change (a redelivered queue message: the cancel event, the
acknowledgement check) and the queued retry of a failed publish go through Idempotency on the id (`notify`,
`publish`), so nothing is pushed twice. A failed publish is put back on the orders queue with a delay and the
dispatcher publishes it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from chalicelib import queue
from chalicelib.aws import sns
from chalicelib.domain.order import Order
from chalicelib.idempotency import run_once
from chalicelib.messages import Notification
from chalicelib.observability import count, logger

RETRY_DELAY_SECONDS = 30
Audience = Literal["customer", "seller"]

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
    # Seller alerts (audience "seller"): a partner missed its deadline or did not acknowledge the order.
    "delivery.expired": "Delivery expired",
    "delivery.unacknowledged": "Not acknowledged",
}


def build(
    order: Order,
    event: str,
    text: str,
    *,
    key: str,
    data: dict[str, Any] | None = None,
    audience: Audience = "customer",
) -> Notification:
    return Notification(
        notification_id=f"{order.id}:{event}:{key}",
        event=event,
        order_id=order.id,
        user_id=order.user_id,
        seller_id=order.seller_id,
        seller_name=str(order.seller.get("name", "")),
        text=text,
        data=data or {},
        audience=audience,
    )


def push_message(note: Notification) -> dict[str, str]:
    """`MessageStructure=json` body: each protocol gets its own payload (APNs and FCM formats)."""
    title = f"{note.seller_name}: {TITLES.get(note.event, note.event)}" if note.seller_name else note.event
    data = {"order_id": note.order_id, "event": note.event, **note.data}
    apns = json.dumps({"aps": {"alert": {"title": title, "body": note.text}, "sound": "default"}, **data})
    gcm = json.dumps({"notification": {"title": title, "body": note.text}, "data": data})
    default = json.dumps({"title": title, "body": note.text, **data})
    return {"default": default, "APNS": apns, "APNS_SANDBOX": apns, "GCM": gcm}


def _send(note: Notification) -> str:
    attributes = {
        name: {"DataType": "String", "StringValue": value}
        for name, value in (
            ("order_id", note.order_id),
            ("user_id", note.user_id),
            ("seller_id", note.seller_id),
            ("event", note.event),
            ("audience", note.audience),
            ("integrator", str(note.data.get("integrator") or "")),
        )
        if value  # SNS refuses an empty attribute value
    }
    response = sns().publish(
        TopicArn=queue.topic_arn(),
        Message=json.dumps(push_message(note)),
        MessageStructure="json",
        MessageAttributes=attributes,  # type: ignore[arg-type]
    )
    count("NotificationsPublished")
    return response["MessageId"]


def _publish(data: dict[str, Any]) -> dict[str, Any]:
    return {"message_id": _send(Notification.model_validate(data["note"]))}


def _once(note: Notification) -> None:
    run_once(
        _publish,
        data={"id": note.notification_id, "note": note.model_dump(mode="json")},
        key_prefix="notification",
        key_path="id",
    )


def _deliver(note: Notification, send: Callable[[Notification], object]) -> bool:
    """On failure queue a retry and return False: the change that caused the notification has already been
    saved and must not be undone by a push problem."""
    try:
        send(note)
        return True
    except Exception:  # noqa: BLE001 - every publish failure takes the retry path
        logger.warning(
            "notification publish failed; retrying later", extra={"notification": note.notification_id}, exc_info=True
        )
        count("NotificationsDeferred")
        queue.send(note, delay_seconds=RETRY_DELAY_SECONDS)
        return False


def publish(note: Notification) -> bool:
    """Publish at most once per notification id (an idempotency record: two more requests). For a caller that may
    run again for the same change, and for the queued retry of a failed publish, which SQS may redeliver."""
    return _deliver(note, _once)


def notify(
    order: Order,
    event: str,
    text: str,
    *,
    key: str,
    data: dict[str, Any] | None = None,
    audience: Audience = "customer",
    winner: bool = False,
) -> bool:
    """Tell the customer (or, with `audience="seller"`, the shop: customer push subscriptions filter those out on
    the SNS attribute `audience`, so a customer never hears of a partner's missed deadline) about a change.

    `winner=True` is for the one caller whose conditional write made the change (it moved the order's status):
    that write has exactly one winner and runs once, so the push goes straight out, one request, no idempotency
    record. Any other caller may run again for the same change, so it publishes at most once per notification id.
    A failed publish takes the queued retry, which is idempotent."""
    note = build(order, event, text, key=key, data=data, audience=audience)
    return _deliver(note, _send) if winner else publish(note)


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
