"""The dispatcher end to end inside one process: API -> queue -> SQS handler -> real HTTP integrators on
loopback -> delivery state, attempt log and retries."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import standardwebhooks

from tests.support.api import Api
from tests.support.aws import queue_messages
from tests.support.fake_integrator import CloseConnection, FakeIntegrator, Hang, Reply
from tools.poller import drain, poll_once
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"
HMAC_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def register(api: Api, name: str, url: str, auth: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "url": url, "auth": auth or {"type": "none"}, "timeout_seconds": 1, **extra}
    response = api.post("/api/v1/integrators", body)
    assert response.status_code == 201, response.body
    return dict(response.json_body)


def run(app: Any, sqs: Any, aws: dict[str, str], **kw: Any) -> list[Any]:
    return drain(app, sqs, aws["ORDERS_QUEUE_URL"], **kw)


def deliveries(api: Api, order_id: str) -> dict[str, dict[str, Any]]:
    return {d["integrator"]: d for d in api.get(f"{ORDERS}/{order_id}").json_body["deliveries"]}


def new_order(api: Api, **kw: Any) -> str:
    response = api.post(ORDERS, order_body(**kw))
    assert response.status_code == 201
    return str(response.json_body["id"])


# --- happy path and payload ------------------------------------------------------------------------------------


def test_order_reaches_every_integrator_in_the_seed_shape(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    fake.default("/delivery", Reply(200, json={"external_id": "D-77"}))
    fake.default("/loyalty", Reply(202, json={"points": 12}))
    register(api, "delivery", fake.url("/delivery"))
    register(api, "loyalty", fake.url("/loyalty"))
    order_id = new_order(api)
    run(app, sqs, aws)

    sent = fake.requests("/delivery")[0]
    payload = sent.json()
    assert set(payload) == {"user", "seller", "order"}
    assert payload["order"]["id"] == order_id
    assert set(payload["order"]) == {"id", "datetime", "timezone", "user_note", "items"}
    assert payload["order"]["items"] == [{"id": "i-1", "name": "Falafel wrap", "quantity": 2}]
    assert sent.headers["x-order-event"] == "order.created"
    assert sent.headers["webhook-id"].startswith("msg_") and sent.headers["webhook-timestamp"].isdigit()

    state = deliveries(api, order_id)
    assert state["delivery"]["status"] == "delivered" and state["delivery"]["external_id"] == "D-77"
    assert state["loyalty"]["response"] == {"points": 12}
    order = api.get(f"{ORDERS}/{order_id}").json_body
    assert order["status"] == "dispatched"
    log = api.get(f"{ORDERS}/{order_id}/deliveries").json_body["attempts"]
    assert {(a["integrator"], a["attempt"], a["outcome"], a["status_code"]) for a in log} == {
        ("delivery", 1, "delivered", 200),
        ("loyalty", 1, "delivered", 202),
    }
    assert all(a["latency_ms"] >= 0 and a["at"] for a in log)


def test_integrators_only_get_the_sellers_and_events_they_want(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    register(api, "only-s2", fake.url("/s2"), seller_ids=["s-2"])
    register(api, "created-only", fake.url("/created"), events=["order.created"])
    register(api, "off", fake.url("/off"), enabled=False)
    order_id = new_order(api)
    run(app, sqs, aws)
    api.patch(f"{ORDERS}/{order_id}", {"order": {"user_note": "ring"}})
    run(app, sqs, aws)
    assert fake.requests("/s2") == [] and fake.requests("/off") == []
    assert [r.headers["x-order-event"] for r in fake.requests("/created")] == ["order.created"]


def test_update_reaches_integrators_that_have_the_order(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    register(api, "delivery", fake.url("/d"))
    order_id = new_order(api)
    run(app, sqs, aws)
    api.patch(f"{ORDERS}/{order_id}", {"order": {"user_note": "ring twice"}})
    run(app, sqs, aws)
    created, updated = fake.requests("/d")
    assert updated.headers["x-order-event"] == "order.updated"
    assert updated.json()["order"]["user_note"] == "ring twice"
    assert updated.headers["webhook-id"] != created.headers["webhook-id"]


# --- authentication --------------------------------------------------------------------------------------------


def test_each_auth_type_is_sent(api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator) -> None:
    fake.oauth2_token_endpoint("/token", client_id="cid", client_secret="csecret-123456", token_ttl=3600)
    register(api, "keyed", fake.url("/k"), {"type": "api_key", "header": "X-Partner-Key", "key": "key-12345678"})
    register(api, "bearer", fake.url("/b"), {"type": "bearer", "token": "tok-12345678"})
    register(
        api,
        "oauth",
        fake.url("/o"),
        {
            "type": "oauth2_client_credentials",
            "token_url": fake.url("/token"),
            "client_id": "cid",
            "client_secret": "csecret-123456",
            "scope": "orders",
        },
    )
    register(api, "signed", fake.url("/h"), {"type": "hmac", "secret": HMAC_SECRET})
    for _ in range(2):
        new_order(api)
    run(app, sqs, aws)

    assert {r.headers["x-partner-key"] for r in fake.requests("/k")} == {"key-12345678"}
    assert {r.headers["authorization"] for r in fake.requests("/b")} == {"Bearer tok-12345678"}
    oauth_tokens = {r.headers["authorization"].split()[1] for r in fake.requests("/o")}
    assert len(fake.requests("/token")) == 1, "the OAuth2 token is cached between deliveries"
    assert oauth_tokens <= set(fake.valid_tokens)
    verifier = standardwebhooks.Webhook(HMAC_SECRET)
    for signed in fake.requests("/h"):
        assert verifier.verify(signed.body, dict(signed.headers.items())) == signed.json()


def test_oauth2_401_refreshes_the_token_once(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    fake.oauth2_token_endpoint("/token", client_id="cid", client_secret="csecret-123456")
    fake.script("/o", Reply(401), Reply(200, json={"ok": True}))
    register(
        api,
        "oauth",
        fake.url("/o"),
        {
            "type": "oauth2_client_credentials",
            "token_url": fake.url("/token"),
            "client_id": "cid",
            "client_secret": "csecret-123456",
        },
    )
    order_id = new_order(api)
    run(app, sqs, aws)
    assert len(fake.requests("/token")) == 2
    assert deliveries(api, order_id)["oauth"]["status"] == "delivered"


def test_integrator_secrets_are_masked_and_never_returned(api: Api, fake: FakeIntegrator) -> None:
    created = register(api, "bearer", fake.url("/b"), {"type": "bearer", "token": "tok-secret-value-9876"})
    assert created["callback_secret"].startswith("whsec_")
    shown = api.get("/api/v1/integrators/bearer").json_body
    assert shown["auth"] == {"type": "bearer", "token": "****9876"} and "callback_secret" not in shown
    assert "tok-secret-value" not in json.dumps(api.get("/api/v1/integrators").json_body)
    manager = boto3.client("secretsmanager", region_name="us-east-1")
    (stored,) = manager.list_secrets(Filters=[{"Key": "name", "Values": ["order-relay/test/integrators/bearer/"]}])[
        "SecretList"
    ]
    secret = manager.get_secret_value(SecretId=stored["Name"])
    assert json.loads(secret["SecretString"])["auth"]["token"] == "tok-secret-value-9876"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Bad Name", "url": "https://x.example/o", "auth": {"type": "none"}},
        {"name": "x", "url": "ftp://x.example/o", "auth": {"type": "none"}},
        {"name": "x", "url": "https://x.example/o", "auth": {"type": "carrier-pigeon"}},
        {"name": "x", "url": "https://x.example/o", "auth": {"type": "bearer"}},
        {"name": "x", "url": "https://x.example/o", "auth": {"type": "none"}, "events": ["order.eaten"]},
        {"name": "x", "url": "https://x.example/o", "auth": {"type": "none"}, "timeout_seconds": 0},
    ],
)
def test_integrator_registration_is_validated(api: Api, body: dict[str, Any]) -> None:
    response = api.post("/api/v1/integrators", body)
    assert response.status_code == 422 and response.json_body["error"]["details"]


def test_loopback_urls_are_refused_outside_the_local_stack(api: Api, configure: Any) -> None:
    configure(ALLOW_LOOPBACK_INTEGRATORS="false")
    for url in (
        "http://127.0.0.1:9/x",
        "https://localhost/x",
        "http://partner.example/x",
        "https://169.254.169.254/latest",
        "https://10.0.0.7/orders",
        "https://[::1]/x",
    ):
        response = api.post("/api/v1/integrators", {"name": "x", "url": url, "auth": {"type": "none"}})
        assert response.status_code == 422, url
    accepted = api.post(
        "/api/v1/integrators", {"name": "x", "url": "https://partner.example/x", "auth": {"type": "none"}}
    )
    assert accepted.status_code == 201


# --- failures and retries --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "behaviour",
    [Reply(500), Reply(503), Reply(408), Reply(429), CloseConnection(), Hang(3)],
    ids=["500", "503", "408", "429", "connection-closed", "timeout"],
)
def test_transient_failures_are_retried_then_marked_failed_after_5_attempts(
    api: Api,
    app: Any,
    sqs: Any,
    aws: dict[str, str],
    fake: FakeIntegrator,
    configure: Any,
    behaviour: Any,
) -> None:
    configure(DISPATCH_RETRY_DELAYS="0")
    fake.default("/down", behaviour)
    fake.default("/up", Reply(200, json={}))
    register(api, "down", fake.url("/down"), timeout_seconds=0.3)
    register(api, "up", fake.url("/up"))
    order_id = new_order(api)
    run(app, sqs, aws)

    assert len(fake.requests("/down")) == 5
    assert len(fake.requests("/up")) == 1, "a failing integrator never causes a re-send to a healthy one"
    state = deliveries(api, order_id)
    assert state["down"]["status"] == "failed" and state["down"]["attempts"] == 5
    attempts = [
        a for a in api.get(f"{ORDERS}/{order_id}/deliveries").json_body["attempts"] if a["integrator"] == "down"
    ]
    assert sorted(a["attempt"] for a in attempts) == [1, 2, 3, 4, 5]
    assert sorted(a["outcome"] for a in attempts) == ["failed"] + ["retry"] * 4
    assert all(a["error_class"] for a in attempts)
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "dispatched"


def test_redirects_are_not_followed(api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator) -> None:
    fake.default("/moved", Reply(302, headers={"Location": fake.url("/elsewhere")}))
    register(api, "moved", fake.url("/moved"))
    order_id = new_order(api)
    run(app, sqs, aws)
    assert fake.requests("/elsewhere") == []
    assert deliveries(api, order_id)["moved"]["status"] == "failed"


def test_other_4xx_fail_at_once(api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator) -> None:
    fake.default("/bad", Reply(400, json={"error": "unknown seller"}))
    register(api, "bad", fake.url("/bad"))
    order_id = new_order(api)
    run(app, sqs, aws)
    assert len(fake.requests("/bad")) == 1
    state = deliveries(api, order_id)["bad"]
    assert state["status"] == "failed" and state["last_status_code"] == 400
    attempt = api.get(f"{ORDERS}/{order_id}/deliveries").json_body["attempts"][0]
    assert "unknown seller" in attempt["response_body"]
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "failed"


def test_retry_after_is_honoured(api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator) -> None:
    fake.script("/busy", Reply(429, headers={"Retry-After": "120"}))
    register(api, "busy", fake.url("/busy"))
    order_id = new_order(api)
    run(app, sqs, aws)
    attempt = api.get(f"{ORDERS}/{order_id}/deliveries").json_body["attempts"][0]
    assert attempt["outcome"] == "retry" and attempt["retry_in_seconds"] >= 120
    assert deliveries(api, order_id)["busy"]["status"] == "retrying"
    assert queue_messages(aws["ORDERS_QUEUE_URL"]) == [], "the retry waits for its delay, it is not visible yet"


def test_malformed_2xx_response_is_delivered_and_kept_as_text(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    fake.default("/odd", Reply(200, body=b"<html>OK</html>", headers={"Content-Type": "text/html"}))
    register(api, "odd", fake.url("/odd"))
    order_id = new_order(api)
    run(app, sqs, aws)
    state = deliveries(api, order_id)["odd"]
    assert state["status"] == "delivered" and state["response"] is None and "not JSON" in state["last_error"]
    assert api.get(f"{ORDERS}/{order_id}/deliveries").json_body["attempts"][0]["response_body"] == "<html>OK</html>"


def test_recovering_integrator_gets_the_order_on_a_later_attempt(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any
) -> None:
    configure(DISPATCH_RETRY_DELAYS="0")
    fake.script("/flaky", Reply(503), Reply(502), Reply(200, json={"external_id": "F-1"}))
    register(api, "flaky", fake.url("/flaky"))
    order_id = new_order(api)
    run(app, sqs, aws)
    requests_seen = fake.requests("/flaky")
    assert len(requests_seen) == 3
    assert len({r.headers["webhook-id"] for r in requests_seen}) == 1, "webhook-id is stable across retries"
    assert deliveries(api, order_id)["flaky"]["status"] == "delivered"


# --- duplicates, crashes, supersession, replay -----------------------------------------------------------------


def test_redelivered_sqs_message_never_sends_twice(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    register(api, "delivery", fake.url("/d"))
    new_order(api)
    message = queue_messages(aws["ORDERS_QUEUE_URL"])[0]
    for _ in range(2):  # the same message, as SQS at-least-once delivery may hand it over again
        sqs.send_message(QueueUrl=aws["ORDERS_QUEUE_URL"], MessageBody=message["Body"])
    run(app, sqs, aws)
    assert len(fake.requests("/d")) == 1


def crash_one_batch(
    app: Any, sqs: Any, queue_url: str, monkeypatch: pytest.MonkeyPatch, target: Any, name: str
) -> None:
    """Run one batch with `target.name` raising, then make its messages visible again at once (what the
    visibility timeout does after a crashed invocation, without waiting six minutes)."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("DynamoDB unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(target, name, broken)
        crashed = poll_once(app, sqs, queue_url)
    assert crashed.crashed
    for receipt in crashed.failed_receipts:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)


