"""What one seller can do to another: a burst of orders neither crowds another seller's order out of an
integrator's rate limit nor exceeds the seller's create quota."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chalicelib.db import integrator_control, quotas
from tests.support.api import Api
from tests.support.fake_integrator import FakeIntegrator, Reply
from tools.poller import poll_once
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"


def create(api: Api, seller: str, **headers: str) -> Any:
    return api.post(ORDERS, order_body(seller_id=seller), headers=headers or None)


def test_a_burst_from_one_seller_leaves_another_seller_its_share_of_a_rate_limit(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    fake.default("/limited", Reply(200, json={}))
    body = {"name": "limited", "url": fake.url("/limited"), "auth": {"type": "none"}, "max_requests_per_second": 2}
    assert api.post("/api/v1/integrators", body).status_code == 201
    burst = [create(api, "s-burst").json_body["id"] for _ in range(20)]  # 10 s of the integrator's limit
    quiet = create(api, "s-quiet").json_body["id"]
    stop = threading.Event()

    def dispatcher() -> None:
        while not stop.is_set():
            poll_once(app, sqs, aws["ORDERS_QUEUE_URL"], wait_seconds=1)

    thread = threading.Thread(target=dispatcher)
    thread.start()
    try:
        fake.wait_for(21, "/limited", timeout=120)
    finally:
        stop.set()
        thread.join()
    arrived = [r.json()["order"]["id"] for r in sorted(fake.requests("/limited"), key=lambda r: r.received_at)]
    assert sorted(arrived) == sorted([*burst, quiet]), "every order arrives once, the burst's included"
    # Two sellers waiting: each may hold one of the two slots a second, so the quiet seller's order goes out in
    # the first windows after it was refused once, not behind the whole burst (20 orders, 10 s).
    assert arrived.index(quiet) < 6, f"the quiet seller's order arrived {arrived.index(quiet) + 1}th of 21"


def test_waiting_sellers_split_the_window_evenly(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_000.0]
    monkeypatch.setattr(f"{integrator_control.__name__}.time.time", lambda: now[0])

    def take(seller: str) -> bool:
        return integrator_control.reserve_send_slot("partner", 4, seller).send_by is not None

    assert [take("a") for _ in range(5)] == [True, True, True, True, False], "alone, a seller has the whole window"
    assert not take("b"), "the window is full: b is refused, and noted as waiting"
    now[0] += 1.3  # a's slots have all expired; b waits
    assert [take("a") for _ in range(3)] == [True, True, False], "with b waiting, a may hold half the window"
    assert [take("b"), take("b"), take("b")] == [True, True, False], "b gets the other half"
    now[0] += 6.0  # nobody has been refused for a while: a has the whole window again
    assert [take("a") for _ in range(5)] == [True, True, True, True, False]


def test_a_seller_over_its_create_quota_gets_429_with_retry_after_and_others_do_not(
    api: Api, configure: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(SELLER_ORDERS_PER_SECOND="3")
    now = [5_000.25]
    monkeypatch.setattr(f"{quotas.__name__}.time.time", lambda: now[0])

    assert [create(api, "s-1").status_code for _ in range(3)] == [201, 201, 201]
    refused = create(api, "s-1")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    error = refused.json_body["error"]
    assert error["code"] == "too_many_requests"
    assert error["details"][0]["field"] == "seller.id"
    assert create(api, "s-2").status_code == 201, "another seller's quota is its own"
    listed = api.get(f"{ORDERS}?seller_id=s-1").json_body["items"]
    assert len(listed) == 3, "a refused create stores nothing"
    now[0] += 1.0
    assert create(api, "s-1").status_code == 201, "the next second has room again"


def test_a_replayed_create_spends_no_quota(api: Api, configure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(SELLER_ORDERS_PER_SECOND="1")
    monkeypatch.setattr(f"{quotas.__name__}.time.time", lambda: 7_000.5)
    first = create(api, "s-1", **{"Idempotency-Key": "till-7-receipt-1"})
    again = [create(api, "s-1", **{"Idempotency-Key": "till-7-receipt-1"}) for _ in range(3)]
    assert first.status_code == 201
    assert {r.json_body["id"] for r in again} == {first.json_body["id"]}
    assert create(api, "s-1").status_code == 429, "the one create of this second was the first request"


def test_the_quota_can_be_switched_off(api: Api, configure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(SELLER_ORDERS_PER_SECOND="0")
    monkeypatch.setattr(f"{quotas.__name__}.time.time", lambda: 9_000.5)
    assert {create(api, "s-1").status_code for _ in range(5)} == {201}
