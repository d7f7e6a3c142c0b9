"""Order storage: every write is conditional on the version it read (StaleWrite otherwise), every list page is
one Query."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from chalicelib.db.concurrency import StaleWrite, condition_failed
from chalicelib.db.records import OrderRecord, ensure_bound
from chalicelib.db.repository import ListFilter, Page
from chalicelib.domain.events import OrderEvent
from chalicelib.domain.order import Order
from chalicelib.errors import MalformedRequest

OUTBOX_PENDING = "pending"
OVERDUE = "overdue"


def _to_domain(record: OrderRecord) -> Order:
    return Order(
        id=record.id,
        status=record.status,
        version=int(record.version),
        created_at=record.created_at,
        updated_at=record.updated_at,
        user=record.user,
        seller=record.seller,
        details=record.details,
        timeline=record.timeline or [],
        outbox=OrderEvent.model_validate(record.outbox) if record.outbox else None,
        overdue_integrators=list(record.overdue_integrators or []),
    )


def _to_record(order: Order) -> OrderRecord:
    record = OrderRecord(
        id=order.id,
        status=order.status,
        version=order.version,
        created_at=order.created_at,
        updated_at=order.updated_at,
        sort_key=f"{order.created_at}#{order.id}",
        seller_id=order.seller_id,
        user_id=order.user_id,
        seller_status=f"{order.seller_id}#{order.status}",
        user=order.user,
        seller=order.seller,
        details=order.details,
        timeline=[entry.model_dump(exclude_none=True) for entry in order.timeline],
    )
    if order.outbox is not None:
        record.outbox = order.outbox.model_dump(mode="json")
        record.outbox_pk = OUTBOX_PENDING
        record.outbox_at = order.outbox.occurred_at
        record.outbox_event_id = order.outbox.event_id
    if order.overdue_integrators:
        record.overdue_integrators = order.overdue_integrators
        record.overdue = OVERDUE
        record.seller_overdue = order.seller_id
    return record


def insert(order: Order) -> None:
    ensure_bound()
    try:
        _to_record(order).save(condition=OrderRecord.id.does_not_exist())
    except PutError as exc:
        if condition_failed(exc):
            raise StaleWrite(f"order {order.id}") from exc
        raise


def replace(order: Order, expected_version: int) -> None:
    """Write `order` (whose version is already bumped) only if the stored one is still `expected_version`."""
    ensure_bound()
    try:
        _to_record(order).save(condition=OrderRecord.version == expected_version)
    except PutError as exc:
        if condition_failed(exc):
            raise StaleWrite(f"order {order.id}") from exc
        raise


def move_status(changed: Order, expected_version: int, *, clear_outbox: bool) -> None:
    """Write a status move of `changed` (version already bumped) as one UpdateItem of only what a move changes,
    if the stored order is still `expected_version` (StaleWrite otherwise); `clear_outbox` also removes the
    outbox mark in the same write (the dispatcher has the event)."""
    ensure_bound()
    actions: list[Action] = [
        OrderRecord.status.set(changed.status),
        OrderRecord.seller_status.set(f"{changed.seller_id}#{changed.status}"),
        OrderRecord.version.set(changed.version),
        OrderRecord.updated_at.set(changed.updated_at),
        OrderRecord.timeline.set([entry.model_dump(exclude_none=True) for entry in changed.timeline]),
    ]
    if clear_outbox:
        actions += [
            OrderRecord.outbox.remove(),
            OrderRecord.outbox_pk.remove(),
            OrderRecord.outbox_at.remove(),
            OrderRecord.outbox_event_id.remove(),
        ]
    try:
        OrderRecord(id=changed.id).update(actions=actions, condition=OrderRecord.version == expected_version)
    except UpdateError as exc:
        if condition_failed(exc):
            raise StaleWrite(f"order {changed.id}") from exc
        raise


def get(order_id: str, *, consistent: bool = True) -> Order | None:
    ensure_bound()
    try:
        return _to_domain(OrderRecord.get(order_id, consistent_read=consistent))
    except OrderRecord.DoesNotExist:
        return None


def clear_outbox(order_id: str, event_id: str) -> bool:
    """Mark the event as queued, unless a newer one replaced it meanwhile (then that one stays pending)."""
    ensure_bound()
    record = OrderRecord(id=order_id)
    try:
        record.update(
            actions=[
                OrderRecord.outbox.remove(),
                OrderRecord.outbox_pk.remove(),
                OrderRecord.outbox_at.remove(),
                OrderRecord.outbox_event_id.remove(),
            ],
            condition=OrderRecord.outbox_event_id == event_id,
        )
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def pending_outbox(older_than: str, limit: int = 100) -> list[str]:
    """Ids of orders whose last event never reached the queue (sparse index: costs only what it returns)."""
    ensure_bound()
    query = OrderRecord.outbox_index.query(OUTBOX_PENDING, OrderRecord.outbox_at < older_than, limit=limit)
    return [record.id for record in query]


# --- listing -------------------------------------------------------------------------------------------------


def _and(*conditions: Condition | None) -> Condition | None:
    present = [c for c in conditions if c is not None]
    if not present:
        return None
    combined = present[0]
    for condition in present[1:]:
        combined = combined & condition
    return combined


def _plan(flt: ListFilter) -> tuple[Any, str, Condition | None]:
    """Pick the index whose key narrows the most; remaining filters become a FilterExpression."""
    if flt.overdue:
        # Sparse indexes: they hold only orders with an overdue acknowledgement, so this stays cheap.
        residual = _and(
            OrderRecord.user_id == flt.user_id if flt.user_id else None,
            OrderRecord.status == flt.status if flt.status else None,
        )
        if flt.seller_id:
            return OrderRecord.by_seller_overdue, flt.seller_id, residual
        return OrderRecord.overdue_index, OVERDUE, residual
    if flt.seller_id and flt.status:
        residual = OrderRecord.user_id == flt.user_id if flt.user_id else None
        return OrderRecord.by_seller_status, f"{flt.seller_id}#{flt.status}", residual
    if flt.seller_id:
        residual = OrderRecord.user_id == flt.user_id if flt.user_id else None
        return OrderRecord.by_seller, flt.seller_id, residual
    if flt.user_id:
        residual = OrderRecord.status == flt.status if flt.status else None
        return OrderRecord.by_user, flt.user_id, residual
    if flt.status:
        return OrderRecord.by_status, flt.status, None
    return OrderRecord.all_orders, "order", None


def encode_cursor(index_name: str, key: dict[str, Any]) -> str:
    raw = json.dumps({"i": index_name, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _key_names(index: Any) -> tuple[str, set[str]]:
    """(the index's partition attribute, every attribute a start key of this query must have)."""
    schema = index._get_schema()["key_schema"]
    partition = next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
    return partition, {str(k["AttributeName"]) for k in schema} | {str(OrderRecord._hash_keyname)}


def decode_cursor(cursor: str, index: Any, hash_value: str) -> dict[str, Any]:
    """The start key a cursor carries, only if it is one this very query could have answered: the same index,
    exactly its key attributes as strings, and the caller's own partition (a seller's cursor edited to name
    another seller is refused, not run)."""
    partition, names = _key_names(index)
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = data["k"]
        if data["i"] != index.Meta.index_name or not isinstance(key, dict) or set(key) != names:
            raise ValueError("cursor belongs to another query")
        if not all(isinstance(v, dict) and list(v) == ["S"] and isinstance(v["S"], str) for v in key.values()):
            raise ValueError("cursor key is malformed")
        if key[partition]["S"] != hash_value:
            raise ValueError("cursor belongs to another partition")
        return key
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, binascii.Error, json.JSONDecodeError):
        raise MalformedRequest(
            "cursor is not valid for this query",
            [{"field": "cursor", "message": "pass next_cursor from the previous page with the same filters"}],
        ) from None


def list_orders(flt: ListFilter, limit: int, cursor: str | None) -> Page:
    """Newest first; each page reads at most `limit` items whatever the table size."""
    ensure_bound()
    index, hash_value, residual = _plan(flt)
    start = decode_cursor(cursor, index, hash_value) if cursor else None
    result = index.query(
        hash_value,
        filter_condition=residual,
        scan_index_forward=False,
        limit=limit,
        last_evaluated_key=start,
    )
    # Exactly one Query call: pynamodb's item iterator would keep paging to fill a filtered page.
    page = next(result.page_iter)
    orders = [_to_domain(OrderRecord.from_raw_data(item)) for item in page.get("Items", [])]
    last_key = result.page_iter.last_evaluated_key
    next_cursor = encode_cursor(index.Meta.index_name, last_key) if last_key else None
    return Page(orders=orders, next_cursor=next_cursor, items_read=int(page.get("ScannedCount", 0)))
