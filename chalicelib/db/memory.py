"""The in-memory twin of the DynamoDB repositories, for use-case unit tests: the same conditional-write
semantics (a stale version or revision raises StaleWrite, an existing id refuses an insert, `park` keeps its
conditions), newest-first pages with a cursor that only fits its own query, and copies in and out so a caller
can never change what is stored without a write. Not thread-safe beyond one lock: it is for tests."""

from __future__ import annotations

import base64
import binascii
import json
import threading
from datetime import datetime
from typing import Any

from chalicelib.db.concurrency import StaleWrite
from chalicelib.db.repository import Repositories
from chalicelib.domain.delivery import DeliveryState, DeliveryStatus, listing_bounds, listing_row, listing_sort
from chalicelib.domain.order import Order
from chalicelib.domain.order_list import ListFilter, Page
from chalicelib.errors import MalformedRequest

RANK_STEP = 1000  # as db.deliveries: resumptions of one attempt stay below the next attempt


class MemoryOrders:
    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}
        self._lock = threading.RLock()

    def insert(self, order: Order) -> None:
        with self._lock:
            if order.id in self._orders:
                raise StaleWrite(f"order {order.id}")
            self._orders[order.id] = order.model_copy(deep=True)

    def replace(self, order: Order, expected_version: int) -> None:
        with self._lock:
            self._expect(order.id, expected_version)
            self._orders[order.id] = order.model_copy(deep=True)

    def move_status(self, changed: Order, expected_version: int, *, clear_outbox: bool) -> None:
        with self._lock:
            stored = self._expect(changed.id, expected_version)
            moved = stored.model_copy(
                update={
                    "status": changed.status,
                    "version": changed.version,
                    "updated_at": changed.updated_at,
                    "timeline": [entry.model_copy() for entry in changed.timeline],
                    "outbox": None if clear_outbox else stored.outbox,
                    "outbox_queued": False if clear_outbox else stored.outbox_queued,
                },
                deep=True,
            )
            self._orders[changed.id] = moved

    def _expect(self, order_id: str, version: int) -> Order:
        stored = self._orders.get(order_id)
        if stored is None or stored.version != version:
            raise StaleWrite(f"order {order_id}")
        return stored

    def get(self, order_id: str, *, consistent: bool = True) -> Order | None:
        with self._lock:
            stored = self._orders.get(order_id)
            return stored.model_copy(deep=True) if stored is not None else None

    def clear_outbox(self, order_id: str, event_id: str) -> bool:
        with self._lock:
            stored = self._orders.get(order_id)
            if stored is None or stored.outbox is None or stored.outbox.event_id != event_id:
                return False
            self._orders[order_id] = stored.model_copy(update={"outbox": None, "outbox_queued": False})
            return True

    def pending_outbox(self, older_than: str, limit: int = 100) -> list[str]:
        with self._lock:
            pending = [
                o
                for o in self._orders.values()
                if o.outbox is not None and not o.outbox_queued and o.outbox.occurred_at < older_than
            ]
        return [o.id for o in sorted(pending, key=lambda o: o.outbox.occurred_at if o.outbox else "")][:limit]

    def list_orders(self, flt: ListFilter, limit: int, cursor: str | None) -> Page:
        query = _query_name(flt)
        after = _decode(cursor, query) if cursor else None
        with self._lock:
            matching = sorted(
                (o for o in self._orders.values() if _matches(o, flt)),
                key=lambda o: (o.created_at, o.id),
                reverse=True,
            )
        if after is not None:
            matching = [o for o in matching if (o.created_at, o.id) < after]
        page = matching[:limit]
        more = len(matching) > limit
        last = page[-1] if page and more else None
        next_cursor = _encode(query, (last.created_at, last.id)) if last is not None else None
        return Page([o.model_copy(deep=True) for o in page], next_cursor, len(page))


def _matches(order: Order, flt: ListFilter) -> bool:
    return (
        (flt.seller_id is None or order.seller_id == flt.seller_id)
        and (flt.user_id is None or order.user_id == flt.user_id)
        and (flt.status is None or order.status == flt.status)
        and (not flt.overdue or bool(order.overdue_integrators))
    )


def _query_name(flt: ListFilter) -> str:
    return json.dumps([flt.seller_id, flt.user_id, flt.status, flt.overdue])


