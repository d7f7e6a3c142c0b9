"""Integrator callbacks and customer notifications: signatures, the order state machine, SNS fan-out."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import pytest
import standardwebhooks

from tests.support.api import Api
from tests.support.aws import notifications
from tests.support.fake_integrator import FakeIntegrator, Reply
from tools.poller import drain
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"


class Partner:
    """An integrator as the outside world sees us: registered, received orders, signs its callbacks."""

    def __init__(self, api: Api, name: str, fake: FakeIntegrator, *, path: str | None = None, **fields: Any) -> None:
        created = api.post(
            "/api/v1/integrators",
            {"name": name, "url": fake.url(path or f"/{name}"), "auth": {"type": "none"}, "timeout_seconds": 1}
            | fields,
        )
        assert created.status_code == 201, created.body
        self.api, self.name = api, name
        self.secret = created.json_body["callback_secret"]
        self.path = f"/api/v1/callbacks/{name}"
        self.sent = 0

    def post(
        self,
        body: dict[str, Any] | bytes,
        *,
        msg_id: str | None = None,
        secret: str | None = None,
        skew: int = 0,
        headers: dict[str, str] | None = None,
    ) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.sent += 1
        msg_id = msg_id or f"cb_{self.name}_{self.sent}_{time.monotonic_ns()}"
        moment = int(time.time()) + skew
        signer = standardwebhooks.Webhook(secret or self.secret)
        from datetime import UTC, datetime

        signature = signer.sign(msg_id, datetime.fromtimestamp(moment, tz=UTC), raw.decode())
        all_headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(moment),
            "webhook-signature": signature,
            "Content-Type": "application/json",
            **(headers or {}),
        }
        return self.api.request("POST", self.path, raw=raw, headers=all_headers, token="")

    def status(self, order_id: str, status: str, **extra: Any) -> Any:
        return self.post({"order_id": order_id, "status": status, **extra})


@pytest.fixture
def delivered(api: Api, app: Any, aws: dict[str, str], fake: FakeIntegrator) -> tuple[str, Partner, Partner]:
    """An order delivered to two partners, with the queue drained."""
    courier, shop = Partner(api, "courier", fake), Partner(api, "shop", fake)
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    drain(app, boto3.client("sqs", region_name="us-east-1"), aws["ORDERS_QUEUE_URL"])
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "dispatched"
    return order_id, courier, shop


# --- signatures ------------------------------------------------------------------------------------------------


def test_signed_status_moves_the_order_and_lands_on_the_timeline(api: Api, delivered: Any) -> None:
    order_id, courier, _ = delivered
    response = courier.status(order_id, "accepted", external_id="C-9", eta="12:30", message="On it")
    assert response.status_code == 200, response.body
    assert response.json_body["applied"] is True and response.json_body["order_status"] == "accepted"
    order = api.get(f"{ORDERS}/{order_id}").json_body
    assert order["status"] == "accepted"
    assert order["timeline"][-1] == {
        "status": "accepted",
        "at": order["timeline"][-1]["at"],
        "source": "courier",
        "message": "On it",
    }
    courier_state = next(d for d in order["deliveries"] if d["integrator"] == "courier")
    assert courier_state["remote_status"] == "accepted" and courier_state["external_id"] == "C-9"
    assert courier_state["remote_eta"] == "12:30"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"headers": {"webhook-signature": "v1,AAAA"}}, "no_valid_signature"),
        ({"secret": "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ=="}, "no_valid_signature"),
        ({"skew": -360}, "timestamp_out_of_range"),
        ({"skew": 360}, "timestamp_out_of_range"),
    ],
)
def test_bad_or_stale_signatures_are_401(api: Api, delivered: Any, tamper: dict[str, Any], reason: str) -> None:
    order_id, courier, _ = delivered
    response = courier.post({"order_id": order_id, "status": "accepted"}, **tamper)
    assert response.status_code == 401
    assert reason in response.json_body["error"]["message"]
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "dispatched"


def test_missing_signature_is_401(api: Api, delivered: Any) -> None:
    order_id, courier, _ = delivered
    response = api.request("POST", courier.path, {"order_id": order_id, "status": "accepted"}, token="")
    assert response.status_code == 401


@pytest.mark.parametrize(
    "tamper",
    [
        {"headers": {"webhook-signature": ""}},
        {"headers": {"webhook-signature": "v1,AAAA"}},
        {"secret": "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ=="},
        {"skew": -360},
    ],
)
def test_an_unsigned_callback_tells_a_registered_name_from_no_other(
    api: Api, delivered: Any, tamper: dict[str, Any]
) -> None:
    """401 with the same body for a registered and an unknown name (issue 20): DESIGN.md's "404 for an unknown
    integrator" would let anyone list the partners' names by probing the route. Only a callback that proves it
    comes from the integrator learns more (404 for an order it never received)."""
    order_id, courier, _ = delivered
    known = courier.post({"order_id": order_id, "status": "accepted"}, msg_id="cb-probe", **tamper)
    courier.path = "/api/v1/callbacks/nobody"
    unknown = courier.post({"order_id": order_id, "status": "accepted"}, msg_id="cb-probe", **tamper)
    courier.path = "/api/v1/callbacks/Not_A_Name"
    malformed = courier.post({"order_id": order_id, "status": "accepted"}, msg_id="cb-probe", **tamper)
    assert known.status_code == unknown.status_code == malformed.status_code == 401
    assert known.json_body == unknown.json_body == malformed.json_body


def test_a_signed_callback_for_an_unknown_integrator_name_is_401(api: Api, delivered: Any) -> None:
    """Signed with the courier's secret but sent to a name nobody registered: nobody's signature, 401."""
    order_id, courier, _ = delivered
    courier.path = "/api/v1/callbacks/nobody"
    assert courier.status(order_id, "accepted").status_code == 401


def test_one_integrator_cannot_touch_orders_it_never_received(api: Api, delivered: Any, fake: Any) -> None:
    order_id, courier, _ = delivered
    latecomer = Partner(api, "latecomer", fake)
    assert latecomer.status(order_id, "delivered").status_code == 404
    assert courier.status("ord_unknown", "accepted").status_code == 404
    # A valid signature from another integrator's secret does not pass either.
    assert courier.post({"order_id": order_id, "status": "accepted"}, secret=latecomer.secret).status_code == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{oops", 400), ({"status": "accepted"}, 422), ({"order_id": "x", "status": "ok", "colour": 1}, 422)],
)
def test_bad_callback_bodies(api: Api, delivered: Any, body: Any, status: int) -> None:
    _, courier, _ = delivered
    assert courier.post(body).status_code == status


def test_rotated_callback_secret_old_and_new_both_pass(api: Api, delivered: Any) -> None:
    order_id, courier, _ = delivered
    old = courier.secret
    rotated = api.patch("/api/v1/integrators/courier", {"rotate_callback_secret": True}).json_body
    new = rotated["callback_secret"]
    assert new != old
    assert (
        courier.status(
            order_id,
            "accepted",
        ).status_code
        == 200
    )  # signed with the old secret
    assert courier.post({"order_id": order_id, "status": "preparing"}, secret=new).status_code == 200


def test_a_rotated_out_callback_secret_stops_working_after_the_overlap(
    api: Api, delivered: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20: the previous secret stayed valid until the next rotation, with no end. Now for 24 h (the
    default of CALLBACK_SECRET_OVERLAP_SECONDS), in this container and in one that cached it earlier."""
    from chalicelib import callbacks

    order_id, courier, _ = delivered
    old = courier.secret
    new = api.patch("/api/v1/integrators/courier", {"rotate_callback_secret": True}).json_body["callback_secret"]
    assert courier.post({"order_id": order_id, "status": "accepted"}, secret=old).status_code == 200
    day = 86400
    monkeypatch.setattr(callbacks, "wall_clock", lambda: time.time() + day - 60)
    assert courier.post({"order_id": order_id, "status": "preparing"}, secret=old, skew=day - 60).status_code == 200
    monkeypatch.setattr(callbacks, "wall_clock", lambda: time.time() + day + 1)
    late = courier.post({"order_id": order_id, "status": "ready"}, secret=old, skew=day + 1)
    assert late.status_code == 401
    assert courier.post({"order_id": order_id, "status": "ready"}, secret=new, skew=day + 1).status_code == 200


