"""What a callback and its notification cost in AWS requests (issue 14), pinned so that a regression shows, and
the guarantees the cheaper path keeps: a repeated webhook id is answered from the delivery row and changes
nothing, a crash between the order's move and the row's write is decided again without moving the order twice."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.conftest import Api, notifications
from tests.functional.test_callbacks import ORDERS, Partner
from tests.support.fake_integrator import FakeIntegrator
from tools.poller import drain
from tools.sample_order import order_body

Calls = list[tuple[str, str, str]]


@pytest.fixture
def delivered(api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator) -> tuple[str, Partner, Partner]:
    """An order delivered to two partners, the queue drained: this container is warm."""
    courier, shop = Partner(api, "courier", fake), Partner(api, "shop", fake)
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    return order_id, courier, shop


def requests(calls: Calls, aws: dict[str, str]) -> dict[str, int]:
    """`{"<operation> <table or service>": count}` of the requests recorded, then forgets them."""
    tables = {name: key.removesuffix("_TABLE").lower() for key, name in aws.items() if key.endswith("_TABLE")}
    counted = Counter(f"{operation} {tables.get(table, service)}" for service, operation, table in calls)
    calls.clear()
    return dict(counted)


def test_a_callback_that_moves_the_order_costs_four_requests_and_its_notification_one(
    api: Api, delivered: Any, aws_calls: Calls, aws: dict[str, str], phone: str
) -> None:
    order_id, courier, _ = delivered
    aws_calls.clear()
    assert courier.status(order_id, "accepted").json_body["applied"] is True
    assert requests(aws_calls, aws) == {
        "GetItem deliveries": 1,  # the row: has the integrator the order, its progress, answers kept for replays
        "GetItem orders": 1,
        "PutItem orders": 1,  # conditional on the version just read
        "UpdateItem deliveries": 1,  # report, ack and answer in one write, conditional on the row's revision
        "Publish sns": 1,  # the notification: no idempotency record, only the mover publishes
    }
    assert [n["MessageAttributes"]["event"]["Value"] for n in notifications(phone)] == ["order.accepted"]


def test_a_callback_that_does_not_move_the_order_costs_three_and_a_replay_one(
    api: Api, delivered: Any, aws_calls: Calls, aws: dict[str, str]
) -> None:
    order_id, courier, shop = delivered
    courier.status(order_id, "preparing")
    aws_calls.clear()
    first = shop.post({"order_id": order_id, "status": "accepted"}, msg_id="cb-shop-1")
    assert first.status_code == 200 and first.json_body["applied"] is False
    assert requests(aws_calls, aws) == {"GetItem deliveries": 1, "GetItem orders": 1, "UpdateItem deliveries": 1}
    again = shop.post({"order_id": order_id, "status": "accepted"}, msg_id="cb-shop-1")
    assert requests(aws_calls, aws) == {"GetItem deliveries": 1}
    assert again.status_code == 200 and again.json_body == {**first.json_body, "duplicate": True}


def test_every_answer_is_replayed_alike_and_a_reused_id_with_another_body_is_refused(api: Api, delivered: Any) -> None:
    order_id, courier, _ = delivered
    answers = {}
    for msg_id, status in (("r-1", "preparing"), ("r-2", "accepted"), ("r-3", "driver_assigned"), ("r-4", "failed")):
        answers[msg_id] = courier.post({"order_id": order_id, "status": status}, msg_id=msg_id)
    assert [a.status_code for a in answers.values()] == [200, 409, 202, 422]
    version = api.get(f"{ORDERS}/{order_id}").json_body["version"]
    for msg_id, status in (("r-1", "preparing"), ("r-2", "accepted"), ("r-3", "driver_assigned"), ("r-4", "failed")):
        replay = courier.post({"order_id": order_id, "status": status}, msg_id=msg_id)
        assert (replay.status_code, replay.json_body) == (
            answers[msg_id].status_code,
            {**answers[msg_id].json_body, "duplicate": True},
        )
    reused = courier.post({"order_id": order_id, "status": "delivered"}, msg_id="r-1")
    assert reused.status_code == 422 and "webhook-id" in reused.json_body["error"]["message"]
    assert api.get(f"{ORDERS}/{order_id}").json_body["version"] == version


def test_a_crash_after_the_order_moved_is_decided_again_and_moves_nothing_twice(
    api: Api, delivered: Any, phone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.db import deliveries as delivery_store

    order_id, courier, _ = delivered
    notifications(phone)
    with monkeypatch.context() as patch:

        def crash(*args: Any, **kwargs: Any) -> None:
            raise ConnectionError("the Lambda died before the row was written")

        patch.setattr(delivery_store, "set_fields", crash)
        failed = courier.post({"order_id": order_id, "status": "accepted"}, msg_id="cb-crash")
    assert failed.status_code == 500 and api.get(f"{ORDERS}/{order_id}").json_body["status"] == "accepted"
    again = courier.post({"order_id": order_id, "status": "accepted"}, msg_id="cb-crash")
    assert again.status_code == 200 and again.json_body["order_status"] == "accepted"
    order = api.get(f"{ORDERS}/{order_id}").json_body
    assert [entry["status"] for entry in order["timeline"]].count("accepted") == 1
    assert next(d for d in order["deliveries"] if d["integrator"] == "courier")["remote_status"] == "accepted"
    assert [n["MessageAttributes"]["event"]["Value"] for n in notifications(phone)] == ["order.accepted"]


def test_only_the_latest_answers_are_kept_on_the_row(api: Api, delivered: Any, aws: dict[str, str]) -> None:
    import boto3

    from chalicelib.domain.delivery import CALLBACK_ANSWERS_KEPT

    order_id, courier, _ = delivered
    for n in range(CALLBACK_ANSWERS_KEPT + 3):
        assert courier.post({"order_id": order_id, "status": f"location_{n}"}, msg_id=f"loc-{n}").status_code == 202
    row = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=aws["DELIVERIES_TABLE"], Key={"order_id": {"S": order_id}, "sk": {"S": "state#courier"}}
    )["Item"]
    assert len(row["callback_answers"]["S"]) < 3000, "the row stays small: every write of it is billed per KB"
    # The newest are replayed; an id older than the kept ones is decided again (an unknown status: kept, 202).
    assert courier.post({"order_id": order_id, "status": "location_12"}, msg_id="loc-12").json_body["duplicate"]
    assert not courier.post({"order_id": order_id, "status": "location_0"}, msg_id="loc-0").json_body["duplicate"]
