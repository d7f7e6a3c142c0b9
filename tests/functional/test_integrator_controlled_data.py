"""What an integrator (or a payload template) controls cannot leak a secret, crash the dispatcher or stall another
integrator (issue 20): every failure is an error class plus a message the service writes itself, every odd answer
ends as a recorded attempt, reads and rendered bodies are bounded, and one slow OAuth2 token endpoint delays
only its own integrator's deliveries."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from typing import Any

import pytest

from tests.support.api import ADMIN_TOKEN, Api
from tests.support.aws import notifications
from tests.support.fake_integrator import FakeIntegrator, Huge, Reply
from tests.support.logs import captured_logs
from tools.poller import drain
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"
INTEGRATORS = "/api/v1/integrators"
QUERY_SECRET = "qs-9f2c7e1b5a"  # a partner's key carried in its URL's query string
# Ten copies per level of whatever comes before: five levels turn a 60-byte item list into about 6 MB of body.
TIMES_TEN = " | [@, @, @, @, @, @, @, @, @, @]"


def register(api: Api, name: str, url: str, auth: dict[str, Any] | None = None, **extra: Any) -> None:
    body = {"name": name, "url": url, "auth": auth or {"type": "none"}, "timeout_seconds": 1, **extra}
    response = api.post(INTEGRATORS, body)
    assert response.status_code == 201, response.body


def oauth(token_url: str, client_id: str = "cid") -> dict[str, Any]:
    return {
        "type": "oauth2_client_credentials",
        "token_url": token_url,
        "client_id": client_id,
        "client_secret": "csecret-123456",
    }


def new_order(api: Api, **order: Any) -> str:
    response = api.post(ORDERS, order_body(**order))
    assert response.status_code == 201, response.body
    return str(response.json_body["id"])


def strict_json(raw: bytes | str) -> Any:
    """What a strict JSON client makes of a body: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(raw, parse_constant=refuse)


def delivery(api: Api, order_id: str, name: str, token: str = ADMIN_TOKEN) -> dict[str, Any]:
    response = api.get(f"{ORDERS}/{order_id}", token=token)
    assert response.status_code == 200, response.body
    (found,) = [d for d in strict_json(response.body)["deliveries"] if d["integrator"] == name]
    return dict(found)


def attempts(api: Api, order_id: str, name: str, token: str = ADMIN_TOKEN) -> list[dict[str, Any]]:
    response = api.get(f"{ORDERS}/{order_id}/deliveries", token=token)
    assert response.status_code == 200, response.body
    return [a for a in strict_json(response.body)["attempts"] if a["integrator"] == name]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- finding 1: errors are a class and the service's own words ------------------------------------------------------


