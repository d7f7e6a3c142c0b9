"""Integrator protection through the public surface: a circuit per integrator shared by every dispatcher,
deliveries that wait instead of failing while it is open, the probe, the drain, the rate limit and health."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain import clock
from chalicelib.messages import ProbeCircuit
from tests.support.api import Api
from tests.support.aws import notifications
from tests.support.fake_integrator import FakeIntegrator, Reply
from tests.support.logs import captured_logs
from tools.poller import drain, poll_once
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Move the service's clock forward (cool-downs and probe times are business time, not test time)."""
    real = clock.utcnow
    offset = [timedelta(0)]

    def shifted() -> datetime:
        return real() + offset[0]

    monkeypatch.setattr(clock, "utcnow", shifted)

    def advance(seconds: float) -> None:
        offset[0] += timedelta(seconds=seconds)

    return advance


def register(api: Api, name: str, url: str, **extra: Any) -> None:
    body = {"name": name, "url": url, "auth": {"type": "none"}, "timeout_seconds": 2, **extra}
    response = api.post("/api/v1/integrators", body)
    assert response.status_code == 201, response.body


def new_order(api: Api, **kw: Any) -> str:
    response = api.post(ORDERS, order_body(**kw))
    assert response.status_code == 201, response.body
    return str(response.json_body["id"])


def delivery(api: Api, order_id: str, integrator: str) -> dict[str, Any]:
    states = {d["integrator"]: d for d in api.get(f"{ORDERS}/{order_id}").json_body["deliveries"]}
    return dict(states[integrator])


def health(api: Api, name: str, **query: Any) -> dict[str, Any]:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    response = api.get(f"/api/v1/integrators/{name}/health{suffix}")
    assert response.status_code == 200, response.body
    return dict(response.json_body)


def probe_now(sqs: Any, aws: dict[str, str], name: str) -> None:
    """What the circuit's delayed ProbeCircuit message does when the cool-down ends."""
    sqs.send_message(QueueUrl=aws["ORDERS_QUEUE_URL"], MessageBody=ProbeCircuit(integrator=name).model_dump_json())


def test_a_partner_down_for_50_orders_gets_threshold_calls_and_every_order_once_after(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any, later: Any
) -> None:
    configure(CIRCUIT_FAILURE_THRESHOLD="5", CIRCUIT_COOLDOWN_SECONDS="900", DISPATCH_RETRY_DELAYS="1")
    fake.default("/down", Reply(503))
    fake.default("/up", Reply(200, json={}))
    register(api, "down", fake.url("/down"))
    register(api, "up", fake.url("/up"))
    orders = [new_order(api, user_id=f"u-{n}") for n in range(50)]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"], settle_seconds=2.5)  # long enough for the 1 s retries to come back

    assert len(fake.requests("/down")) == 5, "threshold calls, then the circuit holds every delivery back"
    assert len(fake.requests("/up")) == 50, "a healthy partner is not held back by a sick one"
    states = [delivery(api, order_id, "down") for order_id in orders]
    assert {s["status"] for s in states} == {"waiting"}, "no delivery fails while it waits"
    assert all(s["next_attempt_at"] for s in states)
    assert max(s["attempts"] for s in states) <= 1, "waiting spends no attempt"
    report = health(api, "down")
    assert report["circuit"] == "open" and report["waiting"] == 50 and report["next_probe_at"]
    assert report["last_error"] == "HTTP 503"

    fake.default("/down", Reply(200, json={}))
    later(901)
    probe_now(sqs, aws, "down")
    drain(app, sqs, aws["ORDERS_QUEUE_URL"], settle_seconds=1.5)

    received = [r for r in fake.requests("/down") if r.headers["x-order-event"] == "order.created"]
    delivered_ids = [r.headers["webhook-id"] for r in received[5:]]
    assert len(delivered_ids) == 50 and len(set(delivered_ids)) == 50, "every order exactly once after recovery"
    assert {delivery(api, order_id, "down")["status"] for order_id in orders} == {"delivered"}
    report = health(api, "down")
    assert report["circuit"] == "closed" and report["waiting"] == 0 and report["consecutive_failures"] == 0


