"""Order storage: every write is conditional on the version it read (StaleWrite otherwise); a list page costs the
same whatever the table holds.

Keys spread (issue 22): the listing of every order, the outbox and the overdue list are write-sharded
(`o#<n>`, `pending#<n>`, `overdue#<n>`, n from the order id), and the list indexes carry keys and parties only,
which never change, so a status move writes the table and nothing else. A page merges its partitions newest
first by `sort_key` (created_at#id, unique) and reads the page's orders with one BatchGetItem; a status filter is
applied to what was read, within a bounded number of rounds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from chalicelib.db.concurrency import StaleWrite, condition_failed
from chalicelib.db.records import ORDER_SHARDS, OrderRecord, ensure_bound
from chalicelib.domain.events import OrderEvent
from chalicelib.domain.order import Order
from chalicelib.domain.order_list import ListFilter, Page
from chalicelib.errors import MalformedRequest

# The outbox takes two writes per order (marked, cleared): twice the shards, for 625 writes/s per key at 10,000/s.
OUTBOX_SHARDS = 2 * ORDER_SHARDS
# Keys rows written before the sharded layout still carry, until `make migrate` rewrites them.
LEGACY_OUTBOX = "pending"
LEGACY_OVERDUE = "overdue"
# A status-filtered page reads at most this many rounds of `limit` candidates before answering (with a cursor):
# its cost is bounded whatever the table holds and however rare the status.
STATUS_ROUNDS = 2


def _shard(order_id: str, shards: int) -> int:
    return zlib.crc32(order_id.encode()) % shards


def shard_key(order_id: str) -> str:
    return f"o#{_shard(order_id, ORDER_SHARDS)}"


def outbox_key(order_id: str) -> str:
    return f"pending#{_shard(order_id, OUTBOX_SHARDS)}"


def overdue_key(order_id: str) -> str:
    return f"overdue#{_shard(order_id, ORDER_SHARDS)}"


def _document(order: Order) -> bytes:
    """The order's parties, details and timeline as one zlib-compressed JSON attribute: an order row stays under
    1 KB (one write unit a write instead of two; the timeline grows with every move), and nothing queries inside
    these fields. Rows written before this layout keep them as separate JSON attributes until rewritten."""
    content = {
        "user": order.user,
        "seller": order.seller,
        "details": order.details,
        "timeline": [entry.model_dump(exclude_none=True) for entry in order.timeline],
    }
    return zlib.compress(json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode(), 9)


def _content(record: OrderRecord) -> dict[str, Any]:
    if record.doc is not None:
        loaded: dict[str, Any] = json.loads(zlib.decompress(record.doc))
        return loaded
    return {"user": record.user, "seller": record.seller, "details": record.details, "timeline": record.timeline}


def _to_domain(record: OrderRecord) -> Order:
    content = _content(record)
    return Order(
        id=record.id,
        status=record.status,
        version=int(record.version),
        created_at=record.created_at,
        updated_at=record.updated_at,
        user=content["user"],
        seller=content["seller"],
        details=content["details"],
        timeline=content["timeline"] or [],
        outbox=OrderEvent.model_validate(record.outbox) if record.outbox else None,
        outbox_queued=bool(record.outbox) and record.outbox_pk is None,
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
        shard=shard_key(order.id),
        seller_id=order.seller_id,
        user_id=order.user_id,
        doc=_document(order),
    )
    if order.outbox is not None:
        record.outbox = order.outbox.model_dump(mode="json")
        record.outbox_event_id = order.outbox.event_id
        if not order.outbox_queued:  # the sweeper's index: only events the queue may not have
            record.outbox_pk = outbox_key(order.id)
            record.outbox_at = order.outbox.occurred_at
    if order.overdue_integrators:
        record.overdue_integrators = order.overdue_integrators
        record.overdue = overdue_key(order.id)
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
        OrderRecord.version.set(changed.version),
        OrderRecord.updated_at.set(changed.updated_at),
        OrderRecord.doc.set(_document(changed)),
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
    """Ids of orders whose last event never reached the queue (sparse index: costs only what it returns), oldest
    first, from every outbox shard (and the pre-shard key, until migrated)."""
    ensure_bound()
    found: list[tuple[str, str]] = []
    for key in [*(f"pending#{n}" for n in range(OUTBOX_SHARDS)), LEGACY_OUTBOX]:
        query = OrderRecord.outbox_index.query(key, OrderRecord.outbox_at < older_than, limit=limit)
        found += [(str(record.outbox_at), record.id) for record in query]
    return [order_id for _, order_id in sorted(found)[:limit]]


# --- listing -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """Where a list reads: one index, the partitions it merges, a filter the index can apply itself (projected
    attributes), and the status to keep after reading the orders (status is not projected: it changes)."""

    index: Any
    partitions: tuple[str, ...]
    residual: Condition | None
    status: str | None
    full_items: bool  # the index projects everything (the sparse overdue lists): no BatchGetItem

    @property
    def fingerprint(self) -> str:
        text = json.dumps([self.index.Meta.index_name, self.partitions, self.status, str(self.residual)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _and(*conditions: Condition | None) -> Condition | None:
    present = [c for c in conditions if c is not None]
    if not present:
        return None
    combined = present[0]
    for condition in present[1:]:
        combined = combined & condition
    return combined


def _plan(flt: ListFilter) -> _Plan:
    """Pick the index whose key narrows the most; the customer filter rides on the projected `user_id`."""
    user = OrderRecord.user_id == flt.user_id if flt.user_id else None
    if flt.overdue:
        # Sparse, everything projected: holds only orders with an overdue acknowledgement, so this stays cheap.
        residual = _and(user, OrderRecord.status == flt.status if flt.status else None)
        if flt.seller_id:
            return _Plan(OrderRecord.by_seller_overdue, (flt.seller_id,), residual, None, True)
        keys = (*(f"overdue#{n}" for n in range(ORDER_SHARDS)), LEGACY_OVERDUE)
        return _Plan(OrderRecord.overdue_index, keys, residual, None, True)
    if flt.seller_id:
        return _Plan(OrderRecord.by_seller, (flt.seller_id,), user, flt.status, False)
    if flt.user_id:
        return _Plan(OrderRecord.by_user, (flt.user_id,), None, flt.status, False)
    return _Plan(OrderRecord.by_shard, tuple(f"o#{n}" for n in range(ORDER_SHARDS)), None, flt.status, False)


def encode_cursor(plan: _Plan, sort_key: str) -> str:
    raw = json.dumps({"q": plan.fingerprint, "s": sort_key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, plan: _Plan) -> str:
    """The position a cursor carries (the last sort key read), only if this very query made it: another seller's,
    filter's or index's cursor is refused, not run."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or data.get("q") != plan.fingerprint:
            raise ValueError("cursor belongs to another query")
        position = data.get("s")
        if not isinstance(position, str) or not 0 < len(position) <= 200:
            raise ValueError("cursor position is malformed")
        return position
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, binascii.Error, json.JSONDecodeError):
        raise MalformedRequest(
            "cursor is not valid for this query",
            [{"field": "cursor", "message": "pass next_cursor from the previous page with the same filters"}],
        ) from None