def test_a_failed_send_is_told_as_a_class_and_a_service_message_never_the_url_or_exception_text(
    api: Api,
    app: Any,
    sqs: Any,
    aws: dict[str, str],
    configure: Any,
    phone: str,
    seller_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chalicelib.domain import clock
    from chalicelib.messages import ProbeCircuit

    configure(DISPATCH_MAX_ATTEMPTS="1", CIRCUIT_FAILURE_THRESHOLD="1", CIRCUIT_DISABLE_AFTER_SECONDS="120")
    register(api, "courier", f"http://127.0.0.1:{closed_port()}/orders?api_key={QUERY_SECRET}")
    seller = api.as_(seller_token)
    with captured_logs() as logs:
        failed = seller.post(ORDERS, order_body()).json_body["id"]
        drain(app, sqs, aws["ORDERS_QUEUE_URL"])  # fails at once, and opens the circuit
        waiting = seller.post(ORDERS, order_body()).json_body["id"]
        drain(app, sqs, aws["ORDERS_QUEUE_URL"])  # waits
        real = clock.utcnow
        monkeypatch.setattr(clock, "utcnow", lambda: real() + timedelta(seconds=200))
        sqs.send_message(
            QueueUrl=aws["ORDERS_QUEUE_URL"], MessageBody=ProbeCircuit(integrator="courier").model_dump_json()
        )
        drain(app, sqs, aws["ORDERS_QUEUE_URL"])  # the probe fails too: open too long, the integrator is disabled

    seen_by_seller = delivery(api, failed, "courier", token=seller_token)
    assert seen_by_seller["status"] == "failed" and seen_by_seller["last_error"] == "connection refused"
    assert delivery(api, waiting, "courier", token=seller_token)["last_error"] == "probe failed: connection refused"
    (attempt,) = attempts(api, failed, "courier", token=seller_token)
    assert (attempt["error_class"], attempt["error"]) == ("ConnectionError", "connection refused")
    health = api.get(f"{INTEGRATORS}/courier/health").json_body
    assert health["last_error"] == "connection refused"
    published = notifications(phone)
    events = {n["MessageAttributes"]["event"]["Value"]: json.loads(n["Message"]) for n in published}
    assert events["integrator.disabled"]["last_error"] == "connection refused"
    push = events["delivery.failed"]
    assert push["body"] == "We could not send your order to one of the shop's partners."
    assert "circuit opened" in logs.getvalue()

    everything = [logs.getvalue(), json.dumps(health), json.dumps(published)]
    for order_id in (failed, waiting):
        for token in (seller_token, ADMIN_TOKEN):
            everything.append(api.get(f"{ORDERS}/{order_id}", token=token).body.decode())
            everything.append(api.get(f"{ORDERS}/{order_id}/deliveries", token=token).body.decode())
    for text in everything:
        for leaked in (QUERY_SECRET, "api_key=", "Max retries", "HTTPConnectionPool", "Errno"):
            assert leaked not in text, (leaked, text[:2000])


def test_an_access_token_that_cannot_be_a_header_fails_the_delivery_without_quoting_it(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, seller_token: str
) -> None:
    token = "tok-7c4e1f09\r\nX-Injected: 1"
    fake.default("/token", Reply(200, json={"access_token": token, "expires_in": 600}))
    register(api, "partner", fake.url("/p"), oauth(fake.url("/token")))
    with captured_logs() as logs:
        order_id = api.as_(seller_token).post(ORDERS, order_body()).json_body["id"]
        drain(app, sqs, aws["ORDERS_QUEUE_URL"])

    assert fake.requests("/p") == [], "no header was ever built from it"
    state = delivery(api, order_id, "partner", token=seller_token)
    assert state["status"] == "failed" and state["last_error"] == "the token endpoint's access_token is unusable"
    assert [a["error_class"] for a in attempts(api, order_id, "partner")] == ["TokenError"]
    for text in (logs.getvalue(), api.get(f"{ORDERS}/{order_id}/deliveries").body.decode()):
        assert "tok-7c4e1f09" not in text


def test_a_seller_reads_the_attempt_log_without_partner_answers_or_template_detail(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, seller_token: str
) -> None:
    fake.default("/echo", Reply(400, json={"echo": {"authorization": "Bearer partner-tok-31d9"}}))
    register(api, "echo", fake.url("/echo"))
    register(api, "strict", fake.url("/strict"), payload_template="{ref: order.id, plus: starts_with(user.phone, '+')}")
    no_phone = order_body()
    del no_phone["user"]["phone"]
    order_id = api.post(ORDERS, no_phone).json_body["id"]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])

    admin = {a["integrator"]: a for a in attempts(api, order_id, "echo") + attempts(api, order_id, "strict")}
    assert "partner-tok-31d9" in admin["echo"]["response_body"], "admins read the partner's answer"
    assert "starts_with()" in admin["strict"]["detail"], "admins read what the template did wrong"
    assert admin["strict"]["error"] == "the payload template failed for this order"
    seller_view = api.get(f"{ORDERS}/{order_id}/deliveries", token=seller_token).body.decode()
    assert "partner-tok-31d9" not in seller_view and "starts_with()" not in seller_view
    assert delivery(api, order_id, "strict", token=seller_token)["last_error"] == admin["strict"]["error"]


# --- finding 3: whatever an integrator answers ends as a recorded attempt ------------------------------------------