def test_a_failed_probe_doubles_the_cool_down_and_spends_no_attempt(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any, later: Any
) -> None:
    configure(CIRCUIT_FAILURE_THRESHOLD="1", CIRCUIT_COOLDOWN_SECONDS="30", DISPATCH_RETRY_DELAYS="60")
    fake.default("/down", Reply(500))
    register(api, "down", fake.url("/down"))
    first = new_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    second = new_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert len(fake.requests("/down")) == 1
    opened = health(api, "down")
    assert opened["circuit"] == "open" and opened["waiting"] == 1  # the second order; the first has its retry

    later(31)
    probe_now(sqs, aws, "down")
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert len(fake.requests("/down")) == 2, "one probe, no more"
    reopened = health(api, "down")
    assert reopened["circuit"] == "open"
    probe_at = datetime.fromisoformat(reopened["next_probe_at"].replace("Z", "+00:00"))
    assert timedelta(seconds=59) <= probe_at - clock.utcnow() <= timedelta(seconds=61), "cool-down doubled to 60 s"
    assert delivery(api, second, "down")["status"] == "waiting"
    assert delivery(api, second, "down")["attempts"] == 1
    assert delivery(api, first, "down")["status"] == "retrying"


def test_a_circuit_open_too_long_disables_the_integrator_and_says_so(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any, later: Any, phone: str
) -> None:
    configure(
        CIRCUIT_FAILURE_THRESHOLD="1",
        CIRCUIT_COOLDOWN_SECONDS="30",
        CIRCUIT_DISABLE_AFTER_SECONDS="120",
        DISPATCH_RETRY_DELAYS="1",
    )
    fake.default("/down", Reply(503))
    register(api, "down", fake.url("/down"))
    waiting = [new_order(api)]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])  # the first order's failure opens the circuit
    waiting.append(new_order(api))
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])  # the second one waits
    notifications(phone)

    later(200)
    probe_now(sqs, aws, "down")
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert api.get("/api/v1/integrators/down").json_body["enabled"] is False
    events = [n for n in notifications(phone) if n["MessageAttributes"]["event"]["Value"] == "integrator.disabled"]
    assert len(events) == 1
    assert events[0]["MessageAttributes"]["integrator"]["Value"] == "down"
    assert json.loads(events[0]["Message"])["integrator"] == "down"

    # Enabling it again resumes what waited.
    fake.default("/down", Reply(200, json={}))
    assert api.patch("/api/v1/integrators/down", {"enabled": True}).status_code == 200
    drain(app, sqs, aws["ORDERS_QUEUE_URL"], settle_seconds=2)  # and the first order's delayed retry
    assert [delivery(api, order_id, "down")["status"] for order_id in waiting] == ["delivered", "delivered"]
    assert health(api, "down")["circuit"] == "closed"


