"""Each registration of an integrator is an identity of its own (issue 20, finding 2): a name deleted and
registered again starts from nothing. The new partner cannot move, by callback, the orders the old registration
had, hears nothing of their updates and cancels, and is not sent what the old registration left queued."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.domain import clock
from chalicelib.messages import ProbeCircuit
from tests.functional.test_callbacks import ORDERS, Partner
from tests.support.api import Api
from tests.support.fake_integrator import FakeIntegrator, Reply
from tools.poller import drain
from tools.sample_order import order_body

INTEGRATORS = "/api/v1/integrators"


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Move the service's clock forward (cool-downs are business time, not test time)."""
    real = clock.utcnow
    offset = [timedelta(0)]
    monkeypatch.setattr(clock, "utcnow", lambda: real() + offset[0])

    def advance(seconds: float) -> None:
        offset[0] += timedelta(seconds=seconds)

    return advance


def events_received(fake: FakeIntegrator, path: str) -> list[str]:
    return [str(request.headers["x-order-event"]) for request in fake.requests(path)]


def test_a_name_registered_again_neither_moves_nor_hears_of_the_old_registrations_orders(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    old = Partner(api, "courier", fake)
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert events_received(fake, "/courier") == ["order.created"]
    assert old.status(order_id, "accepted").status_code == 200

    assert api.delete(f"{INTEGRATORS}/courier").status_code == 204
    # Someone else, serving other sellers, registers under the freed name.
    newcomer = Partner(api, "courier", fake, path="/newcomer", seller_ids=["s-other"])

    refused = newcomer.status(order_id, "delivered")
    assert refused.status_code == 404, "the same answer as for an order never delivered to it"
    assert refused.json_body["error"]["code"] == "not_found"
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "accepted"

    patched = api.patch(f"{ORDERS}/{order_id}", {"order": {"user_note": "ring twice"}})
    assert patched.status_code == 200, patched.body
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert api.delete(f"{ORDERS}/{order_id}").status_code == 200
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert events_received(fake, "/newcomer") == [], "no order.updated or order.cancelled (with customer details)"
    assert newcomer.status(order_id, "delivered").status_code == 404


def test_a_delivery_the_old_registration_left_waiting_is_not_sent_to_the_new_one(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any, later: Any
) -> None:
    """Deliveries waiting for the old registration (its circuit was open) are ended when their turn comes, not
    sent to whoever holds the name now."""
    configure(CIRCUIT_FAILURE_THRESHOLD="1", CIRCUIT_COOLDOWN_SECONDS="900", DISPATCH_RETRY_DELAYS="3600")
    fake.default("/courier", Reply(503))
    Partner(api, "courier", fake)
    first = api.post(ORDERS, order_body()).json_body["id"]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])  # fails once: the circuit opens
    second = api.post(ORDERS, order_body(user_id="u-2")).json_body["id"]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert api.get(f"{ORDERS}/{second}").json_body["deliveries"][0]["status"] == "waiting"

    assert api.delete(f"{INTEGRATORS}/courier").status_code == 204
    fake.default("/newcomer", Reply(200, json={}))
    Partner(api, "courier", fake, path="/newcomer")
    later(901)  # the cool-down is over: the waiting delivery is released as the probe
    sqs.send_message(QueueUrl=aws["ORDERS_QUEUE_URL"], MessageBody=ProbeCircuit(integrator="courier").model_dump_json())
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert fake.requests("/newcomer") == []
    ended = api.get(f"{ORDERS}/{second}").json_body["deliveries"]
    assert [(d["integrator"], d["status"]) for d in ended] == [("courier", "superseded")]
    assert api.get(f"{ORDERS}/{first}").json_body["deliveries"][0]["status"] == "retrying", "ends when it runs"


def test_an_admin_retry_of_the_old_registrations_failed_delivery_is_refused(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    fake.default("/courier", Reply(400))  # refused for good: failed at once
    Partner(api, "courier", fake)
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert api.get(f"{ORDERS}/{order_id}").json_body["deliveries"][0]["status"] == "failed"
    assert api.delete(f"{INTEGRATORS}/courier").status_code == 204
    fake.default("/newcomer", Reply(200, json={}))
    api.post(INTEGRATORS, {"name": "courier", "url": fake.url("/newcomer"), "auth": {"type": "none"}})

    retried = api.post(f"{ORDERS}/{order_id}/deliveries/courier/retry")
    assert retried.status_code == 409, retried.body
    assert "earlier registration" in retried.json_body["error"]["message"]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert fake.requests("/newcomer") == []


def test_an_integrator_kept_registered_still_gets_its_updates_and_callbacks(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    """The registration check never stands in the way of the registration that has the order."""
    courier = Partner(api, "courier", fake)
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert api.patch(f"{INTEGRATORS}/courier", {"timeout_seconds": 2}).status_code == 200  # a change is no new one
    api.patch(f"{ORDERS}/{order_id}", {"order": {"user_note": "ring twice"}})
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert events_received(fake, "/courier") == ["order.created", "order.updated"]
    assert courier.status(order_id, "accepted").status_code == 200