DEEP = b"[" * 5000 + b"]" * 5000
STORABLE_BUT_DEEP = json.dumps({"a": json.loads("[" * 600 + "]" * 600)}).encode()


@pytest.mark.parametrize(
    ("answer", "external_id"),
    [
        (DEEP, None),
        (STORABLE_BUT_DEEP, None),
        (b'{"external_id": "\\ud800"}', None),
        (b'{"external_id": {"nested": [1, 2]}}', None),
        (b'{"id": 1e400, "eta": NaN}', None),
        (b'{"id": 12345678901234567890123456789012345678901234567890}', "1234567890" * 5),
        (b'{"external_id": "' + b"x" * 2000 + b'"}', None),
        (b'{"external_id": "D-77", "v": 1e-400}', "D-77"),
    ],
    ids=["nested-5000", "nested-600", "lone-surrogate", "object-id", "infinity-nan", "50-digit-id", "long-id", "tiny"],
)
def test_any_2xx_answer_is_delivered_and_the_order_still_reads_as_json(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, answer: bytes, external_id: str | None
) -> None:
    fake.default("/p", Reply(200, body=answer))
    register(api, "p", fake.url("/p"))
    order_id = new_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])

    state = delivery(api, order_id, "p")
    assert state["status"] == "delivered" and state["external_id"] == external_id
    (attempt,) = attempts(api, order_id, "p")
    assert attempt["outcome"] == "delivered" and attempt["response_body"]
    assert len(fake.requests("/p")) == 1
    assert api.get(f"{ORDERS}/{order_id}").json_body["status"] == "dispatched"


def test_an_unreadable_retry_after_is_a_retry_at_the_usual_delay(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    fake.script("/busy", Reply(503, headers={"Retry-After": "\u00b2"}))  # a latin-1 digit float() cannot read
    register(api, "busy", fake.url("/busy"))
    order_id = new_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    (attempt,) = attempts(api, order_id, "busy")
    assert (attempt["outcome"], attempt["error_class"], attempt["error"]) == ("retry", "HTTPError", "HTTP 503")
    assert delivery(api, order_id, "busy")["status"] == "retrying"


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (Reply(200, json=["access_token", "t"]), "failed"),
        (Reply(200, json="a-token"), "failed"),
        (Reply(200, body=DEEP), "failed"),
        (Reply(200, body=b'{"access_token": "t-1", "expires_in": 1' + b"0" * 400 + b"}"), "delivered"),
        (Reply(200, body=b'{"access_token": "t-1", "expires_in": NaN}'), "failed"),
        (Reply(200, json={"access_token": "t-1", "expires_in": -5}), "delivered"),
        (Reply(200, json={"access_token": "t-1", "expires_in": {"s": 1}}), "failed"),
        (Reply(200, json={"access_token": ["t-1"]}), "failed"),
    ],
    ids=["array", "string", "nested", "huge-expiry", "nan-expiry", "negative-expiry", "object-expiry", "array-token"],
)
def test_any_token_endpoint_answer_ends_as_a_recorded_attempt(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, answer: Reply, outcome: str
) -> None:
    fake.default("/token", answer)
    register(api, "partner", fake.url("/p"), oauth(fake.url("/token")))
    order_id = new_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])

    (attempt,) = attempts(api, order_id, "partner")
    assert attempt["outcome"] == outcome
    if outcome == "failed":
        assert attempt["error_class"] == "TokenError" and fake.requests("/p") == []
        assert delivery(api, order_id, "partner")["last_error"].startswith("the token endpoint")