def test_a_rate_limit_holds_across_three_concurrent_dispatchers(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    fake.default("/slow-lane", Reply(200, json={}))
    register(api, "limited", fake.url("/slow-lane"), max_requests_per_second=5)
    orders = [new_order(api) for _ in range(20)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def dispatcher() -> None:
        try:
            while not stop.is_set():
                poll_once(app, sqs, aws["ORDERS_QUEUE_URL"], wait_seconds=1)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        fake.wait_for(20, "/slow-lane", timeout=120)  # 4 s when idle; a loaded CI machine takes longer
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors
    arrivals = sorted(r.received_at for r in fake.requests("/slow-lane"))
    assert len(arrivals) == 20, "over the limit a delivery waits; it does not fail"
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert busiest <= 5, f"{busiest} requests within one second"
    assert {delivery(api, order_id, "limited")["status"] for order_id in orders} == {"delivered"}


def register_behind_slow_token(api: Api, fake: FakeIntegrator, path: str) -> None:
    """A rate-limited OAuth2 integrator whose token endpoint takes longer (0.5 s) than a slot's margin (0.2 s).
    The token is fetched after the slot is reserved, so each fetch holds its call past the slot."""
    fake.oauth2_token_endpoint("/token", client_id="cid", client_secret="csecret-123456", delay=0.5)
    oauth = {
        "type": "oauth2_client_credentials",
        "token_url": fake.url("/token"),
        "client_id": "cid",
        "client_secret": "csecret-123456",
    }
    register(api, "limited", fake.url(path), auth=oauth, max_requests_per_second=5)


def test_a_call_held_up_past_its_rate_slot_is_not_sent_until_it_has_a_fresh_one(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    # A call that starts after its slot could land within a second of that slot's next user.
    register_behind_slow_token(api, fake, "/slow-token")
    order_id = new_order(api)
    with captured_logs() as logs:
        drain(app, sqs, aws["ORDERS_QUEUE_URL"], settle_seconds=3)  # the re-queued job waits up to 1 s

    assert "send slot missed" in logs.getvalue()
    assert len(fake.requests("/token")) == 1, "the token fetched for the missed slot is used by the next try"
    assert len(fake.requests("/slow-token")) == 1, "the late call was not sent; the next try was, once"
    state = delivery(api, order_id, "limited")
    assert (state["status"], state["attempts"]) == ("delivered", 1), "a missed slot spends no attempt"


def test_a_token_refresh_re_send_needs_a_slot_of_its_own(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    register_behind_slow_token(api, fake, "/refused-once")
    fake.script("/refused-once", Reply(401), Reply(200, json={}))
    order_id = new_order(api)
    with captured_logs() as logs:
        drain(app, sqs, aws["ORDERS_QUEUE_URL"], settle_seconds=3)

    # Try 1 misses its slot fetching the first token; try 2 is refused (401), and its re-send, held up by the
    # second token fetch, is not sent on try 2's slot; try 3 sends with the fresh token.
    assert logs.getvalue().count("send slot missed") == 2
    used = [r.headers["authorization"].split()[1] for r in fake.requests("/refused-once")]
    assert len(used) == 2 and used[1] == fake.valid_tokens[1], "one re-send, with the fresh token"
    assert len(fake.requests("/token")) == 2
    state = delivery(api, order_id, "limited")
    assert (state["status"], state["attempts"]) == ("delivered", 1)


def test_health_counts_what_the_integrator_saw(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any
) -> None:
    configure(DISPATCH_MAX_ATTEMPTS="1", CIRCUIT_FAILURE_THRESHOLD="50")
    fake.script("/p", Reply(500), Reply(200, json={}), Reply(503), Reply(200, json={}), Reply(200, json={}))
    fake.default("/p", Reply(200, json={}))
    register(api, "partner", fake.url("/p"))
    for _ in range(7):
        new_order(api)
        drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    seen = fake.requests("/p")
    report = health(api, "partner", minutes=5)
    window = report["window"]
    assert window["minutes"] == 5
    assert window["attempts"] == len(seen) == 7
    assert window["delivered"] == 5 and window["failed"] == 2
    assert window["success_rate"] == pytest.approx(5 / 7, abs=1e-3)
    assert window["p50_ms"] is not None and window["p95_ms"] >= window["p50_ms"]
    assert report["circuit"] == "closed" and report["waiting"] == 0 and report["last_error"] == "HTTP 503"


def test_health_needs_an_admin_and_a_known_integrator(api: Api, seller_token: str) -> None:
    assert api.get("/api/v1/integrators/ghost/health").status_code == 404
    assert api.as_(seller_token).get("/api/v1/integrators/ghost/health").status_code == 403
    register(api, "quiet", "http://127.0.0.1:9/x")
    assert api.get("/api/v1/integrators/quiet/health?minutes=0").status_code == 422
    quiet = health(api, "quiet", minutes=1440)
    assert quiet["circuit"] == "closed" and quiet["window"]["attempts"] == 0 and quiet["window"]["p95_ms"] is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_orders_events_reach_a_flapping_integrator_in_order(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any, later: Any, seed: int
) -> None:
    """Property, over random outages and random create / update / cancel sequences: what an integrator accepts for
    an order starts with `order.created`, nothing follows `order.cancelled`, and an order it never accepted is
    never cancelled at it."""
    import random

    configure(CIRCUIT_FAILURE_THRESHOLD="2", CIRCUIT_COOLDOWN_SECONDS="900", DISPATCH_RETRY_DELAYS="0")
    rng = random.Random(seed)
    fake.default("/p", Reply(200, json={}))
    register(api, "p", fake.url("/p"))
    orders: list[str] = []
    down = False
    accepted: list[Any] = []  # requests the integrator answered 2xx

    def settle() -> None:
        seen = len(fake.requests("/p"))
        drain(app, sqs, aws["ORDERS_QUEUE_URL"])
        if not down:
            accepted.extend(fake.requests("/p")[seen:])

    def recover() -> None:
        fake.default("/p", Reply(200, json={}))
        later(901)
        probe_now(sqs, aws, "p")
        settle()

    for _ in range(14):
        step = rng.choice(["create", "create", "update", "cancel", "outage", "outage"])
        if step == "create" and len(orders) < 4:
            orders.append(new_order(api, user_id=f"u-{len(orders)}"))
        elif step == "update" and orders:
            api.patch(f"{ORDERS}/{rng.choice(orders)}", {"order": {"user_note": f"note {rng.random():.3f}"}})
        elif step == "cancel" and orders:
            api.delete(f"{ORDERS}/{rng.choice(orders)}")
        elif step == "outage":
            down = not down
            if down:
                fake.default("/p", Reply(503))
            else:
                recover()
        settle()
    if down:
        down = False
        recover()
    settle()

    cancelled = {o for o in orders if api.get(f"{ORDERS}/{o}").json_body["status"] == "cancelled"}
    assert_in_order(orders, cancelled, accepted, fake.requests("/p"))


def assert_in_order(orders: list[str], cancelled: set[str], accepted: list[Any], received: list[Any]) -> None:
    def order_of(request: Any) -> str:
        return str(request.json()["order"]["id"])

    for order_id in orders:
        events = [r.headers["x-order-event"] for r in accepted if order_of(r) == order_id]
        if not events:
            assert order_id in cancelled, f"{order_id} never reached the integrator"
            continue
        assert events[0] == "order.created" and events.count("order.created") == 1, events
        if "order.cancelled" in events:
            assert events.index("order.cancelled") == len(events) - 1, events
    created = {order_of(r) for r in accepted if r.headers["x-order-event"] == "order.created"}
    cancelled = {order_of(r) for r in received if r.headers["x-order-event"] == "order.cancelled"}
    assert cancelled <= created, "a cancel went to an integrator that never accepted the order"


@pytest.mark.parametrize("waiting", [10, 40])
def test_waiting_costs_nothing_per_delivery_and_no_scan(
    api: Api,
    app: Any,
    sqs: Any,
    aws: dict[str, str],
    fake: FakeIntegrator,
    configure: Any,
    later: Any,
    aws_calls: list[tuple[str, str, str]],
    waiting: int,
) -> None:
    """What an hour of waiting costs: the sweeper's minutes and a failed probe every cool-down. The requests do
    not grow with the number of waiting deliveries (10 or 40 here, 10,000 in production), and none is a Scan of
    deliveries: each waiting delivery costs one write when it starts waiting and one queue message when it
    resumes, nothing in between."""
    from chalicelib.dispatch.waiting import sweep

    configure(CIRCUIT_FAILURE_THRESHOLD="1", CIRCUIT_COOLDOWN_SECONDS="900", DISPATCH_RETRY_DELAYS="3600")
    fake.default("/down", Reply(503))
    register(api, "down", fake.url("/down"))
    order_ids = [new_order(api, user_id=f"u-{n}") for n in range(waiting + 1)]
    batches = drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert not [b for b in batches if b.failed_ids or b.crashed], batches
    statuses = Counter(delivery(api, order_id, "down")["status"] for order_id in order_ids)
    assert statuses == {"retrying": 1, "waiting": waiting}, "the first call failed and opened it; all others wait"
    assert health(api, "down")["waiting"] == waiting

    aws_calls.clear()
    for _ in range(15):  # a quarter of an hour of sweeper minutes
        later(60)
        sweep()
    later(900)
    probe_now(sqs, aws, "down")
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    scanned = {table for service, operation, table in aws_calls if operation == "Scan"}
    assert scanned == {aws["INTEGRATORS_TABLE"]}, "the small integrators table only, never the deliveries"
    sent = sum(1 for service, operation, _ in aws_calls if operation == "SendMessage")
    assert sent <= 3, "the probe and its next timer, not a message per waiting delivery"
    assert len(aws_calls) < 120, f"{len(aws_calls)} requests for {waiting} waiting deliveries"
    assert len(fake.requests("/down")) == 2, "the first failure, then one probe"


def test_a_slow_integrator_does_not_hold_back_the_others(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any
) -> None:
    """One batch, one integrator that never answers within its timeout: the others' deliveries all go out while
    its first call is still hanging, so the batch takes about one timeout, never the sum of them."""
    from tests.support.fake_integrator import Hang

    configure(DISPATCH_RETRY_DELAYS="3600", CIRCUIT_FAILURE_THRESHOLD="50")
    fake.default("/slow", Hang(7))
    fake.default("/a", Reply(200, json={}))
    fake.default("/b", Reply(200, json={}))
    register(api, "slow", fake.url("/slow"), timeout_seconds=5)  # wide enough for a busy CI machine
    register(api, "a", fake.url("/a"))
    register(api, "b", fake.url("/b"))
    for _ in range(10):
        new_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    slow = sorted(r.received_at for r in fake.requests("/slow"))
    fast = sorted(r.received_at for r in fake.requests("/a") + fake.requests("/b"))
    assert len(fast) == 20 and len(slow) == 10
    assert fast[-1] < slow[0] + 5, "every fast delivery was sent before the slow one's first call timed out"
    assert slow[-1] < slow[0] + 5, "the slow integrator's calls overlap: the batch waits one timeout, not ten"


def job(order_id: str, attempt: int) -> Any:
    """A delivery job for `down` as the dispatcher queues it (a retry, or a late duplicate of one)."""
    from chalicelib.db import integrators
    from chalicelib.domain.delivery import webhook_id
    from chalicelib.messages import DeliveryJob

    webhook = webhook_id(order_id, "order.created", 1, "down")
    registered = integrators.get("down")
    return DeliveryJob(
        order_id=order_id,
        integrator="down",
        event="order.created",
        version=1,
        attempt=attempt,
        webhook_id=webhook,
        registration_id=registered.registration_id if registered else None,
    )


def test_a_late_duplicate_never_replaces_the_later_attempt_that_waits_and_the_probe_gets_through(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any, later: Any
) -> None:
    """Found by the soak: a duplicate of attempt 1 parked over the waiting attempt 2; resumed as the probe, it was a
    replay of an attempt that had run, so nothing reported back and the circuit stayed half-open for good."""
    configure(CIRCUIT_FAILURE_THRESHOLD="1", CIRCUIT_COOLDOWN_SECONDS="30", DISPATCH_RETRY_DELAYS="60")
    fake.default("/down", Reply(503))
    register(api, "down", fake.url("/down"))
    new_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])  # fails and opens the circuit
    order_id = new_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])  # waits
    # Enabling again resumes the waiting job: its attempt 1 runs as a queued job, fails, opens the circuit again.
    assert api.patch("/api/v1/integrators/down", {"enabled": False}).status_code == 200
    assert api.patch("/api/v1/integrators/down", {"enabled": True}).status_code == 200
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert delivery(api, order_id, "down")["attempts"] == 1 and health(api, "down")["circuit"] == "open"
    queue_job = job(order_id, attempt=2).model_dump_json()
    sqs.send_message(
        QueueUrl=aws["ORDERS_QUEUE_URL"], MessageBody=queue_job
    )  # its retry arrives: the circuit is open, it waits
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    # A late duplicate of attempt 1 (a second drain's copy) read the row before attempt 2 waited, then sat at the
    # in-flight gate; now it finds the circuit open and parks itself.
    from chalicelib.dispatch import waiting

    waiting.park(job(order_id, attempt=1), until=None, reason="circuit open")
    assert delivery(api, order_id, "down")["status"] == "waiting"

    fake.default("/down", Reply(200, json={}))
    later(31)
    probe_now(sqs, aws, "down")
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert delivery(api, order_id, "down")["status"] == "delivered"
    assert health(api, "down")["circuit"] == "closed"
    assert len(fake.requests("/down")) == 3, "the first order, then attempts 1 and 2 of this one: nothing replayed"