def test_the_previous_callback_secret_can_be_expired_at_once(api: Api, delivered: Any) -> None:
    order_id, courier, _ = delivered
    old = courier.secret
    new = api.patch("/api/v1/integrators/courier", {"rotate_callback_secret": True}).json_body["callback_secret"]
    assert courier.post({"order_id": order_id, "status": "accepted"}, secret=old).status_code == 200
    expired = api.patch("/api/v1/integrators/courier", {"expire_previous_callback_secret": True})
    assert expired.status_code == 200 and "callback_secret" not in expired.json_body
    assert courier.post({"order_id": order_id, "status": "preparing"}, secret=old).status_code == 401
    assert courier.post({"order_id": order_id, "status": "preparing"}, secret=new).status_code == 200
    # A leaked secret: rotate and end the old one in one change; only the newest works.
    both = api.patch(
        "/api/v1/integrators/courier", {"rotate_callback_secret": True, "expire_previous_callback_secret": True}
    )
    newest = both.json_body["callback_secret"]
    assert courier.post({"order_id": order_id, "status": "ready"}, secret=new).status_code == 401
    assert courier.post({"order_id": order_id, "status": "ready"}, secret=newest).status_code == 200


# --- idempotency -----------------------------------------------------------------------------------------------


def test_same_webhook_id_twice_is_answered_the_same_and_changes_nothing(api: Api, delivered: Any, phone: str) -> None:
    order_id, courier, _ = delivered
    notifications(phone)
    first = courier.post({"order_id": order_id, "status": "accepted"}, msg_id="cb-1")
    version = api.get(f"{ORDERS}/{order_id}").json_body["version"]
    second = courier.post({"order_id": order_id, "status": "accepted"}, msg_id="cb-1")
    assert second.status_code == first.status_code == 200
    assert second.json_body["duplicate"] is True and second.json_body["order_status"] == "accepted"
    assert api.get(f"{ORDERS}/{order_id}").json_body["version"] == version
    assert [n["MessageAttributes"]["event"]["Value"] for n in notifications(phone)] == ["order.accepted"]


