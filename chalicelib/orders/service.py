"""Order use cases behind the API: create, read, list, change, cancel, and the outbox that gets each change
onto the queue. No Chalice here: the routes pass in parsed values and a principal."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from chalicelib import queue
from chalicelib.db import quotas
from chalicelib.db.concurrency import StaleWrite, retry_on_conflict
from chalicelib.db.repository import repo
from chalicelib.domain import order_status as lifecycle
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.events import EventType, OrderEvent
from chalicelib.domain.identity import Principal
from chalicelib.domain.order import Order, TimelineEntry, new_order_id
from chalicelib.domain.order_list import ListFilter
from chalicelib.domain.order_status import OrderStatus
from chalicelib.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed, TooManyRequests
from chalicelib.idempotency import REPLAYED, run_once
from chalicelib.observability import count, logger
from chalicelib.orders.models import (
    CreateOrderRequest,
    OrderList,
    OrderPatch,
    OrderResource,
)
from chalicelib.settings import get_settings
from chalicelib.validation import field_errors

MAX_LIMIT = 100


def to_resource(order: Order, *, with_deliveries: bool = True) -> OrderResource:
    deliveries = [state.public() for state in repo().deliveries.list_states(order.id)] if with_deliveries else []
    return OrderResource.model_validate(
        {
            "id": order.id,
            "status": order.status,
            "version": order.version,
            "created_at": order.created_at,
            "updated_at": order.updated_at,
            "user": order.user,
            "seller": order.seller,
            "order": {"id": order.id, **order.details},
            "deliveries": deliveries,
            "timeline": [entry.model_dump() for entry in order.timeline],
        }
    )


def _dump(resource: OrderResource) -> dict[str, Any]:
    return resource.model_dump(mode="json")


# --- outbox --------------------------------------------------------------------------------------------------


def _send(order: Order, event: OrderEvent) -> bool:
    """Put the event on the queue; a failure is logged and counted, not raised (the sweeper sends it later)."""
    try:
        queue.send(event, correlation_id=event.correlation_id)
    except Exception:  # noqa: BLE001 - any send failure is recovered by the sweeper
        logger.warning("queue send failed; the sweeper will retry", extra={"order_id": order.id}, exc_info=True)
        count("OutboxSendFailed")
        return False
    return True


def publish_outbox(order: Order) -> bool:
    """Send the saved order's pending event, then clear its mark. A failure is logged, not raised: the saved order
    stays flagged and the sweeper sends it later, so a client never sees an error for an order that was in fact
    changed."""
    event = order.outbox
    if event is None:
        return True
    if not _send(order, event):
        return False
    repo().orders.clear_outbox(order.id, event.event_id)
    return True


def sweep_outbox() -> int:
    """Re-send events of orders saved but never queued. Orders younger than the grace period are left to the
    request that is still sending them."""
    settings = get_settings()
    cutoff = iso(utcnow() - timedelta(seconds=settings.sweeper_grace_seconds))
    sent = 0
    for order_id in repo().orders.pending_outbox(cutoff):
        order = repo().orders.get(order_id)
        if order is not None and order.outbox is not None and publish_outbox(order):
            sent += 1
    if sent:
        logger.info("sweeper re-queued orders", extra={"count": sent})
        count("OutboxRecovered", sent)
    return sent


# --- create / read / list ------------------------------------------------------------------------------------


def _check_quota(seller_id: str) -> None:
    """One seller's burst must not take the API, the queue and the integrators' rate limits from the others."""
    per_second = get_settings().seller_orders_per_second
    if per_second and (wait := quotas.take_create_slot(seller_id, per_second)) is not None:
        count("OrdersThrottled")
        raise TooManyRequests(
            f"seller {seller_id} may create at most {per_second} orders per second",
            wait,
            [{"field": "seller.id", "message": f"over the quota of {per_second} orders per second; retry later"}],
        )


def _create(data: dict[str, Any]) -> dict[str, Any]:
    request = CreateOrderRequest.model_validate(data["body"])
    _check_quota(request.seller.id)  # inside the idempotent function: a replayed answer spends no quota
    now = iso()
    order_id = new_order_id()
    payload = request.model_dump(mode="json")
    event = OrderEvent(type=EventType.CREATED, order_id=order_id, version=1, correlation_id=data["correlation_id"])
    order = Order(
        id=order_id,
        status=OrderStatus.PENDING,
        version=1,
        created_at=now,
        updated_at=now,
        user=payload["user"],
        seller=payload["seller"],
        details=payload["order"],
        timeline=[TimelineEntry(status=OrderStatus.PENDING, at=now, source="api", message="order received")],
        outbox=event,
    )
    _send_then_write(order, event)
    count("OrdersCreated")
    logger.info("order created", extra={"order_id": order_id, "seller_id": order.seller_id})
    return _dump(to_resource(order, with_deliveries=False))


def _send_then_write(order: Order, event: OrderEvent) -> None:
    """A create sends its event first and writes the order second, so the outbox index is not needed for it (two
    index writes fewer per order: the mark and its removal, issue 22): a crash between the two leaves an event
    without an order, which the dispatcher drops once no create can still be writing it
    (`dispatch/order_events.py` `CREATE_WRITE_WINDOW_SECONDS`), and the client, who got no 201, retries. A send
    that fails falls back to the outbox: the order is written with its mark in the index and the sweeper sends
    it, so the client still gets its order while the queue is down. Either way the event stays on the row
    (`outbox`) until the dispatcher's `dispatched` write removes it at no extra request."""
    queued = _send(order, event)
    repo().orders.insert(order.model_copy(update={"outbox_queued": queued}))


