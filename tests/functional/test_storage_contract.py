"""One contract, two implementations: the DynamoDB repositories (on moto) and the in-memory twin the use-case
unit tests run on must agree on every conditional write, on paging and on what a stale writer gets, or the unit
tests would prove things about a store that does not exist."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.db.concurrency import StaleWrite
from chalicelib.db.memory import memory_repositories
from chalicelib.db.repository import Repositories, repo
from chalicelib.domain.delivery import DeliveryState, DeliveryStatus
from chalicelib.domain.events import EventType, OrderEvent
from chalicelib.domain.order import Order, TimelineEntry
from chalicelib.domain.order_list import ListFilter
from chalicelib.domain.order_status import OrderStatus
from chalicelib.domain.sample_order import sample_order
from chalicelib.errors import MalformedRequest


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[Repositories]:
    if request.param == "memory":
        yield memory_repositories()
    else:
        request.getfixturevalue("aws")
        yield repo()


def order(
    n: int, seller: str = "s-1", user: str = "u-1", status: OrderStatus = OrderStatus.PENDING, outbox: bool = False
) -> Order:
    at = f"2026-12-03T10:00:{n:02d}.000Z"
    order_id = f"ord_{n:04d}"
    sample = sample_order()
    return sample.model_copy(
        update={
            "id": order_id,
            "status": status,
            "created_at": at,
            "updated_at": at,
            "user": {**sample.user, "id": user},
            "seller": {**sample.seller, "id": seller},
            "timeline": [TimelineEntry(status=status, at=at, source="api")],
            "outbox": OrderEvent(type=EventType.CREATED, order_id=order_id, version=1, occurred_at=at)
            if outbox
            else None,
        }
    )


def state(order_id: str = "ord_0001", integrator: str = "delivery", **fields: Any) -> DeliveryState:
    base: dict[str, Any] = {
        "order_id": order_id,
        "integrator": integrator,
        "status": DeliveryStatus.PENDING,
        "event": EventType.CREATED,
        "webhook_id": "msg_1",
        "updated_at": "2026-12-03T10:00:00.000Z",
    }
    return DeliveryState.model_validate({**base, **fields})


def test_an_order_is_inserted_once_and_read_back_as_written(store: Repositories) -> None:
    store.orders.insert(order(1))
    with pytest.raises(StaleWrite):
        store.orders.insert(order(1))
    assert store.orders.get("ord_0001") == order(1)
    assert store.orders.get("ord_9999") is None


def test_a_write_on_a_stale_version_is_refused_by_both_kinds_of_write(store: Repositories) -> None:
    store.orders.insert(order(1))
    changed = order(1).model_copy(update={"version": 2, "status": OrderStatus.ACCEPTED})
    store.orders.replace(changed, expected_version=1)
    with pytest.raises(StaleWrite):
        store.orders.replace(changed.model_copy(update={"version": 3}), expected_version=1)
    with pytest.raises(StaleWrite):
        store.orders.move_status(changed.model_copy(update={"version": 3}), 1, clear_outbox=False)
    store.orders.move_status(
        changed.model_copy(update={"version": 3, "status": OrderStatus.PREPARING}), 2, clear_outbox=False
    )
    stored = store.orders.get("ord_0001")
    assert stored is not None and (stored.version, stored.status) == (3, "preparing")


def test_the_outbox_mark_is_cleared_only_for_its_own_event(store: Repositories) -> None:
    marked = order(1, outbox=True)
    store.orders.insert(marked)
    assert store.orders.pending_outbox("2026-12-04") == ["ord_0001"]
    assert store.orders.pending_outbox("2026-12-02") == [], "younger than the cut-off: left to its request"
    assert not store.orders.clear_outbox("ord_0001", "another-event")
    assert marked.outbox is not None and store.orders.clear_outbox("ord_0001", marked.outbox.event_id)
    assert store.orders.pending_outbox("2026-12-04") == []
    moved = order(2, outbox=True)
    store.orders.insert(moved)
    store.orders.move_status(
        moved.model_copy(update={"version": 2, "status": OrderStatus.DISPATCHED}), 1, clear_outbox=True
    )
    assert store.orders.pending_outbox("2026-12-04") == []


def test_an_event_the_queue_already_has_stays_on_the_order_but_is_not_offered_to_the_sweeper(
    store: Repositories,
) -> None:
    queued = order(1, outbox=True).model_copy(update={"outbox_queued": True})
    store.orders.insert(queued)
    stored = store.orders.get("ord_0001")
    assert stored is not None and stored.outbox == queued.outbox and stored.outbox_queued
    assert store.orders.pending_outbox("2026-12-04") == []
    assert queued.outbox is not None and store.orders.clear_outbox("ord_0001", queued.outbox.event_id)
    cleared = store.orders.get("ord_0001")
    assert cleared is not None and cleared.outbox is None and not cleared.outbox_queued


def test_pages_are_newest_first_and_a_cursor_fits_only_its_own_query(store: Repositories) -> None:
    for n in range(1, 8):
        store.orders.insert(order(n, seller="s-1" if n % 2 else "s-2", user=f"u-{n % 3}"))
    seen: list[str] = []
    cursor = None
    while True:
        page = store.orders.list_orders(ListFilter(seller_id="s-1"), 2, cursor)
        seen += [o.id for o in page.orders]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["ord_0007", "ord_0005", "ord_0003", "ord_0001"]
    first = store.orders.list_orders(ListFilter(), 3, None)
    assert [o.id for o in first.orders] == ["ord_0007", "ord_0006", "ord_0005"]
    assert first.next_cursor is not None
    with pytest.raises(MalformedRequest):
        store.orders.list_orders(ListFilter(seller_id="s-2"), 3, first.next_cursor)
    with pytest.raises(MalformedRequest):
        store.orders.list_orders(ListFilter(), 3, "not-a-cursor")


def test_a_delivery_row_is_written_only_at_the_revision_read(store: Repositories) -> None:
    created = store.deliveries.put_state(state(), expected_revision=None)
    assert created.revision == 1
    with pytest.raises(StaleWrite):
        store.deliveries.put_state(state(), expected_revision=None)
    with pytest.raises(StaleWrite):
        store.deliveries.put_state(state(status=DeliveryStatus.DELIVERED), expected_revision=0)
    store.deliveries.set_fields(created, last_error="HTTP 503")
    with pytest.raises(StaleWrite):
        store.deliveries.set_fields(created, last_error="late writer")
    current = store.deliveries.get_state("ord_0001", "delivery")
    assert current is not None and (current.revision, current.last_error) == (2, "HTTP 503")


def test_an_outcomes_attempt_line_is_written_once_per_job_run_and_the_row_only_at_its_revision(
    store: Repositories,
) -> None:
    created = store.deliveries.put_state(state(), expected_revision=None)
    moment = datetime(2026, 12, 3, 10, 0, 1, tzinfo=UTC)
    line: dict[str, Any] = {"integrator": "delivery", "event": "order.created", "webhook_id": "msg_1", "attempt": 1}
    line |= {"at": "2026-12-03T10:00:01.000Z", "outcome": "delivered", "latency_ms": 12.0}
    done = created.model_copy(update={"status": DeliveryStatus.DELIVERED})
    with pytest.raises(StaleWrite):
        store.deliveries.put_state_with_attempt(done, 0, moment, 30, line_key="msg_1#delivery#1#1#0", **line)
    assert [s.status for s in store.deliveries.list_states("ord_0001")] == [DeliveryStatus.PENDING]
    store.deliveries.put_state_with_attempt(done, created.revision, moment, 30, line_key="msg_1#delivery#1#1#0", **line)
    assert [a["outcome"] for a in store.deliveries.list_attempts("ord_0001")] == ["delivered"], "one line per run"
    assert [s.status for s in store.deliveries.list_states("ord_0001")] == [DeliveryStatus.DELIVERED]
    later = {**line, "attempt": 2, "at": "2026-12-03T10:00:02.000Z", "outcome": "retry"}
    store.deliveries.add_attempt("ord_0001", moment, 30, line_key="msg_1#delivery#1#2#0", **later)
    assert [a["attempt"] for a in store.deliveries.list_attempts("ord_0001")] == [1, 2], "oldest first"


def test_a_parked_delivery_waits_unless_its_webhook_was_delivered_or_its_attempt_already_ran(
    store: Repositories,
) -> None:
    store.deliveries.put_state(state(status=DeliveryStatus.RETRYING, attempts=3), expected_revision=None)
    late = {"webhook_id": "msg_1", "attempt": 2, "event": "order.created", "resume": 0}
    assert not store.deliveries.park("ord_0001", "delivery", late, until=None, reason="late", now="2026-12-03T10")
    job = {**late, "attempt": 4}
    assert store.deliveries.park("ord_0001", "delivery", job, until=None, reason="circuit open", now="2026-12-03T11")
    parked = store.deliveries.get_state("ord_0001", "delivery")
    assert parked is not None and parked.status == DeliveryStatus.WAITING and parked.waiting_job == job
    assert parked.attempts == 3, "waiting spends no attempt"
    assert store.deliveries.count_waiting("delivery") == 1
    assert [s.order_id for s in store.deliveries.oldest_waiting("delivery", 10)] == ["ord_0001"]
    delivered = parked.model_copy(update={"status": DeliveryStatus.DELIVERED})
    delivered.mark_delivered("msg_1")
    store.deliveries.put_state(delivered, parked.revision)
    again = {**job, "attempt": 5}
    assert not store.deliveries.park("ord_0001", "delivery", again, until=None, reason="x", now="2026-12-03T12")
    assert store.deliveries.count_waiting("delivery") == 0


def test_an_integrators_deliveries_page_newest_order_first_in_its_range_and_status(store: Repositories) -> None:
    from chalicelib.domain.order import ulid_time

    def made_at(minute: int) -> str:
        return f"ord_{ulid_time(f'2026-12-01T10:{minute:02d}:00.000Z')}{minute:016d}"

    for minute in range(7):
        status = DeliveryStatus.FAILED if minute % 2 else DeliveryStatus.DELIVERED
        store.deliveries.put_state(state(made_at(minute), status=status), None)
    store.deliveries.put_state(state(made_at(3), integrator="loyalty"), None)

    def walk(**query: Any) -> list[str]:
        seen: list[str] = []
        before: str | None = None
        for _ in range(10):
            rows, before = store.deliveries.list_for_integrator("delivery", before=before, **query)
            seen += [row["order_id"] for row in rows]
            if before is None:
                return seen
        raise AssertionError("the pages never ended")

    assert walk(status=None, since="0", until="~", limit=2) == [made_at(m) for m in range(6, -1, -1)]
    assert walk(status=None, since="0", until="~", limit=1) == [made_at(m) for m in range(6, -1, -1)]
    assert walk(status="failed", since="0", until="~", limit=2) == [made_at(m) for m in (5, 3, 1)]
    ranged = walk(status=None, since="2026-12-01T10:02:00Z", until="2026-12-01T10:04:59Z", limit=2)
    assert ranged == [made_at(m) for m in (4, 3, 2)], "only this integrator's, made in the range"
    rows, _ = store.deliveries.list_for_integrator("delivery", status=None, since="0", until="~", before=None, limit=1)
    assert rows[0].keys() >= {"order_id", "status", "event", "attempts", "updated_at", "last_status_code"}
