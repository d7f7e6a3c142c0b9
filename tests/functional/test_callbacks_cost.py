"""What a callback and its notification cost in AWS requests (issue 14), pinned so that a regression shows, and
the guarantees the cheaper path keeps: a repeated webhook id is answered from the delivery row and changes
nothing, a crash between the order's move and the row's write is decided again without moving the order twice."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tests.functional.test_callbacks import ORDERS, Partner
from tests.support.api import Api
from tests.support.aws import notifications
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


def answers_on_row(aws: dict[str, str], order_id: str, integrator: str) -> list[dict[str, Any]]:
    import json
    import zlib

    import boto3

    row = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=aws["DELIVERIES_TABLE"], Key={"order_id": {"S": order_id}, "sk": {"S": f"state#{integrator}"}}
    )["Item"]
    assert "callback_answers" not in row, "the answers are kept packed, not also as plain JSON"
    return list(json.loads(zlib.decompress(row["answers"]["B"])))


def test_a_webhook_id_is_remembered_for_the_whole_replay_window_however_many_came_after(
    api: Api, delivered: Any, aws: dict[str, str]
) -> None:
    """Issue 20: only the last 10 ids were kept, so a captured callback replayed a minute later, after ten others,
    was applied again (here: it set the courier's reported status back)."""
    order_id, courier, _ = delivered
    first = courier.post({"order_id": order_id, "status": "location_0"}, msg_id="loc-0")
    for n in range(1, 13):
        assert courier.post({"order_id": order_id, "status": f"location_{n}"}, msg_id=f"loc-{n}").status_code == 202
    replay = courier.post({"order_id": order_id, "status": "location_0"}, msg_id="loc-0")
    assert replay.status_code == 202 and replay.json_body == {**first.json_body, "duplicate": True}
    rows = api.get(f"{ORDERS}/{order_id}").json_body["deliveries"]
    courier_row = next(d for d in rows if d["integrator"] == "courier")
    assert courier_row["remote_status"] == "location_12", "the replay changed nothing"


def test_answers_leave_the_row_once_no_replay_can_pass_and_the_latest_stay(
    api: Api, delivered: Any, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from chalicelib import callbacks
    from chalicelib.callbacks import REPLAY_WINDOW_SECONDS
    from chalicelib.domain.delivery import CALLBACK_ANSWERS_KEPT

    order_id, courier, _ = delivered
    for n in range(CALLBACK_ANSWERS_KEPT + 5):
        courier.post({"order_id": order_id, "status": f"location_{n}"}, msg_id=f"loc-{n}")
    assert len(answers_on_row(aws, order_id, "courier")) == CALLBACK_ANSWERS_KEPT + 5
    monkeypatch.setattr(callbacks, "wall_clock", lambda: time.time() + REPLAY_WINDOW_SECONDS + 1)
    later = courier.post({"order_id": order_id, "status": "arrived"}, msg_id="late", skew=REPLAY_WINDOW_SECONDS + 1)
    assert later.status_code == 202, later.body
    kept = answers_on_row(aws, order_id, "courier")
    assert [a["webhook_id"] for a in kept] == [f"loc-{n}" for n in range(6, CALLBACK_ANSWERS_KEPT + 5)] + ["late"]
    assert len(json.dumps(kept)) < 3000, "the row stays small: every write of it is billed per KB"


def test_more_callbacks_in_one_window_than_the_row_can_remember_are_told_to_wait(
    api: Api, delivered: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import callbacks

    order_id, courier, _ = delivered
    monkeypatch.setattr(callbacks, "CALLBACK_ANSWERS_IN_WINDOW", 3)
    for n in range(3):
        assert courier.post({"order_id": order_id, "status": f"location_{n}"}, msg_id=f"loc-{n}").status_code == 202
    refused = courier.post({"order_id": order_id, "status": "accepted"}, msg_id="one-too-many")
    assert refused.status_code == 429 and refused.json_body["error"]["code"] == "too_many_callbacks"
    assert 1 <= int(refused.headers["Retry-After"]) <= callbacks.REPLAY_WINDOW_SECONDS
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "dispatched"
    assert courier.post({"order_id": order_id, "status": "location_0"}, msg_id="loc-0").json_body["duplicate"]


def test_a_callback_missing_its_headers_or_out_of_time_reads_nothing(
    api: Api, delivered: Any, aws_calls: Calls, aws: dict[str, str]
) -> None:
    """Issue 20: each such request re-read the integrator's secrets (DynamoDB and Secrets Manager)."""
    order_id, courier, _ = delivered
    body = {"order_id": order_id, "status": "accepted"}
    for name in ("courier", "nobody"):
        courier.path = f"/api/v1/callbacks/{name}"
        aws_calls.clear()
        assert api.request("POST", courier.path, body, token="").status_code == 401
        assert courier.post(body, skew=-400).status_code == 401
        assert courier.post(body, skew=400).status_code == 401
        assert courier.post(body, headers={"webhook-timestamp": "soon"}).status_code == 401
        assert requests(aws_calls, aws) == {}, name


def test_forged_signatures_cost_at_most_one_secret_read_per_name_every_few_seconds(
    api: Api, delivered: Any, aws_calls: Calls, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signature mismatch re-reads the secrets uncached (one rotated in another container works at once), but
    not for every forged request."""
    import time

    from chalicelib.integrators import cache
    from chalicelib.settings import get_settings

    order_id, courier, _ = delivered
    forged = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ=="
    body = {"order_id": order_id, "status": "accepted"}
    aws_calls.clear()
    for _ in range(5):
        assert courier.post(body, secret=forged).status_code == 401
    assert requests(aws_calls, aws) == {"GetItem integrators": 1, "GetSecretValue secretsmanager": 1}
    courier.path = "/api/v1/callbacks/nobody"
    for _ in range(5):
        assert courier.post(body, secret=forged).status_code == 401
    assert requests(aws_calls, aws) == {"GetItem integrators": 1}, "an unknown name: one lookup per interval"

    # The refresh interval passes, without waiting it out (within the minute the integrator itself stays cached).
    monkeypatch.setattr(cache, "time", _Ahead(time.monotonic, get_settings().callback_secret_refresh_seconds + 0.01))
    courier.path = "/api/v1/callbacks/courier"
    assert courier.post(body, secret=forged).status_code == 401
    assert requests(aws_calls, aws) == {"GetItem integrators": 1, "GetSecretValue secretsmanager": 1}
    assert courier.status(order_id, "accepted").status_code == 200, "the real secret still works meanwhile"


def test_a_row_written_before_answers_were_packed_still_answers_its_replays(
    api: Api, delivered: Any, aws: dict[str, str]
) -> None:
    """Rows of a deployed stack keep their answers as plain JSON (`callback_answers`) until their next write: a
    replay of a callback they remember is still answered from them, and that next write packs the answers."""
    import zlib

    import boto3

    order_id, courier, _ = delivered
    first = courier.post({"order_id": order_id, "status": "location_0"}, msg_id="loc-0")
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    key = {"order_id": {"S": order_id}, "sk": {"S": "state#courier"}}
    packed = dynamodb.get_item(TableName=aws["DELIVERIES_TABLE"], Key=key)["Item"]["answers"]["B"]
    dynamodb.update_item(  # the row as the code before the packed attribute wrote it
        TableName=aws["DELIVERIES_TABLE"],
        Key=key,
        UpdateExpression="SET callback_answers = :plain REMOVE answers",
        ExpressionAttributeValues={":plain": {"S": zlib.decompress(packed).decode()}},
    )
    replay = courier.post({"order_id": order_id, "status": "location_0"}, msg_id="loc-0")
    assert replay.json_body == {**first.json_body, "duplicate": True}
    assert courier.post({"order_id": order_id, "status": "location_1"}, msg_id="loc-1").status_code == 202
    assert [a["webhook_id"] for a in answers_on_row(aws, order_id, "courier")] == ["loc-0", "loc-1"]


class _Ahead:
    """A `time` module for the integrator cache whose monotonic clock runs `seconds` ahead of the real one: the
    refresh interval passes without waiting it out."""

    def __init__(self, monotonic: Any, seconds: float) -> None:
        self._monotonic, self._seconds = monotonic, seconds

    def monotonic(self) -> float:
        return float(self._monotonic()) + self._seconds