# --- state machine ---------------------------------------------------------------------------------------------


def test_regression_is_refused_with_409(api: Api, delivered: Any) -> None:
    order_id, courier, _ = delivered
    assert courier.status(order_id, "preparing").status_code == 200
    response = courier.status(order_id, "accepted")
    assert response.status_code == 409 and response.json_body["error"]["code"] == "status_regression"
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "preparing"


def test_nothing_moves_an_order_out_of_an_end_state(api: Api, delivered: Any) -> None:
    order_id, courier, shop = delivered
    assert courier.status(order_id, "delivered").status_code == 200
    response = shop.status(order_id, "preparing")
    assert response.status_code == 409 and response.json_body["error"]["code"] == "order_finished"
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "delivered"


def test_slower_integrator_status_is_kept_on_its_delivery_only(api: Api, delivered: Any) -> None:
    order_id, courier, shop = delivered
    courier.status(order_id, "ready")
    response = shop.status(order_id, "accepted")
    assert response.status_code == 200 and response.json_body["applied"] is False
    order = api.get(f"{ORDERS}/{order_id}").json_body
    assert order["status"] == "ready"
    assert {d["integrator"]: d["remote_status"] for d in order["deliveries"]} == {
        "courier": "ready",
        "shop": "accepted",
    }


def test_unknown_status_is_stored_and_ignored_for_the_order(api: Api, delivered: Any) -> None:
    order_id, courier, _ = delivered
    response = courier.status(order_id, "driver_assigned")
    assert response.status_code == 202 and response.json_body["applied"] is False
    order = api.get(f"{ORDERS}/{order_id}").json_body
    assert order["status"] == "dispatched"
    assert next(d for d in order["deliveries"] if d["integrator"] == "courier")["remote_status"] == "driver_assigned"
    # An unknown status is not progress: the integrator's next real status still moves forward.
    assert courier.status(order_id, "accepted").status_code == 200
    assert courier.status(order_id, "driver_assigned").status_code == 202
    assert courier.status(order_id, "picked_up").json_body["order_status"] == "picked_up"


