"""What dispatching one order costs in AWS requests (issue 14): pinned, so that a change adding a request to the
hot path shows up here rather than on the bill."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.fake_integrator import FakeIntegrator, Reply
from tools.poller import drain, poll_once
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"
INTEGRATORS = ("food-ordering", "delivery", "loyalty")


def _requests(calls: list[tuple[str, str, str]], *, leave_out: tuple[str, ...] = ()) -> Counter[str]:
    """Requests by operation; what Lambda's event source does on its own (polling) and `leave_out` tables apart."""
    polling = {("sqs", "ReceiveMessage"), ("sqs", "GetQueueAttributes")}
    kept = [(service, operation) for service, operation, table in calls if table not in leave_out]
    return Counter(operation for service, operation in kept if (service, operation) not in polling)


def test_one_order_to_three_integrators_costs_its_floor_of_requests(
    api: Api,
    app: Any,
    sqs: Any,
    aws: dict[str, str],
    fake: FakeIntegrator,
    aws_calls: list[tuple[str, str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chalicelib.notifications import publisher

    for name in INTEGRATORS:
        fake.default(f"/{name}", Reply(200, json={"external_id": name}))
        body = {"name": name, "url": fake.url(f"/{name}"), "auth": {"type": "none"}}
        assert api.post("/api/v1/integrators", body).status_code == 201
    api.post(ORDERS, order_body())
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])  # warm containers: secrets, circuits and clients cached
    notified: list[str] = []  # notifications are a step of their own (bench/life.py counts them apart)
    monkeypatch.setattr(publisher, "notify", lambda order, event, *a, **kw: notified.append(event))

    aws_calls.clear()
    created = api.post(ORDERS, order_body())
    assert created.status_code == 201
    create = _requests(aws_calls, leave_out=(aws["TOKENS_TABLE"],))  # the authorizer's, cached by API Gateway
    aws_calls.clear()
    batch = poll_once(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert batch.received == 1 and not batch.failed_ids, batch
    dispatch = _requests(aws_calls)

    assert all(len(fake.requests(f"/{name}")) == 2 for name in INTEGRATORS), "each got each order once"
    order = api.get(f"{ORDERS}/{created.json_body['id']}").json_body
    assert order["status"] == "dispatched"
    assert {d["status"] for d in order["deliveries"]} == {"delivered"}
    assert notified == ["order.dispatched"]
    # create: the seller's quota counter (a conditional UpdateItem), the order's conditional PutItem (with its
    # outbox mark) and the send; the dispatcher clears the mark.
    assert create == Counter({"UpdateItem": 1, "PutItem": 1, "SendMessage": 1})
    # dispatch: the order read once, its state rows in one Query, per integrator a claim (PutItem), the attempt
    # line (PutItem) and the outcome (PutItem, conditional on the claim's revision): two plain writes rather than
    # one TransactWriteItems, which bills each item twice (issue 22: a request more, half the write units); one
    # UpdateItem to `dispatched` (clearing the outbox), the batch's delete, and one health-counter UpdateItem per
    # integrator and minute (per batch, not per order). The integrators table's Scan is once per batch (at most:
    # it may be cached per container).
    scans = dispatch.pop("Scan", 0)
    assert scans <= 1
    assert dispatch == Counter(
        {"GetItem": 1, "Query": 1, "PutItem": 3 + 3 + 3, "UpdateItem": 1 + 3, "DeleteMessageBatch": 1}
    ), dispatch


# --- what the cuts must not change ----------------------------------------------------------------------------


def _sweep(app: Any, tmp_path: Any) -> dict[str, Any]:
    from chalice.test import Client

    with Client(app, project_dir=str(tmp_path)) as client:
        tick = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
        return dict(client.lambda_.invoke("sweep_outbox", tick).payload)


def test_the_sweeper_never_resends_a_created_order_the_dispatcher_has(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any, tmp_path: Any
) -> None:
    """Create no longer clears its outbox mark: the dispatcher's write does, whether the order reached an
    integrator (`dispatched`) or not yet (its retries are queued)."""
    configure(DISPATCH_RETRY_DELAYS="60")
    fake.default("/up", Reply(200, json={}))
    fake.default("/down", Reply(503))
    for name, seller in (("up", "s-1"), ("down", "s-2")):
        body = {"name": name, "url": fake.url(f"/{name}"), "auth": {"type": "none"}, "seller_ids": [seller]}
        assert api.post("/api/v1/integrators", body).status_code == 201
    reached = api.post(ORDERS, order_body(seller_id="s-1")).json_body["id"]
    retrying = api.post(ORDERS, order_body(seller_id="s-2")).json_body["id"]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])

    assert api.get(f"{ORDERS}/{reached}").json_body["status"] == "dispatched"
    assert api.get(f"{ORDERS}/{retrying}").json_body["deliveries"][0]["status"] == "retrying"
    assert _sweep(app, tmp_path)["requeued"] == 0  # grace 0 in tests: anything still marked would be sent
    assert len(fake.requests("/up")) == 1 and len(fake.requests("/down")) == 1


def test_a_redelivered_retry_job_sends_its_attempt_once(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any
) -> None:
    """No idempotency record: the state row remembers which job it ran, so the same attempt handed over again
    (SQS at-least-once) sends nothing and records nothing."""
    from chalicelib.dispatch.delivery import handle_job
    from chalicelib.domain.delivery import webhook_id
    from chalicelib.messages import DeliveryJob

    configure(DISPATCH_RETRY_DELAYS="60")
    fake.default("/p", Reply(503))
    registered = api.post("/api/v1/integrators", {"name": "p", "url": fake.url("/p"), "auth": {"type": "none"}})
    assert registered.status_code == 201
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    second = DeliveryJob(
        order_id=order_id,
        integrator="p",
        event="order.created",
        version=1,
        attempt=2,
        webhook_id=webhook_id(order_id, "order.created", 1, "p"),
        registration_id=registered.json_body["registration_id"],
    )
    for _ in range(2):
        handle_job(second)
    handle_job(second.model_copy(update={"attempt": 1}))  # an older job, late
    assert len(fake.requests("/p")) == 2
    attempts = api.get(f"{ORDERS}/{order_id}/deliveries").json_body["attempts"]
    assert sorted(a["attempt"] for a in attempts) == [1, 2]
    state = api.get(f"{ORDERS}/{order_id}").json_body["deliveries"][0]
    assert state["status"] == "retrying" and state["attempts"] == 2
