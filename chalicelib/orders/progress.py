"""Moving an order's status: conditional on the version read, re-read and re-decided on a conflict, so
concurrent callbacks and dispatcher results never overwrite each other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.db.concurrency import retry_on_conflict
from chalicelib.db.repository import repo
from chalicelib.domain import order_status as lifecycle
from chalicelib.domain.clock import iso
from chalicelib.domain.order import Order, TimelineEntry
from chalicelib.domain.order_status import OrderStatus
from chalicelib.observability import logger


def apply_status(
    order_id: str,
    new_status: OrderStatus,
    *,
    source: str,
    message: str | None = None,
    when: Callable[[Order], bool] | None = None,
    current: Order | None = None,
) -> tuple[Order | None, bool]:
    """Move the order to `new_status` if that is a forward move (and `when(order)` holds).

    `current`, the order as the caller has just read it, saves the first read: its version is the write's
    condition, so a stale copy only costs a re-read. Returns (the order as stored now, whether this call changed it).
    """
    known = [current] if current is not None else []

    def step() -> tuple[Order | None, bool]:
        order = known.pop() if known else repo().orders.get(order_id)
        if order is None:
            return None, False
        if not lifecycle.can_move(order.status, new_status) or (when is not None and not when(order)):
            return order, False
        now = iso()
        changed = order.model_copy(
            update={
                "status": new_status,
                "version": order.version + 1,
                "updated_at": now,
                "timeline": [*order.timeline, TimelineEntry(status=new_status, at=now, source=source, message=message)],
            }
        )
        repo().orders.replace(changed, order.version)
        logger.info(
            "order status changed",
            extra={"order_id": order_id, "from": order.status, "to": new_status, "source": source},
        )
        return changed, True

    return retry_on_conflict(step)


def move_from(
    order: Order, new_status: OrderStatus, *, source: str, message: str | None = None, outbox_event: str | None = None
) -> tuple[Order | None, bool]:
    """`apply_status` from an order the caller read a moment ago: one conditional UpdateItem and no read, unless
    the order changed meanwhile (then re-read and re-decided). `outbox_event`: an event the caller has taken off
    the queue; while the order's outbox still holds it, the same write clears it (or a clearing write alone, when
    the status does not move), so the sweeper never sends it again.

    Returns (the order as stored now, whether this call moved it)."""
    first: list[Order] = [order]

    def step() -> tuple[Order | None, bool]:
        current = first.pop() if first else repo().orders.get(order.id)
        if current is None:
            return None, False
        clear = outbox_event is not None and current.outbox is not None and current.outbox.event_id == outbox_event
        if not lifecycle.can_move(current.status, new_status):
            if clear and outbox_event is not None:
                repo().orders.clear_outbox(current.id, outbox_event)
            return current, False
        now = iso()
        entry = TimelineEntry(status=new_status, at=now, source=source, message=message)
        changed = current.model_copy(
            update={
                "status": new_status,
                "version": current.version + 1,
                "updated_at": now,
                "timeline": [*current.timeline, entry],
                "outbox": None if clear else current.outbox,
            }
        )
        repo().orders.move_status(changed, current.version, clear_outbox=clear)
        logger.info(
            "order status changed",
            extra={"order_id": order.id, "from": current.status, "to": new_status, "source": source},
        )
        return changed, True

    return retry_on_conflict(step)


def amend(order_id: str, change: Callable[[Order], dict[str, Any] | None]) -> Order | None:
    """Record something on the order that is not a status move (a timeline note, the overdue marker): `change`
    returns the fields to update, or None when there is nothing to do (so a repeated call changes nothing).
    Conditional on the version like every order write, re-decided on conflict; returns the order as stored."""

    def step() -> Order | None:
        order = repo().orders.get(order_id)
        if order is None:
            return None
        fields = change(order)
        if fields is None:
            return order
        changed = order.model_copy(update={**fields, "version": order.version + 1, "updated_at": iso()})
        repo().orders.replace(changed, order.version)
        return changed

    return retry_on_conflict(step)