def test_service_owned_statuses_cannot_be_reported(api: Api, delivered: Any) -> None:
    order_id, courier, _ = delivered
    assert courier.status(order_id, "failed").status_code == 422


def test_one_rejection_does_not_end_an_order_another_integrator_carries(api: Api, delivered: Any) -> None:
    order_id, courier, shop = delivered
    assert shop.status(order_id, "rejected").json_body["applied"] is False
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "dispatched"
    assert courier.status(order_id, "rejected").json_body["applied"] is True
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "rejected"


def test_concurrent_callbacks_lose_no_update(api: Api, delivered: Any) -> None:
    order_id, courier, shop = delivered
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}

    def send(partner: Partner, status: str) -> None:
        barrier.wait()
        results[partner.name] = partner.status(order_id, status).status_code

    threads = [
        threading.Thread(target=send, args=(courier, "preparing")),
        threading.Thread(target=send, args=(shop, "accepted")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"courier": 200, "shop": 200}
    order = api.get(f"{ORDERS}/{order_id}").json_body
    assert order["status"] == "preparing"
    assert {d["integrator"]: d["remote_status"] for d in order["deliveries"]} == {
        "courier": "preparing",
        "shop": "accepted",
    }
    assert [t["status"] for t in order["timeline"]][-1] == "preparing"


# --- notifications ---------------------------------------------------------------------------------------------


def test_customer_notifications_carry_attributes_and_push_bodies(
    api: Api, app: Any, aws: dict[str, str], fake: FakeIntegrator, phone: str
) -> None:
    courier = Partner(api, "courier", fake)
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    drain(app, boto3.client("sqs", region_name="us-east-1"), aws["ORDERS_QUEUE_URL"])
    for status in ("accepted", "picked_up", "delivered"):
        assert courier.status(order_id, status).status_code == 200
    received = notifications(phone)
    events = [n["MessageAttributes"]["event"]["Value"] for n in received]
    assert events == ["order.dispatched", "order.accepted", "order.picked_up", "order.delivered"]
    last = received[-1]
    assert {k: v["Value"] for k, v in last["MessageAttributes"].items()} == {
        "order_id": order_id,
        "user_id": "u-1",
        "seller_id": "s-1",
        "event": "order.delivered",
        "audience": "customer",
        "integrator": "courier",
    }
    body = json.loads(last["Message"])  # a raw SQS subscriber receives the "default" entry
    assert body["order_id"] == order_id and "Delivered" in body["title"]


def test_push_structure_has_apns_and_fcm_payloads() -> None:
    from chalicelib.messages import Notification
    from chalicelib.notifications.publisher import push_message

    note = Notification(
        notification_id="n",
        event="order.ready",
        order_id="o",
        user_id="u",
        seller_id="s",
        seller_name="Falafel House",
        text="Your order is ready.",
    )
    message = push_message(note)
    apns, gcm = json.loads(message["APNS"]), json.loads(message["GCM"])
    assert apns["aps"]["alert"] == {"title": "Falafel House: Ready", "body": "Your order is ready."}
    assert gcm["notification"]["body"] == "Your order is ready." and gcm["data"]["order_id"] == "o"
    assert set(message) >= {"default", "APNS", "GCM"}


def test_cancel_and_failed_delivery_notify_the_customer(
    api: Api, app: Any, aws: dict[str, str], fake: FakeIntegrator, phone: str
) -> None:
    fake.default("/bad", Reply(404))
    api.post("/api/v1/integrators", {"name": "bad", "url": fake.url("/bad"), "auth": {"type": "none"}})
    Partner(api, "good", fake)
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    sqs = boto3.client("sqs", region_name="us-east-1")
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    api.delete(f"{ORDERS}/{order_id}")
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    events = sorted(n["MessageAttributes"]["event"]["Value"] for n in notifications(phone))
    assert events == ["delivery.failed", "order.cancelled", "order.dispatched"]


def test_failed_publish_is_retried_not_lost(
    api: Api, app: Any, aws: dict[str, str], delivered: Any, phone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id, courier, _ = delivered
    notifications(phone)
    from chalicelib import aws as clients

    class BrokenSNS:
        def publish(self, **kwargs: Any) -> Any:
            raise ConnectionError("SNS unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(clients, "sns", lambda: BrokenSNS())
        from chalicelib.notifications import publisher

        patch.setattr(publisher, "sns", lambda: BrokenSNS())
        patch.setattr(publisher, "RETRY_DELAY_SECONDS", 0)
        response = courier.status(order_id, "accepted")
    assert response.status_code == 200, "a push problem never fails the callback"
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "accepted"
    assert notifications(phone) == []
    drain(app, boto3.client("sqs", region_name="us-east-1"), aws["ORDERS_QUEUE_URL"])
    assert [n["MessageAttributes"]["event"]["Value"] for n in notifications(phone)] == ["order.accepted"]


@pytest.mark.parametrize("window", [None, 120], ids=["no-ack-window", "ack-window"])
def test_a_callback_sent_while_our_post_is_still_open_is_applied_not_refused(
    api: Api, app: Any, aws: dict[str, str], fake: FakeIntegrator, monkeypatch: pytest.MonkeyPatch, window: int | None
) -> None:
    """A fast partner calls back before it has answered our POST (or before we wrote its 2xx). It has the order:
    the callback moves it and is kept for replays, the dispatcher still records the 2xx on the row the callback
    wrote, and an acknowledgement window that callback already answered is never opened (so never overdue)."""
    from chalicelib.dispatch import transport

    fields: dict[str, Any] = {"ack_within_seconds": window} if window else {}
    kitchen = Partner(api, "kitchen", fake, **fields)
    early: list[Any] = []
    post = transport.post

    def partner_calls_back_first(*args: Any, **kwargs: Any) -> Any:
        early.append(kitchen.post({"order_id": order_id, "status": "accepted"}, msg_id="early-1"))
        return post(*args, **kwargs)

    monkeypatch.setattr(transport, "post", partner_calls_back_first)
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    batches = drain(app, boto3.client("sqs", region_name="us-east-1"), aws["ORDERS_QUEUE_URL"])
    assert not any(b.failed_ids for b in batches)

    assert [r.status_code for r in early] == [200] and early[0].json_body["applied"] is True, early[0].body
    order = api.get(f"{ORDERS}/{order_id}").json_body
    assert order["status"] == "accepted"
    row = next(d for d in order["deliveries"] if d["integrator"] == "kitchen")
    assert (row["status"], row["remote_status"], row["attempts"]) == ("delivered", "accepted", 1)
    assert row.get("ack") == ("acknowledged" if window else None)
    replay = kitchen.post({"order_id": order_id, "status": "accepted"}, msg_id="early-1")
    assert replay.json_body == {**early[0].json_body, "duplicate": True}
    assert kitchen.status(order_id, "preparing").json_body["applied"] is True