@dataclass
class _Candidates:
    keys: list[tuple[str, str]]  # (sort_key, order id), newest first: every row newer than `resume_at` was seen
    resume_at: str | None  # where the next read starts (exclusive); None: every partition is exhausted
    read: int
    items: dict[str, Any]  # full records, when the index projects them


def _candidates(plan: _Plan, limit: int, before: str | None) -> _Candidates:
    """Up to `limit` rows newest first across the plan's partitions, older than `before`: one Query per partition.

    A partition that stopped early (its Limit, or its filter) has unseen rows older than its last evaluated key, so
    only rows at least that new are certain to be complete; the page is cut there (db/sharded.py)."""
    from chalicelib.db.sharded import newest_first

    rows: list[tuple[str, OrderRecord]] = []
    stops: list[str] = []
    read = 0
    for partition in plan.partitions:
        result = plan.index.query(
            partition,
            OrderRecord.sort_key < before if before else None,
            filter_condition=plan.residual,
            scan_index_forward=False,
            limit=limit,
        )
        page = next(result.page_iter)  # exactly one Query per partition
        read += int(page.get("ScannedCount", 0))
        for item in page.get("Items", []):
            record = OrderRecord.from_raw_data(item)
            rows.append((record.sort_key, record))
        last = result.page_iter.last_evaluated_key
        if last:
            stops.append(str(last["sort_key"]["S"]))
    taken, resume = newest_first(rows, stops, limit)
    return _Candidates(
        [(k, r.id) for k, r in taken], resume, read, {r.id: r for _, r in taken} if plan.full_items else {}
    )


def _read_orders(ids: list[str]) -> dict[str, OrderRecord]:
    """The page's orders in one BatchGetItem (eventually consistent: a list may trail a write by a moment)."""
    if not ids:
        return {}
    return {record.id: record for record in OrderRecord.batch_get(ids)}


def list_orders(flt: ListFilter, limit: int, cursor: str | None) -> Page:
    """Newest first. Without a status filter a page is one Query per partition (one for a seller or a customer,
    ORDER_SHARDS for everything) and one BatchGetItem, whatever the table size; with one, at most STATUS_ROUNDS
    of that (`limit` candidates a round), and the page may hold fewer than `limit` orders while `next_cursor`
    goes on."""
    ensure_bound()
    plan = _plan(flt)
    position = decode_cursor(cursor, plan) if cursor else None
    found: list[Order] = []
    read = 0
    for _ in range(STATUS_ROUNDS if plan.status else 1):
        batch = _candidates(plan, limit, position)
        read += batch.read
        records = batch.items or _read_orders([order_id for _, order_id in batch.keys])
        read += 0 if batch.items else len(records)
        position = batch.resume_at
        for index, (sort_key, order_id) in enumerate(batch.keys):
            record = records.get(order_id)
            if record is not None and (plan.status is None or record.status == plan.status):
                found.append(_to_domain(record))
            if len(found) == limit:
                more = index + 1 < len(batch.keys) or batch.resume_at is not None
                position = sort_key if more else None
                break
        if position is None or len(found) >= limit:
            break
    next_cursor = encode_cursor(plan, position) if position is not None else None
    return Page(orders=found, next_cursor=next_cursor, items_read=read)
