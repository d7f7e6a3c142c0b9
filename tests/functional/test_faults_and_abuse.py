"""AWS faults and hostile callers (issue 11), through the public surface: nothing is lost, every order ends in
a state that tells the truth, refusals change nothing and leak nothing, and no log line carries a credential."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.functional.test_callbacks import Partner
from tests.functional.test_dispatcher import HMAC_SECRET, crash_one_batch
from tests.support.api import ADMIN_TOKEN, Api
from tests.support.aws import notifications, queue_messages
from tests.support.fake_integrator import FakeIntegrator, Reply
from tests.support.logs import captured_logs
from tools.poller import drain
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"


def throttled(operation: str) -> ClientError:
    code, message = "ProvisionedThroughputExceededException", "Rate of requests exceeds the allowed"
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def fail_once(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, error: Exception) -> list[int]:
    """Make `target.name` raise `error` on its first call only; the list counts the calls."""
    original = getattr(target, name)
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, flaky)
    return calls


def order_state(api: Api, order_id: str) -> dict[str, Any]:
    return dict(api.get(f"{ORDERS}/{order_id}").json_body)


# --- faults -------------------------------------------------------------------------------------------------------


def test_a_throttled_order_write_answers_500_leaves_nothing_and_the_same_key_succeeds_after(
    api: Api, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.db import orders as order_store

    fail_once(monkeypatch, order_store, "insert", throttled("PutItem"))
    first = api.post(ORDERS, order_body(), headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 500 and first.json_body["error"]["code"] == "internal_error"
    assert api.get(ORDERS).json_body["items"] == []
    # The event was sent before the write (tests/functional/test_create_send_first.py: the dispatcher drops it).
    assert [json.loads(m["Body"])["type"] for m in queue_messages(aws["ORDERS_QUEUE_URL"])] == ["order.created"]
    again = api.post(ORDERS, order_body(), headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 201
    assert [o["id"] for o in api.get(ORDERS).json_body["items"]] == [again.json_body["id"]]


def test_a_queue_that_refuses_the_send_loses_nothing_the_sweeper_sends_it(
    api: Api,
    app: Any,
    sqs: Any,
    aws: dict[str, str],
    fake: FakeIntegrator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    from chalicelib import queue

    api.post("/api/v1/integrators", {"name": "p", "url": fake.url("/p"), "auth": {"type": "none"}})
    fail_once(monkeypatch, queue, "send", ClientError({"Error": {"Code": "InternalError"}}, "SendMessage"))
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    assert drain(app, sqs, aws["ORDERS_QUEUE_URL"]) == [] and fake.requests("/p") == []
    from chalice.test import Client

    with Client(app, project_dir=str(tmp_path)) as client:
        tick = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
        assert client.lambda_.invoke("sweep_outbox", tick).payload["requeued"] == 1
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert len(fake.requests("/p")) == 1
    assert order_state(api, order_id)["status"] == "dispatched"


@pytest.mark.parametrize(
    ("module", "name"),
    [("chalicelib.integrators.secrets", "read"), ("chalicelib.db.deliveries", "put_state")],
    ids=["secrets-manager-unavailable", "delivery-state-write-throttled"],
)
def test_a_fault_in_the_dispatcher_is_retried_by_the_queue_and_delivered(
    api: Api,
    app: Any,
    sqs: Any,
    aws: dict[str, str],
    fake: FakeIntegrator,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    name: str,
) -> None:
    import importlib

    api.post("/api/v1/integrators", {"name": "p", "url": fake.url("/p"), "auth": {"type": "none"}})
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    crash_one_batch(app, sqs, aws["ORDERS_QUEUE_URL"], monkeypatch, importlib.import_module(module), name)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    seen = {r.headers["webhook-id"] for r in fake.requests("/p")}
    assert len(seen) == 1, "a re-sent delivery keeps its webhook-id"
    state = order_state(api, order_id)
    assert state["status"] == "dispatched" and state["deliveries"][0]["status"] == "delivered"


def test_a_message_for_an_unknown_order_is_acknowledged_and_sends_nothing(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    api.post("/api/v1/integrators", {"name": "p", "url": fake.url("/p"), "auth": {"type": "none"}})
    event = {"kind": "order_event", "type": "order.created", "order_id": "ord_01NOSUCHORDER0000000000000", "version": 1}
    sqs.send_message(QueueUrl=aws["ORDERS_QUEUE_URL"], MessageBody=json.dumps(event))
    results = drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert results and not any(r.failed_ids for r in results) and fake.requests("/p") == []


def test_a_throttled_callback_write_is_answered_500_and_the_integrators_retry_applies_once(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.db import orders as order_store

    partner = Partner(api, "courier", fake)
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    fail_once(monkeypatch, order_store, "replace", throttled("PutItem"))
    first = partner.post({"order_id": order_id, "status": "accepted"}, msg_id="cb-1")
    assert first.status_code == 500 and order_state(api, order_id)["status"] == "dispatched"
    again = partner.post({"order_id": order_id, "status": "accepted"}, msg_id="cb-1")
    assert again.status_code == 200 and again.json_body["applied"] is True, again.body
    timeline = [entry["status"] for entry in order_state(api, order_id)["timeline"]]
    assert timeline.count("accepted") == 1


def test_an_integrator_answering_garbage_is_delivered_and_its_text_kept(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    fake.default("/p", Reply(200, body=b"\x00\xffnot json<html>"))
    api.post("/api/v1/integrators", {"name": "p", "url": fake.url("/p"), "auth": {"type": "none"}})
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert order_state(api, order_id)["deliveries"][0]["status"] == "delivered"


# --- abuse: callbacks ---------------------------------------------------------------------------------------------


@pytest.fixture
def two_partners(api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator) -> dict[str, Any]:
    courier, shop = Partner(api, "courier", fake), Partner(api, "shop", fake)
    fake.default("/shop", Reply(500))  # the shop never gets the order
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    return {"order_id": order_id, "courier": courier, "shop": shop}


def test_forged_replayed_and_misdirected_callbacks_are_refused_and_change_nothing(
    api: Api, two_partners: dict[str, Any]
) -> None:
    order_id, courier, shop = two_partners["order_id"], two_partners["courier"], two_partners["shop"]
    before = order_state(api, order_id)
    update = {"order_id": order_id, "status": "accepted"}
    raw = json.dumps(update).encode()
    attempts = {
        "unsigned": courier.api.request(
            "POST", courier.path, raw=raw, headers={"Content-Type": "application/json"}, token=""
        ),
        "another integrator's secret": courier.post(update, secret=shop.secret),
        "stale timestamp": courier.post(update, skew=-3600),
        "future timestamp": courier.post(update, skew=3600),
        "order never sent to it": shop.post(update),
    }
    for case, response in attempts.items():
        assert response.status_code in (401, 404), case
        assert set(response.json_body["error"]) >= {"code", "message"} and "applied" not in response.json_body
        assert order_id not in json.dumps(response.json_body) or case == "order never sent to it", case
    first = courier.post({"order_id": order_id, "status": "preparing"}, msg_id="cb-replayed")
    replayed = courier.post({"order_id": order_id, "status": "delivered"}, msg_id="cb-replayed")
    assert first.status_code == 200 and 400 <= replayed.status_code < 500
    after = order_state(api, order_id)
    assert after["status"] == "preparing" and after["version"] >= before["version"]
    assert [e["status"] for e in after["timeline"]].count("delivered") == 0


# --- abuse: tokens and other sellers' ids ---------------------------------------------------------------------------


def test_missing_malformed_revoked_and_wrong_role_tokens_are_refused_alike(api: Api, seller_token: str) -> None:
    revoked = api.post("/api/v1/tokens", {"role": "seller", "seller_id": "s-1"}).json_body
    assert api.delete(f"/api/v1/tokens/{revoked['id']}").status_code == 204
    refused = {
        "missing": api.get(ORDERS, token=""),
        "malformed": api.get(ORDERS, token="not-a-token"),
        "wrong secret": api.get(ORDERS, token=seller_token[:-4] + "AAAA"),
        "revoked": api.get(ORDERS, token=revoked["token"]),
        "unknown id": api.get(ORDERS, token="orl_0123456789abcdef_" + "A" * 43),
    }
    assert refused["missing"].status_code == 401
    bodies = {case: (r.status_code, r.body) for case, r in refused.items() if case != "missing"}
    assert len(set(bodies.values())) == 1, bodies  # nothing tells which part of a presented token was wrong
    for route in ("/api/v1/tokens", "/api/v1/integrators"):
        assert api.get(route, token=seller_token).status_code == 403


def test_a_sellers_guess_at_another_sellers_order_looks_like_no_order(api: Api, seller_token: str) -> None:
    theirs = api.post(ORDERS, order_body(seller_id="s-2")).json_body["id"]
    guess = api.get(f"{ORDERS}/{theirs}", token=seller_token)
    missing = api.get(f"{ORDERS}/{theirs[:-4]}ZZZZ", token=seller_token)
    assert guess.status_code == missing.status_code == 404
    assert guess.json_body["error"]["code"] == missing.json_body["error"]["code"]
    for method, path in (("PATCH", f"{ORDERS}/{theirs}"), ("DELETE", f"{ORDERS}/{theirs}")):
        response = api.request(method, path, {"order": {"user_note": "x"}}, token=seller_token)
        assert response.status_code == 404, (method, response.body)
    assert order_state(api, theirs)["status"] == "pending"


# --- no credential in any log line ---------------------------------------------------------------------------------


def test_a_full_run_logs_no_token_secret_signature_or_authorization_header(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with captured_logs() as logs:
        seller = api.post("/api/v1/tokens", {"role": "seller", "seller_id": "s-1"}).json_body["token"]
        bearer = "partner-bearer-token-5b1d9e"
        registered = api.post(
            "/api/v1/integrators",
            {"name": "bearer", "url": fake.url("/b"), "auth": {"type": "bearer", "token": bearer}},
        ).json_body
        signed = api.post(
            "/api/v1/integrators",
            {"name": "signed", "url": fake.url("/s"), "auth": {"type": "hmac", "secret": HMAC_SECRET}},
        ).json_body
        fake.default("/b", Reply(500))
        order_id = api.as_(seller).post(ORDERS, order_body()).json_body["id"]
        drain(app, sqs, aws["ORDERS_QUEUE_URL"])
        partner = Partner.__new__(Partner)
        partner.api, partner.name, partner.secret = api, "signed", signed["callback_secret"]
        partner.path, partner.sent = "/api/v1/callbacks/signed", 0
        partner.status(order_id, "accepted")
        partner.post({"order_id": order_id, "status": "ready"}, secret=registered["callback_secret"])
        api.get(ORDERS, token=seller[:-3] + "xyz")
        api.get(ORDERS, token="garbage-token-value")
    text = logs.getvalue()
    assert text.count("\n") > 5, "the run logged something"
    signatures = [r.headers["webhook-signature"] for r in fake.requests("/s")]
    forbidden = [
        ADMIN_TOKEN,
        seller,
        seller.split("_", 2)[-1],  # orl_<id>_<secret>: the secret may itself contain "_"
        bearer,
        HMAC_SECRET,
        HMAC_SECRET.removeprefix("whsec_"),
        signed["callback_secret"],
        registered["callback_secret"],
        "garbage-token-value",
        *[s.split(",", 1)[-1] for s in signatures],
    ]
    for value in forbidden:
        assert value not in text, value
    assert "authorization" not in text.lower().replace('"authorizer"', "")


def fail_first_call(monkeypatch: pytest.MonkeyPatch, service: str, operation: str) -> list[str]:
    """Every AWS client (boto3's and pynamodb's) fails its first `service.operation` request with throttling, as
    AWS does under load; the list records the failure once it has happened."""
    import botocore.client

    real = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]
    fired: list[str] = []

    def call(self: Any, name: str, params: Any) -> Any:
        if not fired and name == operation and self.meta.service_model.service_name == service:
            fired.append(f"{service}.{name}")
            raise throttled(name)
        return real(self, name, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", call)
    return fired


def drain_until_settled(app: Any, sqs: Any, queue_url: str, rounds: int = 6) -> None:
    """Drain; what failed comes back at once (the visibility timeout, without waiting it out)."""
    for _ in range(rounds):
        failed = [r for batch in drain(app, sqs, queue_url) for r in batch.failed_receipts]
        if not failed:
            return
        for receipt in failed:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
    raise AssertionError(f"still failing after {rounds} rounds")


DISPATCH_CALLS = [
    ("dynamodb", "GetItem"),
    ("dynamodb", "PutItem"),
    ("dynamodb", "UpdateItem"),
    ("dynamodb", "Query"),
    ("sns", "Publish"),
]


@pytest.mark.parametrize(("service", "operation"), DISPATCH_CALLS, ids=[f"{s}-{o}" for s, o in DISPATCH_CALLS])
def test_an_aws_fault_on_any_call_of_the_dispatch_loses_nothing_and_keeps_the_webhook_id(
    api: Api,
    app: Any,
    sqs: Any,
    aws: dict[str, str],
    fake: FakeIntegrator,
    monkeypatch: pytest.MonkeyPatch,
    phone: str,
    service: str,
    operation: str,
) -> None:
    from chalicelib.notifications import publisher

    monkeypatch.setattr(publisher, "RETRY_DELAY_SECONDS", 0)  # a deferred notification comes back in this drain
    fake.default("/p", Reply(200, json={}))
    api.post("/api/v1/integrators", {"name": "p", "url": fake.url("/p"), "auth": {"type": "none"}})
    order_id = api.post(ORDERS, order_body()).json_body["id"]
    fired = fail_first_call(monkeypatch, service, operation)
    drain_until_settled(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert fired, f"the dispatch made no {service} {operation} request"
    assert len({r.headers["webhook-id"] for r in fake.requests("/p")}) == 1, "a re-sent delivery keeps its webhook-id"
    state = order_state(api, order_id)
    assert state["status"] == "dispatched" and state["deliveries"][0]["status"] == "delivered"
    events = [n["MessageAttributes"]["event"]["Value"] for n in notifications(phone)]
    assert events == ["order.dispatched"], "the customer hears of it, once"
