"""The integrator portal through its routes: links open once into a scoped session, a session sees only its own
integrator's deliveries (each attempt as sent and answered), and can retry, change its endpoint, rotate its
callback secret and send a test event only with the scopes it was given."""

from __future__ import annotations

import base64
import secrets
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import standardwebhooks

from tests.support.api import Api
from tests.support.fake_integrator import FakeIntegrator, Reply
from tools.poller import drain
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"
INTEGRATORS = "/api/v1/integrators"
PORTAL = "/api/v1/portal"
SECRET = "whsec_" + base64.b64encode(b"p" * 32).decode()


def register(api: Api, name: str, url: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "url": url, "auth": {"type": "hmac", "secret": SECRET}, "timeout_seconds": 1, **extra}
    response = api.post(INTEGRATORS, body)
    assert response.status_code == 201, response.body
    return dict(response.json_body)


def link(api: Api, integrator: str, *scopes: str) -> str:
    response = api.post(f"{INTEGRATORS}/{integrator}/portal-links", {"scopes": list(scopes)})
    assert response.status_code == 201, response.body
    url = str(response.json_body["url"])
    assert "/portal#code=" in url
    return url.split("#code=", 1)[1]


def session(api: Api, integrator: str, *scopes: str) -> Api:
    opened = api.post(f"{PORTAL}/sessions", {"code": link(api, integrator, *scopes)}, token="")
    assert opened.status_code == 201, opened.body
    return api.as_(str(opened.json_body["token"]))


def create_order(api: Api, seller: str = "s-1") -> str:
    body = order_body()
    body["seller"]["id"] = seller
    response = api.post(ORDERS, body)
    assert response.status_code == 201, response.body
    return str(response.json_body["id"])


# --- access --------------------------------------------------------------------------------------------------------


def test_a_link_opens_once_into_a_session_of_its_integrator_and_scopes(api: Api, fake: FakeIntegrator) -> None:
    register(api, "delivery", fake.url())
    code = link(api, "delivery", "retry")

    opened = api.post(f"{PORTAL}/sessions", {"code": code}, token="")
    assert opened.status_code == 201
    assert opened.json_body["integrator"] == "delivery" and opened.json_body["scopes"] == ["retry", "view"]
    again = api.post(f"{PORTAL}/sessions", {"code": code}, token="")
    assert again.status_code == 401, "a link opens once"

    portal = api.as_(opened.json_body["token"])
    me = portal.get(f"{PORTAL}/session").json_body
    assert me["integrator"] == "delivery" and me["scopes"] == ["retry", "view"]


def test_portal_and_api_tokens_do_not_open_each_other(api: Api, fake: FakeIntegrator) -> None:
    register(api, "delivery", fake.url())
    portal = session(api, "delivery", "retry", "manage_endpoint", "rotate_secret")
    assert portal.get(ORDERS).status_code in (401, 403), "a portal session is no API token"
    assert portal.get(f"{INTEGRATORS}/delivery").status_code in (401, 403)
    assert api.get(f"{PORTAL}/deliveries").status_code == 401, "the admin token is no portal session"
    assert api.get(f"{PORTAL}/deliveries", token="").status_code == 401
    tokens = api.get("/api/v1/tokens").json_body["items"]
    assert all(not str(token["id"]).startswith(("pln_", "prt_")) for token in tokens), "links are not API tokens"


def test_only_an_admin_issues_links(api: Api, fake: FakeIntegrator, seller_token: str) -> None:
    register(api, "delivery", fake.url())
    assert api.post(f"{INTEGRATORS}/delivery/portal-links", {}, token=seller_token).status_code == 403
    assert api.post(f"{INTEGRATORS}/nobody/portal-links", {}).status_code == 404
    bad = api.post(f"{INTEGRATORS}/delivery/portal-links", {"scopes": ["admin"]})
    assert bad.status_code == 422 and bad.json_body["error"]["details"][0]["field"].startswith("scopes")