def test_a_probe_that_never_reaches_the_integrator_hands_the_probe_on(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any, later: Any
) -> None:
    """The oldest waiting delivery becomes the probe; if its order was cancelled meanwhile nothing is sent, and the
    next waiting delivery must probe at once, not after the probe's lease."""
    configure(CIRCUIT_FAILURE_THRESHOLD="1", CIRCUIT_COOLDOWN_SECONDS="30", DISPATCH_RETRY_DELAYS="3600")
    fake.default("/down", Reply(503))
    register(api, "down", fake.url("/down"))
    opener = new_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])  # fails, opens the circuit
    first, second = new_order(api), new_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert [delivery(api, o, "down")["status"] for o in (first, second)] == ["waiting", "waiting"]
    from chalicelib.db import orders as order_store
    from chalicelib.domain.order_status import OrderStatus

    # The first order is cancelled behind the dispatcher's back (its queued cancel event not yet handled).
    stored = order_store.get(first)
    assert stored is not None
    cancelled = stored.model_copy(update={"status": OrderStatus.CANCELLED, "version": stored.version + 1})
    order_store.replace(cancelled, stored.version)

    fake.default("/down", Reply(200, json={}))
    later(31)
    probe_now(sqs, aws, "down")
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert delivery(api, second, "down")["status"] == "delivered"
    assert health(api, "down")["circuit"] == "closed"
    assert opener