def _encode(query: str, key: tuple[str, str]) -> str:
    raw = json.dumps({"q": query, "k": list(key)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, query: str) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        if data["q"] != query:
            raise ValueError("cursor belongs to another query")
        created_at, order_id = data["k"]
        return str(created_at), str(order_id)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise MalformedRequest(
            "cursor is not valid for this query",
            [{"field": "cursor", "message": "pass next_cursor from the previous page with the same filters"}],
        ) from None


class MemoryDeliveries:
    def __init__(self) -> None:
        self._states: dict[tuple[str, str], DeliveryState] = {}
        self._attempts: dict[str, dict[str, dict[str, Any]]] = {}  # order id -> line key -> line
        self._lock = threading.RLock()

    def get_state(self, order_id: str, integrator: str) -> DeliveryState | None:
        with self._lock:
            stored = self._states.get((order_id, integrator))
            return stored.model_copy(deep=True) if stored is not None else None

    def list_states(self, order_id: str) -> list[DeliveryState]:
        with self._lock:
            rows = [s for (order, _), s in sorted(self._states.items()) if order == order_id]
            return [s.model_copy(deep=True) for s in rows]

    def _write(self, state: DeliveryState, expected_revision: int | None) -> DeliveryState:
        key = (state.order_id, state.integrator)
        stored = self._states.get(key)
        if (
            (stored is not None)
            if expected_revision is None
            else (stored is None or stored.revision != expected_revision)
        ):
            raise StaleWrite(f"delivery {state.order_id}/{state.integrator}")
        written = state.model_copy(update={"revision": (expected_revision or 0) + 1}, deep=True)
        self._states[key] = written
        return written.model_copy(deep=True)

    def put_state(self, state: DeliveryState, expected_revision: int | None) -> DeliveryState:
        with self._lock:
            return self._write(state, expected_revision)

    def put_state_with_attempt(
        self,
        state: DeliveryState,
        expected_revision: int,
        moment: datetime,
        retention_days: int,
        *,
        line_key: str,
        **attempt: Any,
    ) -> DeliveryState:
        with self._lock:
            self.add_attempt(state.order_id, moment, retention_days, line_key=line_key, **attempt)
            return self._write(state, expected_revision)

    def set_fields(self, state: DeliveryState, **fields: Any) -> None:
        with self._lock:
            key = (state.order_id, state.integrator)
            stored = self._states.get(key)
            if stored is None or stored.revision != state.revision:
                raise StaleWrite(f"delivery {state.order_id}/{state.integrator}")
            changes = {name: value for name, value in fields.items() if value is not None}
            merged = {**stored.model_dump(), **changes, "revision": stored.revision + 1}
            self._states[key] = DeliveryState.model_validate(merged)

    def add_attempt(
        self, order_id: str, moment: datetime, retention_days: int, *, line_key: str | None = None, **fields: Any
    ) -> None:
        key = line_key or f"{moment.isoformat()}#{fields['integrator']}#{fields['attempt']}"
        with self._lock:
            self._attempts.setdefault(order_id, {})[key] = {"sort": str(fields.get("at", moment.isoformat())), **fields}

    def list_attempts(self, order_id: str) -> list[dict[str, Any]]:
        with self._lock:
            lines = sorted(self._attempts.get(order_id, {}).values(), key=lambda line: line["sort"])
            return [{k: v for k, v in line.items() if k != "sort"} for line in lines]

    def find(self, integrator: str, status: str, since: str, until: str, limit: int = 500) -> list[DeliveryState]:
        with self._lock:
            rows = [
                s
                for s in self._states.values()
                if s.integrator == integrator and s.status == status and since <= s.updated_at <= until
            ]
        return [s.model_copy(deep=True) for s in sorted(rows, key=lambda s: s.updated_at)[:limit]]

    def park(
        self, order_id: str, integrator: str, job: dict[str, Any], *, until: str | None, reason: str, now: str
    ) -> bool:
        webhook, attempt = str(job["webhook_id"]), int(job["attempt"])
        rank = attempt * RANK_STEP + int(job.get("resume", 0))
        with self._lock:
            stored = self._states.get((order_id, integrator))
            if stored is not None and not _may_park(stored, webhook, attempt, rank):
                return False
            base = stored.model_dump() if stored is not None else {"order_id": order_id, "integrator": integrator}
            parked = {
                **base,
                "event": str(job["event"]),
                "webhook_id": webhook,
                "status": DeliveryStatus.WAITING,
                "waiting_job": job,
                "waiting_rank": rank,
                "last_error": reason,
                "updated_at": now,
                "next_attempt_at": until,
                "revision": (stored.revision if stored is not None else 0) + 1,
            }
            self._states[(order_id, integrator)] = DeliveryState.model_validate(parked)
            return True

    def oldest_waiting(self, integrator: str, limit: int, *, after: str | None = None) -> list[DeliveryState]:
        waiting = self.find(integrator, DeliveryStatus.WAITING, after or "0", "~", limit=limit)
        return [s for s in waiting if after is None or s.updated_at > after]

    def list_for_integrator(
        self, integrator: str, *, status: str | None, since: str, until: str, before: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        low, high = listing_bounds(since, until, before)
        with self._lock:
            mine = [(listing_sort(s.order_id), s) for (_, name), s in self._states.items() if name == integrator]
        listed = sorted((entry for entry in mine if low <= entry[0] <= high), key=lambda e: e[0], reverse=True)
        taken = listed[:limit]
        rows = [listing_row(sort, s) for sort, s in taken if status is None or s.status == status]
        return rows, taken[-1][0] if len(listed) > limit else None

    def count_waiting(self, integrator: str) -> int:
        with self._lock:
            return sum(1 for s in self._states.values() if s.integrator == integrator and s.status == "waiting")


def _may_park(stored: DeliveryState, webhook: str, attempt: int, rank: int) -> bool:
    """db.deliveries.park's condition: never for a delivered webhook, never back to a job that already ran."""
    if stored.already_delivered(webhook):
        return False
    return (
        stored.webhook_id != webhook
        or stored.attempts < attempt
        or (stored.status == DeliveryStatus.PENDING and stored.attempts <= attempt)
        or (stored.status == DeliveryStatus.WAITING and (stored.waiting_rank is None or stored.waiting_rank <= rank))
    )


def memory_repositories() -> Repositories:
    """A fresh, empty pair of twins."""
    return Repositories(orders=MemoryOrders(), deliveries=MemoryDeliveries())