def test_crash_before_sending_is_retried_by_sqs_and_delivered_once(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.db import integrators as integrator_store

    register(api, "delivery", fake.url("/d"))
    order_id = new_order(api)
    crash_one_batch(app, sqs, aws["ORDERS_QUEUE_URL"], monkeypatch, integrator_store, "list_all")
    assert fake.requests("/d") == []
    run(app, sqs, aws)
    assert len(fake.requests("/d")) == 1
    assert deliveries(api, order_id)["delivery"]["status"] == "delivered"


def test_crash_after_sending_resends_with_the_same_webhook_id(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.db import deliveries as store

    register(api, "delivery", fake.url("/d"))
    order_id = new_order(api)
    crash_one_batch(app, sqs, aws["ORDERS_QUEUE_URL"], monkeypatch, store, "put_state_with_attempt")
    assert len(fake.requests("/d")) == 1
    run(app, sqs, aws)
    first, second = fake.requests("/d")
    assert first.headers["webhook-id"] == second.headers["webhook-id"], "the integrator can deduplicate"
    assert deliveries(api, order_id)["delivery"]["status"] == "delivered"
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "dispatched"
    attempts = api.get(f"{ORDERS}/{order_id}/deliveries").json_body["attempts"]
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "delivered")], "only the recorded attempt"