def test_a_huge_token_answer_is_read_only_up_to_16_kb(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    fake.default("/token", Huge(size=50 * 1024 * 1024))
    register(api, "partner", fake.url("/p"), oauth(fake.url("/token")), timeout_seconds=5)
    order_id = new_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    (attempt,) = attempts(api, order_id, "partner")
    assert (attempt["outcome"], attempt["error_class"]) == ("failed", "TokenError")
    assert attempt["error"] == "the token endpoint's answer is over 16 KB"
    assert fake.streamed_bytes < 32 * 1024 * 1024, "the reader stopped at 16 KB; socket buffers took the rest"


# --- templates: every failure is the template's, and bodies are bounded ---------------------------------------------


NUMBER_NOTE = "{ref: order.id, n: floor(to_number(order.user_note) || `0`)}"


@pytest.mark.parametrize("note", ["1e999", "nan"], ids=["infinity", "nan"])
def test_a_template_computing_an_impossible_number_fails_that_delivery_at_once(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, note: str
) -> None:
    register(api, "numbers", fake.url("/n"), payload_template=NUMBER_NOTE)
    order_id = new_order(api, user_note=note)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert fake.requests("/n") == []
    state = delivery(api, order_id, "numbers")
    assert state["status"] == "failed" and state["last_error"] == "the payload template failed for this order"
    (attempt,) = attempts(api, order_id, "numbers")
    assert attempt["error_class"] == "payload_template_error" and "floor()" in attempt["detail"]


def test_a_template_nested_too_deep_to_evaluate_is_refused_with_422(api: Api, fake: FakeIntegrator) -> None:
    template = "{a: " + "(" * 1500 + "order.id" + ")" * 1500 + "}"
    body = {"name": "deep", "url": fake.url(), "auth": {"type": "none"}, "payload_template": template}
    response = api.post(INTEGRATORS, body)
    assert response.status_code == 422, response.body
    assert response.json_body["error"]["details"][0]["field"] == "payload_template"


def test_a_template_body_over_256_kb_is_refused_for_the_sample_order(api: Api, fake: FakeIntegrator) -> None:
    template = "{lines: order.items" + TIMES_TEN * 5 + "}"  # about 6 MB for the sample order
    body = {"name": "big", "url": fake.url(), "auth": {"type": "none"}, "payload_template": template}
    refused = api.post(INTEGRATORS, body)
    assert refused.status_code == 422, refused.body
    assert "256 KB" in refused.json_body["error"]["details"][0]["message"]
    register(api, "big", fake.url())
    previewed = api.post(f"{INTEGRATORS}/big/preview", {"payload_template": template})
    assert previewed.status_code == 422 and "256 KB" in previewed.json_body["error"]["details"][0]["message"]


def test_a_template_body_over_256_kb_for_one_order_fails_that_delivery_at_once(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    register(api, "big", fake.url("/big"), payload_template="{lines: order.items" + TIMES_TEN * 3 + "}")
    items = [{"id": f"i-{n}", "name": "x" * 200, "quantity": 1} for n in range(10)]  # 1,000 copies of 2.2 KB
    order_id = new_order(api, items=items)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert fake.requests("/big") == []
    (attempt,) = attempts(api, order_id, "big")
    assert (attempt["outcome"], attempt["error_class"]) == ("failed", "payload_template_error")
    assert "256 KB" in attempt["detail"]


# --- finding 5: one slow token endpoint delays only its own integrator ----------------------------------------------


def test_a_slow_token_endpoint_does_not_delay_another_integrators_deliveries(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any
) -> None:
    configure(CIRCUIT_FAILURE_THRESHOLD="50")
    fake.oauth2_token_endpoint("/slow-token", client_id="slow", client_secret="csecret-123456", delay=3)
    fake.oauth2_token_endpoint("/fast-token", client_id="fast", client_secret="csecret-123456")
    register(api, "fast", fake.url("/fast"), oauth(fake.url("/fast-token"), "fast"))
    new_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])  # the fast integrator's token is now cached
    register(api, "slow", fake.url("/slow"), oauth(fake.url("/slow-token"), "slow"), timeout_seconds=5)
    for _ in range(4):
        new_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])

    assert len(fake.requests("/slow-token")) == 1, "one fetch in flight per credential; the others wait for it"
    assert len(fake.requests("/slow")) == 4 and len(fake.requests("/fast")) == 5
    slow_fetch = fake.requests("/slow-token")[0].received_at
    fast = sorted(r.received_at for r in fake.requests("/fast")[1:])
    assert fast[-1] < slow_fetch + 2, "every fast delivery went out while the slow token was being fetched"
