"""The order use cases (create, change, cancel, status moves) on the in-memory twin: each rule a POS or a
partner relies on, checked in milliseconds. The same rules hold on DynamoDB (tests/functional: the routes, and
the storage contract that keeps the twin honest)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chalicelib.domain.clock import utcnow
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.order_list import ListFilter
from chalicelib.domain.order_status import OrderStatus
from chalicelib.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed
from chalicelib.orders import progress, service
from chalicelib.orders.models import CreateOrderRequest
from tests.support.twin import Twin
from tools.sample_order import order_body

ADMIN = Principal("t-admin", Role.ADMIN)
SELLER = Principal("t-s1", Role.SELLER, "s-1")
OTHER_SELLER = Principal("t-s2", Role.SELLER, "s-2")


def create(principal: Principal = SELLER, seller: str = "s-1") -> dict[str, Any]:
    request = CreateOrderRequest.model_validate(order_body(seller_id=seller))
    resource, replayed = service.create_order(request, principal, correlation_id="c-1", idempotency_key=None)
    assert not replayed
    return resource


def test_a_created_order_is_stored_pending_and_its_event_queued_once(twin: Twin) -> None:
    resource = create()
    stored = twin.repos.orders.get(resource["id"])
    assert stored is not None and stored.status == "pending" and stored.version == 1
    assert stored.outbox is not None, "marked until the dispatcher has the event: a lost send is swept"
    assert twin.events() == [("order.created", 1)]
    assert resource["order"]["id"] == resource["id"]


def test_a_seller_token_creates_only_for_its_own_seller(twin: Twin) -> None:
    with pytest.raises(Forbidden):
        create(SELLER, seller="s-2")
    assert twin.queued == [] and twin.repos.orders.list_orders(ListFilter(), 10, None).orders == []


def test_another_sellers_order_is_not_found_rather_than_forbidden(twin: Twin) -> None:
    order_id = create()["id"]
    with pytest.raises(NotFound):
        service.get_order(order_id, OTHER_SELLER)
    assert service.get_order(order_id, ADMIN)["id"] == order_id


def test_a_change_bumps_the_version_and_queues_an_update(twin: Twin) -> None:
    order_id = create()["id"]
    changed = service.update_order(
        order_id, {"order": {"user_note": "ring twice"}}, SELLER, if_match=1, correlation_id=None
    )
    assert (changed["version"], changed["order"]["user_note"]) == (2, "ring twice")
    assert twin.events() == [("order.created", 1), ("order.updated", 2)]


def test_a_change_that_changes_nothing_writes_and_queues_nothing(twin: Twin) -> None:
    resource = create()
    same = service.update_order(
        resource["id"],
        {"order": {"user_note": resource["order"]["user_note"]}},
        SELLER,
        if_match=None,
        correlation_id=None,
    )
    assert same["version"] == 1 and twin.events() == [("order.created", 1)]


def test_a_stale_if_match_is_refused_before_anything_is_applied(twin: Twin) -> None:
    order_id = create()["id"]
    service.update_order(order_id, {"order": {"user_note": "a"}}, SELLER, if_match=1, correlation_id=None)
    with pytest.raises(PreconditionFailed):
        service.update_order(order_id, {"order": {"user_note": "b"}}, SELLER, if_match=1, correlation_id=None)
    stored = twin.repos.orders.get(order_id)
    assert stored is not None and stored.details["user_note"] == "a"


def test_a_patch_is_validated_against_the_whole_order(twin: Twin) -> None:
    order_id = create()["id"]
    with pytest.raises(InvalidInput) as refused:
        service.update_order(
            order_id,
            {"order": {"items": [{"id": "i-1", "name": "x", "quantity": 0}]}},
            SELLER,
            if_match=None,
            correlation_id=None,
        )
    assert any("quantity" in detail["field"] for detail in refused.value.details)


def test_without_if_match_a_change_is_reapplied_on_top_of_a_concurrent_move(twin: Twin) -> None:
    order_id = create()["id"]
    real_replace = twin.repos.orders.replace
    raced = threading.Event()

    def replace_after_a_callback(order, expected_version):  # type: ignore[no-untyped-def]
        if not raced.is_set():
            raced.set()
            progress.apply_status(order_id, OrderStatus.ACCEPTED, source="delivery")  # lands between read and write
        real_replace(order, expected_version)

    twin.repos.orders.replace = replace_after_a_callback  # type: ignore[method-assign]
    changed = service.update_order(order_id, {"order": {"user_note": "x"}}, SELLER, if_match=None, correlation_id=None)
    assert (changed["status"], changed["version"], changed["order"]["user_note"]) == ("accepted", 3, "x")


def test_cancel_ends_the_order_once_and_tells_the_integrators_once(twin: Twin) -> None:
    order_id = create()["id"]
    first = service.cancel_order(order_id, SELLER, if_match=None, correlation_id=None, reason="customer left")
    again = service.cancel_order(order_id, SELLER, if_match=None, correlation_id=None, reason=None)
    assert first["status"] == again["status"] == "cancelled"
    assert twin.events() == [("order.created", 1), ("order.cancelled", 2)]
    assert first["timeline"][-1]["message"] == "customer left"
    with pytest.raises(Conflict):
        service.update_order(order_id, {"order": {"user_note": "late"}}, SELLER, if_match=None, correlation_id=None)


def test_an_ended_order_cannot_be_cancelled(twin: Twin) -> None:
    order_id = create()["id"]
    for status in ("accepted", "preparing", "ready", "picked_up", "delivered"):
        assert progress.apply_status(order_id, OrderStatus(status), source="delivery")[1]
    with pytest.raises(Conflict):
        service.cancel_order(order_id, SELLER, if_match=None, correlation_id=None, reason=None)


def test_status_only_moves_forward(twin: Twin) -> None:
    order_id = create()["id"]
    assert progress.apply_status(order_id, OrderStatus.PREPARING, source="delivery")[1]
    stored, moved = progress.apply_status(order_id, OrderStatus.ACCEPTED, source="loyalty")
    assert not moved and stored is not None and stored.status == "preparing"
    assert [entry.status for entry in stored.timeline] == ["pending", "preparing"]


def test_the_sweeper_requeues_only_events_that_never_reached_the_queue(
    twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create sends its event before writing the order; only when that send fails is the order left for the
    sweeper, which sends it once the grace period is over."""
    from datetime import timedelta

    from chalicelib import queue
    from chalicelib.settings import get_settings, reset_settings

    monkeypatch.setenv("SWEEPER_GRACE_SECONDS", "60")  # the default, whatever an earlier test configured
    reset_settings()
    sent_first = queue.send

    def refused(*args: Any, **kwargs: Any) -> str:
        raise ConnectionError("SQS unreachable")

    monkeypatch.setattr(queue, "send", refused)
    lost = create()["id"]
    monkeypatch.setattr(queue, "send", sent_first)
    queued = create()["id"]
    assert [m.order_id for m in twin.queued] == [queued]  # type: ignore[attr-defined]
    twin.queued.clear()
    assert service.sweep_outbox() == 0, "within the grace period the create's own request may still send it"
    grace = timedelta(seconds=get_settings().sweeper_grace_seconds + 1)
    monkeypatch.setattr(service, "utcnow", lambda: utcnow() + grace)
    assert service.sweep_outbox() == 1
    assert [m.order_id for m in twin.queued] == [lost]  # type: ignore[attr-defined]