def test_a_dispatcher_that_dies_after_sending_is_waited_for_then_sent_again_with_the_same_webhook_id(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies between the POST and its record (nothing after the send is written, not even the claim's
    release): a copy of the message arriving while the claim holds sends nothing; once the dead invocation's
    time is up, the queue's redelivery sends again with the same webhook-id."""
    from datetime import timedelta

    from chalicelib.db import deliveries as store
    from chalicelib.dispatch import claims
    from chalicelib.domain import clock

    register(api, "delivery", fake.url("/d"))
    order_id = new_order(api)
    with monkeypatch.context() as dead:
        dead.setattr(claims, "release", lambda claimed: None)
        crash_one_batch(app, sqs, aws["ORDERS_QUEUE_URL"], monkeypatch, store, "put_state_with_attempt")
    again = poll_once(app, sqs, aws["ORDERS_QUEUE_URL"])  # a copy while the claim holds: waits, sends nothing
    assert again.received == 1 and again.failed_ids and len(fake.requests("/d")) == 1
    for receipt in again.failed_receipts:
        sqs.change_message_visibility(QueueUrl=aws["ORDERS_QUEUE_URL"], ReceiptHandle=receipt, VisibilityTimeout=0)
    real = clock.utcnow
    monkeypatch.setattr(clock, "utcnow", lambda: real() + timedelta(seconds=61))  # the dead invocation's end
    run(app, sqs, aws)
    first, second = fake.requests("/d")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert deliveries(api, order_id)["delivery"]["status"] == "delivered"
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "dispatched"


def test_a_claim_lasts_until_the_end_of_the_invocation_that_made_it_when_invocations_share_a_process(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local stack runs several pollers' invocations in one process. A claim must hold until the end of the
    invocation that made it, not of whichever invocation started last: otherwise a copy of the message could
    send again while the first invocation may still be recording."""
    import threading
    from datetime import timedelta

    from chalicelib import queue
    from chalicelib.db import deliveries as store
    from chalicelib.db import orders as order_store
    from chalicelib.dispatch import claims
    from chalicelib.domain import clock
    from chalicelib.messages import DrainWaiting

    register(api, "delivery", fake.url("/d"))
    new_order(api)
    url = aws["ORDERS_QUEUE_URL"]
    reading, go_on = threading.Event(), threading.Event()
    real_get = order_store.get

    def held_get(order_id: str) -> Any:
        if not reading.is_set():  # the long invocation's read of the order, before its claim: hold it there
            reading.set()
            go_on.wait(10)
        return real_get(order_id)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("DynamoDB unreachable")

    long_lived: list[Any] = []
    with monkeypatch.context() as dead:
        dead.setattr(order_store, "get", held_get)
        dead.setattr(claims, "release", lambda claimed: None)  # it dies after the send: nothing more is written
        dead.setattr(store, "put_state_with_attempt", broken)
        first = threading.Thread(target=lambda: long_lived.append(poll_once(app, sqs, url, timeout_seconds=900)))
        first.start()
        assert reading.wait(10)
        queue.send(DrainWaiting(integrator="delivery"))
        short = poll_once(app, sqs, url, timeout_seconds=5)  # another invocation starts, and ends, meanwhile
        assert short.received == 1 and not short.failed_ids
        go_on.set()
        first.join(30)
    assert long_lived[0].crashed and len(fake.requests("/d")) == 1
    for receipt in long_lived[0].failed_receipts:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0)
    real = clock.utcnow
    with monkeypatch.context() as later:
        later.setattr(clock, "utcnow", lambda: real() + timedelta(seconds=120))  # past the short one's end
        again = poll_once(app, sqs, url)
    assert again.received == 1 and again.failed_ids, "the long invocation's claim still holds"
    assert len(fake.requests("/d")) == 1
    for receipt in again.failed_receipts:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0)
    monkeypatch.setattr(clock, "utcnow", lambda: real() + timedelta(seconds=901))  # past the long one's end
    run(app, sqs, aws)
    first_send, second_send = fake.requests("/d")
    assert first_send.headers["webhook-id"] == second_send.headers["webhook-id"]


def test_cancel_drops_pending_create_and_tells_only_integrators_that_have_it(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Callable[..., None]
) -> None:
    configure(DISPATCH_RETRY_DELAYS="60")  # the retry must still be waiting, however slow the machine
    fake.default("/ok", Reply(200, json={}))
    fake.default("/down", Reply(503))
    register(api, "ok", fake.url("/ok"))
    register(api, "down", fake.url("/down"))
    order_id = new_order(api)
    run(app, sqs, aws)  # "down" is now waiting for its retry
    assert api.delete(f"{ORDERS}/{order_id}").status_code == 200
    run(app, sqs, aws)
    assert [r.headers["x-order-event"] for r in fake.requests("/ok")] == ["order.created", "order.cancelled"]
    assert len(fake.requests("/down")) == 1
    state = deliveries(api, order_id)
    assert state["down"]["status"] == "superseded"
    # The retry message arrives later and finds nothing to do.
    from chalicelib.dispatch.delivery import handle_job as handle_retry
    from chalicelib.domain.delivery import webhook_id
    from chalicelib.messages import DeliveryJob

    handle_retry(
        DeliveryJob(
            order_id=order_id,
            integrator="down",
            event="order.created",
            version=1,
            attempt=2,
            webhook_id=webhook_id(order_id, "order.created", 1, "down"),
            registration_id=api.get("/api/v1/integrators/down").json_body["registration_id"],
        )
    )
    assert len(fake.requests("/down")) == 1


def test_admin_can_resend_a_failed_delivery(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, seller_token: str
) -> None:
    fake.script("/p", Reply(400))
    fake.default("/p", Reply(200, json={"external_id": "P-1"}))
    register(api, "partner", fake.url("/p"))
    order_id = new_order(api)
    run(app, sqs, aws)
    assert deliveries(api, order_id)["partner"]["status"] == "failed"
    retry_path = f"{ORDERS}/{order_id}/deliveries/partner/retry"
    assert api.as_(seller_token).post(retry_path).status_code == 403
    assert api.post(retry_path).status_code == 202
    assert api.post(retry_path).status_code == 409  # already retrying
    run(app, sqs, aws)
    assert deliveries(api, order_id)["partner"]["status"] == "delivered"
    sent = fake.requests("/p")
    assert len(sent) == 2 and sent[0].headers["webhook-id"] == sent[1].headers["webhook-id"]


def test_disabled_integrator_keeps_its_pending_retry_until_enabled_again(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    from chalicelib.dispatch.delivery import handle_job as handle_retry
    from chalicelib.domain.delivery import webhook_id
    from chalicelib.messages import DeliveryJob

    fake.script("/p", Reply(503))
    register(api, "partner", fake.url("/p"))
    order_id = new_order(api)
    run(app, sqs, aws)
    assert api.patch("/api/v1/integrators/partner", {"enabled": False}).status_code == 200
    handle_retry(
        DeliveryJob(
            order_id=order_id,
            integrator="partner",
            event="order.created",
            version=1,
            attempt=2,
            webhook_id=webhook_id(order_id, "order.created", 1, "partner"),
            registration_id=api.get("/api/v1/integrators/partner").json_body["registration_id"],
        )
    )
    assert len(fake.requests("/p")) == 1
    held = deliveries(api, order_id)["partner"]
    assert held["status"] == "waiting" and held["attempts"] == 1, "held back without spending an attempt"
    fake.default("/p", Reply(200, json={}))
    assert api.patch("/api/v1/integrators/partner", {"enabled": True}).status_code == 200
    run(app, sqs, aws)
    assert deliveries(api, order_id)["partner"]["status"] == "delivered"
    assert len(fake.requests("/p")) == 2


# --- concurrency -----------------------------------------------------------------------------------------------


def test_a_batch_runs_deliveries_concurrently(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    """A slow integrator must not make the others wait: calls of one batch overlap (timing is in bench/)."""
    for name in ("a", "b", "c"):
        fake.default(f"/{name}", Reply(200, json={}, delay=0.5))
        register(api, name, fake.url(f"/{name}"), timeout_seconds=10)
    for _ in range(10):
        new_order(api)
    results = run(app, sqs, aws)
    assert all(not r.failed_ids for r in results)
    assert sum(len(fake.requests(f"/{n}")) for n in "abc") == 30
    # One order alone puts 3 calls in flight; more means the orders of the batch were delivered side by side.
    assert fake.max_in_flight >= 6, fake.max_in_flight


def test_operator_replays_failed_deliveries_of_a_time_range(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, seller_token: str
) -> None:
    fake.script("/p", Reply(400), Reply(400))
    fake.default("/p", Reply(200, json={}))
    register(api, "partner", fake.url("/p"))
    failed = [new_order(api), new_order(api)]
    run(app, sqs, aws)
    assert all(deliveries(api, o)["partner"]["status"] == "failed" for o in failed)
    window = {"since": "2020-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}
    assert api.as_(seller_token).post("/api/v1/integrators/partner/replay", window).status_code == 403
    assert (
        api.post(
            "/api/v1/integrators/partner/replay", {"since": "2030-01-01T00:00:00Z", "until": "2020-01-01T00:00:00Z"}
        ).status_code
        == 422
    )
    empty = api.post(
        "/api/v1/integrators/partner/replay", {"since": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z"}
    )
    assert empty.json_body["replayed"] == []
    response = api.post("/api/v1/integrators/partner/replay", window)
    assert response.status_code == 202 and sorted(response.json_body["replayed"]) == sorted(failed)
    run(app, sqs, aws)
    assert all(deliveries(api, o)["partner"]["status"] == "delivered" for o in failed)