def test_a_view_session_is_refused_retry_rotate_and_endpoint_changes(api: Api, fake: FakeIntegrator) -> None:
    register(api, "delivery", fake.url())
    viewer = session(api, "delivery")
    since = {"since": "2026-01-01T00:00:00Z", "until": "2030-01-01T00:00:00Z"}
    assert viewer.post(f"{PORTAL}/deliveries/ord_X/retry").status_code == 403
    assert viewer.post(f"{PORTAL}/replay", since).status_code == 403
    assert viewer.post(f"{PORTAL}/callback-secret").status_code == 403
    assert viewer.patch(f"{PORTAL}/endpoint", {"url": fake.url("/elsewhere")}).status_code == 403
    assert api.get(f"{INTEGRATORS}/delivery").json_body["url"] == fake.url(), "nothing changed"
    assert viewer.get(f"{PORTAL}/health").status_code == 200


def test_a_link_not_opened_in_time_an_expired_or_revoked_session_is_refused(
    api: Api, fake: FakeIntegrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.domain import clock

    register(api, "delivery", fake.url())
    first = session(api, "delivery")
    second = session(api, "delivery")
    late_code = link(api, "delivery")

    revoked = api.delete(f"{INTEGRATORS}/delivery/portal-sessions")
    assert revoked.status_code == 200
    assert first.get(f"{PORTAL}/deliveries").status_code == 401
    assert second.get(f"{PORTAL}/session").status_code == 401
    assert api.post(f"{PORTAL}/sessions", {"code": late_code}, token="").status_code == 401, "unopened links too"

    after = session(api, "delivery")
    assert after.get(f"{PORTAL}/session").status_code == 200, "a link issued after the revocation works"
    pending = link(api, "delivery")
    real = clock.utcnow
    monkeypatch.setattr(clock, "utcnow", lambda: real() + timedelta(minutes=16))
    assert api.post(f"{PORTAL}/sessions", {"code": pending}, token="").status_code == 401, "15 minutes to open"
    monkeypatch.setattr(clock, "utcnow", lambda: real() + timedelta(hours=8, seconds=1))
    assert after.get(f"{PORTAL}/session").status_code == 401, "a session lasts 8 hours"


# --- isolation -----------------------------------------------------------------------------------------------------


def test_a_session_sees_only_deliveries_to_its_own_integrator(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    register(api, "alpha", fake.url("/alpha"), seller_ids=["s-1"])
    register(api, "beta", fake.url("/beta"), seller_ids=["s-2"])
    for_alpha = create_order(api, "s-1")
    for_beta = create_order(api, "s-2")
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    alpha = session(api, "alpha", "retry")
    beta = session(api, "beta")

    listed = [item["order_id"] for item in alpha.get(f"{PORTAL}/deliveries").json_body["items"]]
    assert listed == [for_alpha]
    assert alpha.get(f"{PORTAL}/deliveries/{for_beta}").status_code == 404, "an order alpha never received"
    assert alpha.post(f"{PORTAL}/deliveries/{for_beta}/retry").status_code == 404
    assert alpha.get(f"{PORTAL}/deliveries/ord_nothing").status_code == 404
    assert [item["order_id"] for item in beta.get(f"{PORTAL}/deliveries").json_body["items"]] == [for_beta]

    seen = alpha.get(f"{PORTAL}/deliveries/{for_alpha}").json_body
    assert {attempt["webhook_id"] for attempt in seen["attempts"]} == {seen["webhook_id"]}
    text = str(seen)
    assert "beta" not in text and for_beta not in text


def test_a_template_limits_what_the_portal_shows_of_an_order(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    register(api, "loyalty", fake.url("/loyalty"), payload_template="{ref: order.id, customer: user.name}")
    order_id = create_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    portal = session(api, "loyalty")
    seen = portal.get(f"{PORTAL}/deliveries/{order_id}").json_body
    (attempt,) = seen["attempts"]
    assert attempt["request_body"] == fake.requests("/loyalty")[0].body.decode()
    for personal in ("+962", "@example.com", '"lat"', "'lat'", "31.9", "35.9", "Falafel"):
        assert personal not in str(seen), personal


# --- deliveries, retry, activity -----------------------------------------------------------------------------------


def test_a_failed_delivery_shows_each_attempt_as_sent_and_a_retry_lands(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any
) -> None:
    configure(DISPATCH_MAX_ATTEMPTS="1")
    body = {"name": "delivery", "url": fake.url(), "auth": {"type": "bearer", "token": "tok_very_secret_value"}}
    assert api.post(INTEGRATORS, {**body, "timeout_seconds": 1}).status_code == 201
    fake.script("/orders", Reply(503, body=b'{"error": "down for maintenance"}'))
    order_id = create_order(api)
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    portal = session(api, "delivery", "retry")

    failed = portal.get(f"{PORTAL}/deliveries?status=failed")
    items = failed.json_body["items"]
    assert [item["order_id"] for item in items] == [order_id] and items[0]["status"] == "failed"
    seen = portal.get(f"{PORTAL}/deliveries/{order_id}").json_body
    (attempt,) = seen["attempts"]
    sent = fake.requests("/orders")[0]
    assert attempt["status_code"] == 503 and attempt["error_class"] == "HTTPError"
    assert "down for maintenance" in attempt["response_body"]
    assert attempt["request_body"] == sent.body.decode(), "the body exactly as sent"
    assert attempt["request_headers"]["webhook-id"] == sent.headers["webhook-id"]
    assert attempt["request_headers"]["Authorization"] == "Bearer ****"
    assert "tok_very_secret_value" not in str(seen)
    assert attempt["latency_ms"] >= 0

    assert portal.post(f"{PORTAL}/deliveries/{order_id}/retry").status_code == 202
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    landed = portal.get(f"{PORTAL}/deliveries/{order_id}").json_body
    assert landed["status"] == "delivered" and [a["outcome"] for a in landed["attempts"]] == ["failed", "delivered"]
    assert portal.get(f"{PORTAL}/deliveries?status=failed").json_body["items"] == []

    activity = api.get(f"{INTEGRATORS}/delivery/portal-activity").json_body["items"]
    me = portal.get(f"{PORTAL}/session").json_body["session_id"]
    assert [(a["action"], a["session_id"], a["detail"]) for a in activity] == [("retry", me, {"order_id": order_id})]


def test_a_delivery_held_by_the_circuit_says_why_it_has_no_attempt(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, configure: Any
) -> None:
    from chalicelib.db import deliveries

    register(api, "delivery", fake.url())
    order_id = create_order(api)
    deliveries.park(
        order_id,
        "delivery",
        {"webhook_id": "msg_x", "attempt": 1, "event": "order.created"},
        until="2030-01-01T00:00:00.000Z",
        reason="circuit open",
        now="2026-12-03T10:00:00.000Z",
    )
    portal = session(api, "delivery")
    seen = portal.get(f"{PORTAL}/deliveries/{order_id}").json_body
    assert seen["status"] == "waiting" and seen["attempts"] == []
    assert "circuit open" in seen["why_no_attempt"] and "2030-01-01" in seen["why_no_attempt"]
    assert portal.get(f"{PORTAL}/deliveries?status=waiting").json_body["items"][0]["order_id"] == order_id


def test_the_list_pages_newest_first_across_shards_without_gaps(api: Api, fake: FakeIntegrator) -> None:
    from chalicelib.db import deliveries
    from chalicelib.domain.delivery import DeliveryState
    from chalicelib.domain.order import ulid_time

    def made_at(n: int) -> str:  # an order id as new_order_id makes it at 10:nn (a ULID: time, then randomness)
        return f"ord_{ulid_time(f'2026-12-01T10:{n:02d}:00.000Z')}{n:016d}"

    register(api, "delivery", fake.url())
    written = []
    for n in range(41):
        order_id = made_at(n)
        status = "failed" if n % 3 == 0 else "delivered"
        state = DeliveryState(
            order_id=order_id,
            integrator="delivery",
            status=status,
            event="order.created",
            webhook_id=f"msg_{n}",
            updated_at=f"2026-12-01T10:{n:02d}:00.000Z",
        )
        deliveries.put_state(state, None)
        written.append((order_id, status))
    portal = session(api, "delivery")

    def walk(query: str) -> list[str]:
        seen: list[str] = []
        cursor = None
        for _ in range(60):
            page = portal.get(f"{PORTAL}/deliveries?{query}" + (f"&cursor={cursor}" if cursor else "")).json_body
            seen += [item["order_id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen
        raise AssertionError("the cursor never ended")

    newest_first = [order_id for order_id, _ in reversed(written)]
    assert walk("limit=7") == newest_first
    assert walk("limit=1") == newest_first, "a page of one still moves on (the cursor's own row is not re-read)"
    assert walk("limit=5&status=failed") == [o for o, s in reversed(written) if s == "failed"]
    ranged = walk("limit=4&since=2026-12-01T10:10:00Z&until=2026-12-01T10:19:59Z")
    assert ranged == [made_at(n) for n in range(19, 9, -1)], "orders made in the range, newest first"
    assert portal.get(f"{PORTAL}/deliveries?cursor=nonsense").status_code == 422
    assert portal.get(f"{PORTAL}/deliveries?status=lost").status_code == 422
    assert portal.get(f"{PORTAL}/deliveries?since=yesterday").status_code == 422


def test_no_index_key_passes_1000_writes_per_second_at_2000_deliveries_per_second(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes to the `by_integrator` index per delivery, counted on moto's stream records (a changed key is a
    delete and a put, as DynamoDB bills it), times 2,000 deliveries in one second, over the busiest shard."""
    import boto3
    from moto.dynamodb.models import table as moto_table

    from chalicelib.db.deliveries import PORTAL_SHARDS

    boto3.client("dynamodb", region_name="us-east-1").update_table(
        TableName=aws["DELIVERIES_TABLE"],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    index_writes: Counter[str] = Counter()
    real_add = moto_table.StreamShard.add

    def key(image: Any) -> tuple[str, str] | None:
        if image is None or image.attrs.get("integrator_shard") is None:
            return None
        return str(image.attrs["integrator_shard"].value), str(image.attrs["integrator_sort"].value)

    def counting(self: Any, old: Any, new: Any) -> None:
        # A keys-only index is written when an item's entry appears, moves or goes: not when its key stays.
        before, after = key(old), key(new)
        if before != after:
            for entry in (before, after):
                if entry is not None:
                    index_writes[entry[0]] += 1
        real_add(self, old, new)

    monkeypatch.setattr(moto_table.StreamShard, "add", counting)
    register(api, "delivery", fake.url())
    orders = [create_order(api) for _ in range(6)]
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert len(fake.requests("/orders")) == len(orders)
    per_delivery = sum(index_writes.values()) / len(orders)
    print(f"by_integrator index writes per delivery: {per_delivery:.2f}")
    assert per_delivery == 1, "one index write per delivery: its row's creation"

    ids = [f"ord_{n:026d}" for n in range(2000)]
    busiest = max(Counter(zlib.crc32(i.encode()) % PORTAL_SHARDS for i in ids).values())
    assert busiest * per_delivery < 1000, (busiest, per_delivery)


# --- endpoint, secret, test event, catalog -------------------------------------------------------------------------


def test_endpoint_changes_follow_the_admin_rules(api: Api, fake: FakeIntegrator) -> None:
    register(api, "delivery", fake.url())
    manager = session(api, "delivery", "manage_endpoint")
    changed = manager.patch(
        f"{PORTAL}/endpoint", {"url": fake.url("/v2"), "events": ["order.created"], "timeout_seconds": 3}
    )
    assert changed.status_code == 200, changed.body
    assert api.get(f"{INTEGRATORS}/delivery").json_body["url"] == fake.url("/v2")
    refused = manager.patch(f"{PORTAL}/endpoint", {"url": "ftp://example.com/x"})
    assert refused.status_code == 422 and refused.json_body["error"]["details"][0]["field"] == "url"
    assert manager.patch(f"{PORTAL}/endpoint", {"auth": {"type": "none"}}).status_code == 422, (
        "only url, events, timeout"
    )
    assert manager.patch(f"{PORTAL}/endpoint", {"timeout_seconds": 99}).status_code == 422
    activity = api.get(f"{INTEGRATORS}/delivery/portal-activity").json_body["items"]
    assert activity[0]["action"] == "change_endpoint" and activity[0]["detail"]["url"] == fake.url("/v2")


def test_rotating_the_callback_secret_shows_the_new_one_once_and_keeps_the_old_one(
    api: Api, fake: FakeIntegrator
) -> None:
    created = register(api, "delivery", fake.url())
    old = created["callback_secret"]
    rotator = session(api, "delivery", "rotate_secret")
    rotated = rotator.post(f"{PORTAL}/callback-secret")
    assert rotated.status_code == 201
    new = rotated.json_body["callback_secret"]
    assert new.startswith("whsec_") and new != old
    assert new not in str(rotator.get(f"{PORTAL}/endpoint").json_body), "shown once"
    assert new not in str(api.get(f"{INTEGRATORS}/delivery").json_body)
    for secret in (new, old):
        body = b'{"order_id": "ord_none", "status": "accepted"}'
        answer = api.request("POST", "/api/v1/callbacks/delivery", raw=body, token="", headers=_signed(secret, body))
        assert answer.status_code == 404, (secret == new, answer.body)  # the signature passed; the order is unknown
    body = b'{"order_id": "ord_none", "status": "accepted"}'
    forged = _signed("whsec_" + base64.b64encode(b"x" * 32).decode(), body)
    assert api.request("POST", "/api/v1/callbacks/delivery", raw=body, token="", headers=forged).status_code == 401


def _signed(secret: str, body: bytes) -> dict[str, str]:
    now = datetime.now(tz=UTC)
    msg_id = "msg_" + secrets.token_hex(8)
    signature = standardwebhooks.Webhook(secret).sign(msg_id, now, body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}


def test_a_test_event_is_sent_signed_marked_and_listed_but_never_an_order(api: Api, fake: FakeIntegrator) -> None:
    register(api, "delivery", fake.url())
    portal = session(api, "delivery")
    sent = portal.post(f"{PORTAL}/test-events")
    assert sent.status_code == 201, sent.body
    answer = sent.json_body
    (request,) = fake.requests("/orders")
    assert request.headers["x-order-relay-test"] == "true"
    assert request.headers["x-order-event"] == "order.created"
    body = standardwebhooks.Webhook(SECRET).verify(request.body, dict(request.headers.items()))
    assert body["order"]["id"] == answer["order_id"] and answer["test"] is True
    assert answer["status"] == "delivered" and answer["attempts"][0]["test"] is True

    listed = portal.get(f"{PORTAL}/deliveries").json_body["items"]
    assert [(item["order_id"], item["test"]) for item in listed] == [(answer["order_id"], True)]
    assert api.get(f"{ORDERS}/{answer['order_id']}").status_code == 404
    assert api.get(ORDERS).json_body["items"] == []
    assert session(api, "delivery", "retry").post(f"{PORTAL}/deliveries/{answer['order_id']}/retry").status_code == 409


def test_the_catalog_shows_the_events_and_this_integrators_body_for_the_sample_order(
    api: Api, fake: FakeIntegrator
) -> None:
    register(api, "loyalty", fake.url(), payload_template="{ref: order.id, customer: user.name}")
    catalog = session(api, "loyalty").get(f"{PORTAL}/catalog").json_body
    assert {"order.created", "order.updated", "order.cancelled", "order.created.test"} <= {
        event["event"] for event in catalog["events"]
    }
    assert set(catalog["sample"]["body"]) == {"ref", "customer"}
    assert fake.requests() == [], "the catalog sends nothing"


def test_the_openapi_document_carries_the_webhooks_catalog(api: Api) -> None:
    document = api.get("/api/v1/openapi.json", token="").json_body
    webhooks = document["webhooks"]
    assert {"order.created", "order.updated", "order.cancelled", "order.created.test"} <= set(webhooks)
    created = webhooks["order.created"]["post"]
    headers = {param["name"] for param in created["parameters"]}
    assert {"webhook-id", "webhook-timestamp", "webhook-signature", "X-Order-Event", "Authorization"} <= headers
    schema = created["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["user", "seller", "order"]
    callback = document["components"]["schemas"]["CallbackRequest"]["properties"]["status"]
    assert "delivered" in callback["examples"]
    assert document["paths"]["/api/v1/portal/deliveries"]["get"]["security"] == [{"portalSession": []}]


def test_test_events_keep_to_the_integrators_rate_limit(api: Api, fake: FakeIntegrator) -> None:
    register(api, "delivery", fake.url(), max_requests_per_second=1)
    portal = session(api, "delivery")
    assert portal.post(f"{PORTAL}/test-events").status_code == 201
    again = portal.post(f"{PORTAL}/test-events")
    assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 1
    assert len(fake.requests("/orders")) == 1