def create_order(
    request: CreateOrderRequest, principal: Principal, *, correlation_id: str | None, idempotency_key: str | None
) -> tuple[dict[str, Any], bool]:
    """Returns (resource, replayed). With an idempotency key a retried POST answers the first response."""
    if not principal.may_see(request.seller.id):
        raise Forbidden(
            "this token may only create orders for its own seller",
            [{"field": "seller.id", "message": f"must be {principal.seller_id}"}],
        )
    data = {"body": request.model_dump(mode="json"), "correlation_id": correlation_id}
    if idempotency_key is None:
        return _create(data), False
    data.update(scope=principal.token_id, key=idempotency_key)
    result = run_once(_create, data=data, key_prefix="create_order", key_path="[scope, key]", validate_path="body")
    replayed = bool(result.pop(REPLAYED, False))
    return result, replayed


def _visible(order_id: str, principal: Principal) -> Order:
    order = repo().orders.get(order_id)
    if order is None or not principal.may_see(order.seller_id):
        # Another seller's order is indistinguishable from a missing one.
        raise NotFound(f"order {order_id} not found")
    return order


def get_order(order_id: str, principal: Principal) -> dict[str, Any]:
    return _dump(to_resource(_visible(order_id, principal)))


def list_orders(
    principal: Principal,
    *,
    seller_id: str | None,
    user_id: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    overdue: bool = False,
) -> dict[str, Any]:
    if not principal.is_admin:
        if seller_id and seller_id != principal.seller_id:
            return OrderList(items=[], next_cursor=None).model_dump(mode="json")
        seller_id = principal.seller_id
    page = repo().orders.list_orders(ListFilter(seller_id, user_id, status, overdue), limit, cursor)
    items = [to_resource(order, with_deliveries=False) for order in page.orders]
    return OrderList(items=items, next_cursor=page.next_cursor).model_dump(mode="json")


# --- change / cancel -----------------------------------------------------------------------------------------


def _check_version(order: Order, if_match: int | None) -> None:
    if if_match is not None and if_match != order.version:
        raise PreconditionFailed(
            f"order is at version {order.version}, not {if_match}; fetch it again and reapply your change",
            [{"field": "If-Match", "message": f"current version is {order.version}"}],
        )


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _save_change(order: Order, expected_version: int) -> Order:
    order = order.model_copy(update={"outbox_queued": False})  # a new event: the sweeper sees it until it is sent
    repo().orders.replace(order, expected_version)  # StaleWrite when someone else changed it first
    publish_outbox(order)
    return order


def _concurrently(step: Callable[[], dict[str, Any]], if_match: int | None) -> dict[str, Any]:
    """With If-Match the caller decided on one version: a concurrent change is a 412. Without it the change is
    re-read and re-applied on top of what changed meanwhile (a callback moving the order, say)."""
    try:
        return step() if if_match is not None else retry_on_conflict(step)
    except StaleWrite:
        raise PreconditionFailed(
            "order changed while this request was applied; fetch it again and retry",
            [{"field": "If-Match", "message": "stale version"}],
        ) from None


def update_order(
    order_id: str, patch: Any, principal: Principal, *, if_match: int | None, correlation_id: str | None
) -> dict[str, Any]:
    return _concurrently(lambda: _update(order_id, patch, principal, if_match, correlation_id), if_match)


def _update(
    order_id: str, patch: Any, principal: Principal, if_match: int | None, correlation_id: str | None
) -> dict[str, Any]:
    order = _visible(order_id, principal)
    _check_version(order, if_match)
    if order.status not in lifecycle.EDITABLE:
        raise Conflict(f"order is {order.status}; it can no longer be changed")
    try:
        OrderPatch.model_validate(patch)
        current = {"user": order.user, "seller": order.seller, "order": order.details}
        merged = CreateOrderRequest.model_validate(_merge(current, patch))
    except ValidationError as exc:
        raise InvalidInput("the patch is not valid for this order", field_errors(exc)) from None
    values = merged.model_dump(mode="json")
    if values == json.loads(json.dumps(current)):
        return _dump(to_resource(order))
    version = order.version + 1
    changed = order.model_copy(
        update={
            "user": values["user"],
            "details": values["order"],
            "version": version,
            "updated_at": iso(),
            "outbox": OrderEvent(
                type=EventType.UPDATED, order_id=order.id, version=version, correlation_id=correlation_id
            ),
        }
    )
    _save_change(changed, order.version)
    count("OrdersUpdated")
    logger.info("order updated", extra={"order_id": order.id, "version": version})
    return _dump(to_resource(changed))


def cancel_order(
    order_id: str, principal: Principal, *, if_match: int | None, correlation_id: str | None, reason: str | None
) -> dict[str, Any]:
    return _concurrently(lambda: _cancel(order_id, principal, if_match, correlation_id, reason), if_match)


def _cancel(
    order_id: str, principal: Principal, if_match: int | None, correlation_id: str | None, reason: str | None
) -> dict[str, Any]:
    order = _visible(order_id, principal)
    _check_version(order, if_match)
    if order.status == OrderStatus.CANCELLED:
        return _dump(to_resource(order))
    if lifecycle.is_end(order.status):
        raise Conflict(f"order is already {order.status}; it can no longer be cancelled")
    now, version = iso(), order.version + 1
    cancelled = order.model_copy(
        update={
            "status": OrderStatus.CANCELLED,
            "version": version,
            "updated_at": now,
            "timeline": [
                *order.timeline,
                TimelineEntry(status=OrderStatus.CANCELLED, at=now, source="api", message=reason or "cancelled"),
            ],
            "outbox": OrderEvent(
                type=EventType.CANCELLED, order_id=order.id, version=version, correlation_id=correlation_id
            ),
        }
    )
    _save_change(cancelled, order.version)
    count("OrdersCancelled")
    logger.info("order cancelled", extra={"order_id": order.id})
    return _dump(to_resource(cancelled))
