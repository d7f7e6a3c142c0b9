"""A create sends its event before it writes the order (issue 22: the outbox index is then needed only when the
send fails, two index writes fewer per order). What that order of steps must keep: an event that reaches the
dispatcher before its order is dispatched once the order is written, an event whose create failed after the send
reaches no integrator and is dropped, and a create's order is not offered to the sweeper."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.functional.test_faults_and_abuse import ORDERS, fail_once, throttled
from tests.support.api import Api
from tests.support.aws import queue_messages
from tests.support.fake_integrator import FakeIntegrator
from tools.poller import drain
from tools.sample_order import order_body


@pytest.fixture
def partner(api: Api, fake: FakeIntegrator) -> str:
    body = {"name": "p", "url": fake.url("/p"), "auth": {"type": "none"}}
    assert api.post("/api/v1/integrators", body).status_code == 201
    return "/p"


def test_an_event_that_reaches_the_dispatcher_before_its_order_is_dispatched_once_the_order_is_written(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, partner: str, monkeypatch: Any
) -> None:
    from chalicelib.db import orders as order_store

    write = order_store.insert
    early: list[Any] = []

    def dispatcher_first(order: Any) -> None:  # the dispatcher runs the event between the send and the write
        early.extend(drain(app, sqs, aws["ORDERS_QUEUE_URL"]))
        write(order)

    monkeypatch.setattr(order_store, "insert", dispatcher_first)
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    assert [b.received for b in early] == [1] and not any(b.failed_ids for b in early), "not a failure: sent again"
    assert fake.requests(partner) == []
    later = drain(app, sqs, aws["ORDERS_QUEUE_URL"], settle_seconds=3)  # the event comes back after its delay
    assert sum(b.received for b in later) == 1
    assert len(fake.requests(partner)) == 1, "delivered once"
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "dispatched"


def test_an_event_whose_create_failed_after_sending_reaches_no_integrator_and_is_dropped(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, partner: str, monkeypatch: Any
) -> None:
    from chalicelib.db import orders as order_store
    from chalicelib.dispatch import order_events
    from chalicelib.domain.clock import utcnow

    fail_once(monkeypatch, order_store, "insert", throttled("PutItem"))
    assert api.post(ORDERS, order_body()).status_code == 500, "the client got no order and will retry"
    later = timedelta(seconds=order_events.CREATE_WRITE_WINDOW_SECONDS + 1)
    monkeypatch.setattr(order_events, "utcnow", lambda: utcnow() + later)  # no create can still be writing it
    batches = drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert sum(b.received for b in batches) == 1 and not any(b.failed_ids for b in batches)
    assert queue_messages(aws["ORDERS_QUEUE_URL"]) == [], "dropped, not sent again nor left to the dead letters"
    assert fake.requests(partner) == [] and api.get(ORDERS).json_body["items"] == []


def test_a_created_order_keeps_its_event_off_the_sweepers_index_until_the_dispatcher_takes_it(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, partner: str, tmp_path: Path
) -> None:
    from chalice.test import Client

    order_id = api.post(ORDERS, order_body()).json_body["id"]
    row = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=aws["ORDERS_TABLE"], Key={"id": {"S": order_id}}
    )["Item"]
    assert json.loads(row["outbox"]["S"])["type"] == "order.created", "the event stays on the row for the dispatcher"
    assert "outbox_pk" not in row, "and takes no place in the outbox index: the queue has it"
    with Client(app, project_dir=str(tmp_path)) as client:  # grace 0 in tests: an indexed mark would be sent
        tick = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
        assert client.lambda_.invoke("sweep_outbox", tick).payload["requeued"] == 0
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert len(fake.requests(partner)) == 1
    row = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=aws["ORDERS_TABLE"], Key={"id": {"S": order_id}}
    )["Item"]
    assert "outbox" not in row and row["status"]["S"] == "dispatched"


def test_no_create_can_write_its_order_after_the_dispatcher_stops_waiting_for_it() -> None:
    """The window the dispatcher waits for a create's write must outlast the API function's timeout, in every
    stage: a longer timeout would let a create write an order whose event was already dropped."""
    from chalicelib.dispatch.order_events import CREATE_WRITE_WINDOW_SECONDS

    config = json.loads((Path(__file__).parents[2] / ".chalice" / "config.json").read_text())
    timeouts = {
        stage: settings.get("lambda_functions", {}).get("api_handler", {}).get("lambda_timeout")
        for stage, settings in config["stages"].items()
    }
    assert timeouts and all(t is not None and t < CREATE_WRITE_WINDOW_SECONDS for t in timeouts.values()), timeouts
