"""Delivery deadlines and acknowledgement through the public surface: the API, the queue drained by the real
SQS handler, real HTTP integrators on loopback, signed callbacks, and the SNS topic.

Time is virtual: `clock.utcnow` is frozen and moved by the tests, and (for the retry schedule) each delayed
queue message makes the clock jump by its delay and is delivered at once, as if the delay had passed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import standardwebhooks

from chalicelib.domain.clock import iso
from chalicelib.messages import AckCheck
from tests.support.api import Api
from tests.support.aws import notifications
from tests.support.fake_integrator import FakeIntegrator, Reply
from tools.poller import drain

ORDERS = "/api/v1/orders"


class VirtualClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
        self.jump_on_delay = False
        self.delays: list[float] = []

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def seconds_since(self, start: datetime, value: str) -> float:
        return (datetime.fromisoformat(value.replace("Z", "+00:00")) - start).total_seconds()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, aws: dict[str, str]) -> VirtualClock:
    from chalicelib import queue
    from chalicelib.domain import clock as service_clock

    virtual = VirtualClock()
    monkeypatch.setattr(service_clock, "utcnow", lambda: virtual.now)
    real_send = queue.send

    def send(message: Any, *, delay_seconds: float = 0, correlation_id: str | None = None) -> str:
        if virtual.jump_on_delay and delay_seconds:
            whole = max(0, min(queue.MAX_DELAY_SECONDS, round(delay_seconds)))  # what SQS would wait
            virtual.delays.append(whole)
            virtual.advance(whole)
            delay_seconds = 0
        return real_send(message, delay_seconds=delay_seconds, correlation_id=correlation_id)

    monkeypatch.setattr(queue, "send", send)
    return virtual


def published(phone_url: str) -> list[dict[str, Any]]:
    """Each notification since the last call as {"event", "audience", "integrator", "body"}."""
    found = []
    for envelope in notifications(phone_url):
        attributes = {name: value["Value"] for name, value in envelope["MessageAttributes"].items()}
        found.append({**attributes, "body": json.loads(envelope["Message"])})
    return found


def register(api: Api, name: str, url: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "url": url, "auth": {"type": "none"}, "timeout_seconds": 1, **extra}
    response = api.post("/api/v1/integrators", body)
    assert response.status_code == 201, response.body
    return dict(response.json_body)


def run(app: Any, sqs: Any, aws: dict[str, str]) -> None:
    results = drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert all(not r.failed_ids for r in results), results


def delivery(api: Api, order_id: str, integrator: str) -> dict[str, Any]:
    return next(d for d in api.get(f"{ORDERS}/{order_id}").json_body["deliveries"] if d["integrator"] == integrator)


def new_order(api: Api, seller_id: str = "s-1") -> str:
    from tools.sample_order import order_body

    response = api.post(ORDERS, order_body(seller_id=seller_id))
    assert response.status_code == 201, response.body
    return str(response.json_body["id"])


# --- deadline --------------------------------------------------------------------------------------------------


def test_deadline_cuts_the_retry_schedule_and_expires_the_delivery_once(
    api: Api,
    app: Any,
    sqs: Any,
    aws: dict[str, str],
    fake: FakeIntegrator,
    clock: VirtualClock,
    phone: str,
    configure: Callable[..., None],
) -> None:
    # Given delays of 1, 2, 4, 8 s and a 5 s deadline
    configure(DISPATCH_RETRY_DELAYS="1,2,4,8")
    fake.default("/down", Reply(503))
    register(api, "down", fake.url("/down"), deliver_within_seconds=5)
    clock.jump_on_delay = True
    raised = clock.now
    order_id = new_order(api)

    # When the integrator keeps failing
    run(app, sqs, aws)

    # Then it sees the attempts that fit: at 0, 1 and 3 s, then the 4 s delay is cut to 1 s; 8 s does not fit
    assert len(fake.requests("/down")) == 4
    log = api.get(f"{ORDERS}/{order_id}/deliveries").json_body
    times = sorted(clock.seconds_since(raised, a["at"]) for a in log["attempts"])
    assert times == [0, 1, 3, 4] and all(t < 5 for t in times)
    assert clock.delays == [1, 2, 1]
    assert sorted(a["outcome"] for a in log["attempts"]) == ["expired", "retry", "retry", "retry"]
    state = delivery(api, order_id, "down")
    assert state["status"] == "expired" and state["attempts"] == 4
    assert state["deliver_by"] == iso(raised + timedelta(seconds=5)) and state["expired_at"]
    assert log["deliveries"][0]["status"] == "expired"

    # And the seller is told once, with the integrator in the attributes; the customer gets no push about it
    expired = [n for n in published(phone) if n["event"] == "delivery.expired"]
    assert len(expired) == 1
    assert expired[0]["audience"] == "seller" and expired[0]["integrator"] == "down"
    assert expired[0]["order_id"] == order_id and expired[0]["seller_id"] == "s-1"

    # A redelivered last job changes nothing and publishes nothing again
    last = {"kind": "delivery_retry", "order_id": order_id, "integrator": "down", "event": "order.created"}
    job = {**last, "version": 1, "webhook_id": fake.requests("/down")[0].headers["webhook-id"], "attempt": 4}
    sqs.send_message(QueueUrl=aws["ORDERS_QUEUE_URL"], MessageBody=json.dumps({**job, "raised_at": iso(raised)}))
    run(app, sqs, aws)
    assert len(fake.requests("/down")) == 4
    assert [n for n in published(phone) if n["event"] == "delivery.expired"] == []


def test_a_delivery_that_waited_past_its_deadline_expires_instead_of_being_sent_late(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, clock: VirtualClock
) -> None:
    register(api, "partner", fake.url("/p"), deliver_within_seconds=30)
    order_id = new_order(api)
    clock.advance(31)  # the queue (or an open circuit) held the event longer than the deadline
    run(app, sqs, aws)
    assert fake.requests("/p") == []
    state = delivery(api, order_id, "partner")
    assert state["status"] == "expired" and state["attempts"] == 0
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "failed", "no partner has the order"


def test_a_retry_held_for_a_disabled_integrator_expires_at_its_deadline(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, clock: VirtualClock, phone: str
) -> None:
    fake.script("/p", Reply(503))
    register(api, "partner", fake.url("/p"), deliver_within_seconds=120)
    raised = clock.now
    order_id = new_order(api)
    run(app, sqs, aws)  # attempt 1 fails; attempt 2 waits on the queue
    assert api.patch("/api/v1/integrators/partner", {"enabled": False}).status_code == 200
    clock.advance(121)
    state = api.get(f"{ORDERS}/{order_id}/deliveries").json_body["deliveries"][0]
    job = {"order_id": order_id, "integrator": "partner", "event": "order.created", "version": 1, "attempt": 2}
    registration = api.get("/api/v1/integrators/partner").json_body["registration_id"]
    body = {**job, "kind": "delivery_retry", "webhook_id": state["webhook_id"], "raised_at": iso(raised)}
    body["registration_id"] = registration  # as the dispatcher queues it
    sqs.send_message(QueueUrl=aws["ORDERS_QUEUE_URL"], MessageBody=json.dumps(body))
    run(app, sqs, aws)
    assert len(fake.requests("/p")) == 1
    assert delivery(api, order_id, "partner")["status"] == "expired"
    assert [n["event"] for n in published(phone) if n["audience"] == "seller"] == ["delivery.expired"]


def test_a_waiting_delivery_expires_at_its_deadline_not_when_it_is_released(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, clock: VirtualClock, phone: str
) -> None:
    fake.script("/p", Reply(503, headers={"Retry-After": "600"}))  # the real retry is cut to the deadline
    register(api, "partner", fake.url("/p"), deliver_within_seconds=120)
    raised = clock.now
    order_id = new_order(api)
    run(app, sqs, aws)
    assert api.patch("/api/v1/integrators/partner", {"enabled": False}).status_code == 200
    state = api.get(f"{ORDERS}/{order_id}/deliveries").json_body["deliveries"][0]
    job = {"order_id": order_id, "integrator": "partner", "event": "order.created", "version": 1, "attempt": 2}
    registration = api.get("/api/v1/integrators/partner").json_body["registration_id"]
    body = {**job, "kind": "delivery_retry", "webhook_id": state["webhook_id"], "raised_at": iso(raised)}
    body["registration_id"] = registration  # as the dispatcher queues it
    sqs.send_message(QueueUrl=aws["ORDERS_QUEUE_URL"], MessageBody=json.dumps(body))
    clock.jump_on_delay = True  # the deadline timer of the parked delivery lands when it is due
    run(app, sqs, aws)
    assert clock.delays == [120]
    assert clock.now == raised + timedelta(seconds=120)
    assert delivery(api, order_id, "partner")["status"] == "expired", "expired on time, still disabled"
    assert len(fake.requests("/p")) == 1
    assert [n["event"] for n in published(phone) if n["audience"] == "seller"] == ["delivery.expired"]


def test_an_admin_can_send_an_expired_delivery_again_with_a_fresh_deadline(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, clock: VirtualClock, seller_token: str
) -> None:
    fake.default("/p", Reply(200, json={"external_id": "P-1"}))
    register(api, "partner", fake.url("/p"), deliver_within_seconds=30)
    register(api, "other", fake.url("/o"))
    order_id = new_order(api)
    clock.advance(60)
    run(app, sqs, aws)
    assert delivery(api, order_id, "partner")["status"] == "expired"
    retry = f"{ORDERS}/{order_id}/deliveries/partner/retry"
    assert api.as_(seller_token).post(retry).status_code == 403
    assert api.post(retry).status_code == 202
    run(app, sqs, aws)
    state = delivery(api, order_id, "partner")
    assert state["status"] == "delivered" and state["expired_at"] is None
    assert state["deliver_by"] == iso(clock.now + timedelta(seconds=30)), "the new round counts from the retry"
    states = api.get(f"{ORDERS}/{order_id}/deliveries").json_body["deliveries"]
    webhook = next(d["webhook_id"] for d in states if d["integrator"] == "partner")
    assert [r.headers["webhook-id"] for r in fake.requests("/p")] == [webhook], "same webhook-id, sent once"


def test_deadline_is_validated_and_can_be_removed(api: Api, fake: FakeIntegrator) -> None:
    for bad in (0, -5, 86_401, "soon", 1.5):
        body = {"name": "x", "url": fake.url("/x"), "auth": {"type": "none"}, "deliver_within_seconds": bad}
        assert api.post("/api/v1/integrators", body).status_code == 422, bad
    shown = register(api, "partner", fake.url("/p"), deliver_within_seconds=600, ack_within_seconds=120)
    assert (shown["deliver_within_seconds"], shown["ack_within_seconds"]) == (600, 120)
    changed = api.patch("/api/v1/integrators/partner", {"deliver_within_seconds": None, "ack_within_seconds": 30})
    assert changed.status_code == 200
    assert "deliver_within_seconds" not in changed.json_body and changed.json_body["ack_within_seconds"] == 30


# --- acknowledgement -------------------------------------------------------------------------------------------


class Kitchen:
    """A food-ordering platform that must acknowledge within 60 s, and signs its callbacks."""

    def __init__(self, api: Api, fake: FakeIntegrator, window: int = 60) -> None:
        created = register(api, "kitchen", fake.url("/kitchen"), ack_within_seconds=window)
        self.api, self.secret, self.sent = api, created["callback_secret"], 0

    def call_back(self, order_id: str, status: str = "accepted") -> Any:
        self.sent += 1
        raw = json.dumps({"order_id": order_id, "status": status}).encode()
        msg_id, moment = f"cb_kitchen_{self.sent}_{time.monotonic_ns()}", datetime.now(UTC)
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": standardwebhooks.Webhook(self.secret).sign(msg_id, moment, raw.decode()),
            "Content-Type": "application/json",
        }
        return self.api.request("POST", "/api/v1/callbacks/kitchen", raw=raw, headers=headers, token="")


@pytest.fixture
def kitchen(api: Api, fake: FakeIntegrator) -> Kitchen:
    return Kitchen(api, fake)


def check_now(sqs: Any, aws: dict[str, str], api: Api, order_id: str, times: int = 1) -> None:
    """Hand the acknowledgement check to the dispatcher as SQS does when its delay has passed (`times` > 1: SQS
    delivering it more than once)."""
    due = delivery(api, order_id, "kitchen")["ack_due_at"]
    body = AckCheck(order_id=order_id, integrator="kitchen", due_at=due).model_dump_json()
    for _ in range(times):
        sqs.send_message(QueueUrl=aws["ORDERS_QUEUE_URL"], MessageBody=body)


def overdue_ids(api: Api, token: str | None = None) -> list[str]:
    response = api.get(f"{ORDERS}?delivery=overdue", token=token)
    assert response.status_code == 200, response.body
    return [order["id"] for order in response.json_body["items"]]


def test_2xx_opens_the_window_and_queues_its_check(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], kitchen: Kitchen, clock: VirtualClock, phone: str
) -> None:
    order_id = new_order(api)
    run(app, sqs, aws)
    state = delivery(api, order_id, "kitchen")
    assert state["status"] == "delivered" and state["ack"] == "pending"
    assert state["ack_due_at"] == iso(clock.now + timedelta(seconds=60))
    log = api.get(f"{ORDERS}/{order_id}/deliveries").json_body["deliveries"][0]
    assert log["ack"] == "pending" and log["ack_due_at"] == state["ack_due_at"]
    attributes = sqs.get_queue_attributes(QueueUrl=aws["ORDERS_QUEUE_URL"], AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1", "the check waits on the queue: no scan"


def test_callback_in_time_acknowledges_and_the_check_then_reports_nothing(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], kitchen: Kitchen, clock: VirtualClock, phone: str
) -> None:
    order_id = new_order(api)
    run(app, sqs, aws)
    clock.advance(59)
    assert kitchen.call_back(order_id).status_code == 200
    state = delivery(api, order_id, "kitchen")
    assert state["ack"] == "acknowledged" and state["acked_at"] == iso(clock.now)
    clock.advance(2)
    check_now(sqs, aws, api, order_id)
    run(app, sqs, aws)
    assert delivery(api, order_id, "kitchen")["ack"] == "acknowledged"
    assert [n for n in published(phone) if n["event"] == "delivery.unacknowledged"] == []
    assert overdue_ids(api) == []


def test_no_callback_makes_it_overdue_once_for_the_seller_and_a_late_callback_marks_it_late(
    api: Api,
    app: Any,
    sqs: Any,
    aws: dict[str, str],
    kitchen: Kitchen,
    clock: VirtualClock,
    phone: str,
    seller_token: str,
) -> None:
    order_id = new_order(api)
    other_seller = new_order(api, seller_id="s-2")
    run(app, sqs, aws)
    published(phone)  # forget the dispatch notifications

    # The window closes without a callback; SQS hands over the check three times (a duplicate, a redelivery)
    clock.advance(60)
    check_now(sqs, aws, api, order_id, times=3)
    check_now(sqs, aws, api, other_seller)
    run(app, sqs, aws)

    state = delivery(api, order_id, "kitchen")
    assert state["ack"] == "overdue" and state["status"] == "delivered"
    alerts = [n for n in published(phone) if n["event"] == "delivery.unacknowledged"]
    assert [(n["order_id"], n["audience"], n["integrator"]) for n in alerts if n["order_id"] == order_id] == [
        (order_id, "seller", "kitchen")
    ], "published once, for the seller"
    text = alerts[0]["body"]["body"]
    assert "kitchen" in text and "your order" not in text.lower(), "addressed to the seller, not the customer"
    order = api.get(f"{ORDERS}/{order_id}").json_body
    notes = [t for t in order["timeline"] if t.get("event") == "delivery.unacknowledged"]
    assert len(notes) == 1 and notes[0]["source"] == "kitchen" and notes[0]["status"] == "dispatched"
    assert order["status"] == "dispatched", "an overdue acknowledgement is a note, not a status change"

    # The overdue filter answers from its index, per seller for seller tokens
    assert set(overdue_ids(api)) == {order_id, other_seller}
    assert overdue_ids(api, token=seller_token) == [order_id]
    s2 = api.post("/api/v1/tokens", {"role": "seller", "seller_id": "s-2"}).json_body["token"]
    assert overdue_ids(api, token=s2) == [other_seller]
    assert api.get(f"{ORDERS}?delivery=late").status_code == 422

    # A later callback marks it late; the order leaves the overdue list, its timeline keeps the note
    clock.advance(300)
    assert kitchen.call_back(order_id).status_code == 200
    assert delivery(api, order_id, "kitchen")["ack"] == "late"
    assert overdue_ids(api) == [other_seller]
    later = api.get(f"{ORDERS}/{order_id}").json_body["timeline"]
    assert len([t for t in later if t.get("event") == "delivery.unacknowledged"]) == 1

    # A check redelivered after all that still publishes nothing
    check_now(sqs, aws, api, order_id)
    run(app, sqs, aws)
    assert [n for n in published(phone) if n["event"] == "delivery.unacknowledged"] == []


def test_a_cancelled_order_stops_the_clock(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], kitchen: Kitchen, clock: VirtualClock, phone: str
) -> None:
    order_id = new_order(api)
    run(app, sqs, aws)
    assert api.delete(f"{ORDERS}/{order_id}").status_code == 200
    run(app, sqs, aws)
    clock.advance(61)
    check_now(sqs, aws, api, order_id)
    run(app, sqs, aws)
    assert delivery(api, order_id, "kitchen")["ack"] == "stopped"
    assert [n for n in published(phone) if n["event"] == "delivery.unacknowledged"] == []
    assert overdue_ids(api) == []


def test_an_early_check_waits_for_the_window_to_close(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, clock: VirtualClock
) -> None:
    """Windows longer than SQS's 15-minute delay: the check goes back on the queue until the window closes."""
    kitchen = Kitchen(api, fake, window=3600)
    order_id = new_order(api)
    run(app, sqs, aws)
    clock.jump_on_delay = True  # each re-queued check lands when its delay has passed
    check_now(sqs, aws, api, order_id)
    run(app, sqs, aws)
    assert clock.delays[-4:] == [900, 900, 900, 900], "one queue message per 15 minutes"
    assert delivery(api, order_id, "kitchen")["ack"] == "overdue"
    assert kitchen.call_back(order_id).status_code == 200
    assert delivery(api, order_id, "kitchen")["ack"] == "late"
