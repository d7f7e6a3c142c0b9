"""Payload templates end to end: the API validates them, the dispatcher sends (and signs) what they yield over
real HTTP, a template that fails for one order fails only that delivery, and the preview shows what would be
sent without sending it."""

from __future__ import annotations

import base64
from typing import Any

import jmespath
import pytest
import standardwebhooks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import Api
from tests.support.aws import queue_messages
from tests.support.fake_integrator import FakeIntegrator
from tools.poller import drain
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"
INTEGRATORS = "/api/v1/integrators"
SECRET = "whsec_" + base64.b64encode(b"t" * 32).decode()
MINIMAL = "{ref: order.id, customer: user.name, lines: order.items[].{sku: id, qty: quantity}}"
TEMPLATES: dict[str, str | None] = {
    "seed": None,
    "minimal": MINIMAL,
    "computed": "{event: event, ref: order.id, units: sum(order.items[].quantity), skus: join(',', order.items[].id),"
    " note: order.user_note || 'none', many: order.items[?quantity > `2`].name, customer: to_string(user.phone)}",
    "courier": "{ref: order.id, pickup_address: {name: seller.name, lat: seller.lat, lng: seller.lng},"
    " dropoff: {lat: user.lat, lng: user.lng}, placed_at: order.datetime, zone: order.timezone}",
}
# Works for the sample order (it has a phone) but not for an order without one: starts_with(null, ...) is a type error.
NEEDS_PHONE = "{ref: order.id, international: starts_with(user.phone, '+')}"


def register(api: Api, name: str, url: str, template: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "url": url, "auth": {"type": "hmac", "secret": SECRET}, "timeout_seconds": 1, **extra}
    if template is not None:
        body["payload_template"] = template
    response = api.post(INTEGRATORS, body)
    assert response.status_code == 201, response.body
    return dict(response.json_body)


def create_order(api: Api, body: dict[str, Any]) -> str:
    response = api.post(ORDERS, body)
    assert response.status_code == 201, response.body
    return str(response.json_body["id"])


def seed_document(order_id: str, body: dict[str, Any], event: str = "order.created") -> dict[str, Any]:
    """What a template is evaluated over, built from the order as it was posted (not from what the service
    stored), so a test cannot agree with a wrong payload."""
    user = {"phone": None, "email": None, **body["user"]}
    seller = {"phone": None, "email": None, **body["seller"]}
    return {"event": event, "user": user, "seller": seller, "order": {"id": order_id, **body["order"]}}


def attempts(api: Api, order_id: str) -> list[dict[str, Any]]:
    return list(api.get(f"{ORDERS}/{order_id}/deliveries").json_body["attempts"])


def states(api: Api, order_id: str) -> dict[str, dict[str, Any]]:
    return {d["integrator"]: d for d in api.get(f"{ORDERS}/{order_id}").json_body["deliveries"]}


def verified(request: Any) -> Any:
    """The body as the Standard Webhooks reference library accepts it (raises when the signature is wrong)."""
    return standardwebhooks.Webhook(SECRET).verify(request.body, dict(request.headers.items()))


# --- random orders through every template ------------------------------------------------------------------------

text = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=24).map(str.strip).filter(bool)
identifier = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,15}", fullmatch=True)
coordinate = st.floats(min_value=-89.9, max_value=89.9, allow_nan=False).map(lambda value: round(value, 5))
party = st.fixed_dictionaries(
    {"id": identifier, "name": text, "lat": coordinate, "lng": coordinate},
    optional={
        "phone": st.from_regex(r"\+?[0-9]{6,14}", fullmatch=True),
        "email": st.from_regex(r"[a-z0-9]{1,10}@[a-z]{1,10}\.[a-z]{2,3}", fullmatch=True),
    },
)
item = st.fixed_dictionaries({"id": identifier, "name": text, "quantity": st.integers(min_value=1, max_value=50)})
orders = st.fixed_dictionaries(
    {
        "user": party,
        "seller": party,
        "order": st.fixed_dictionaries(
            {
                "datetime": st.sampled_from(["2026-11-24T10:00:00+02:00", "2026-12-31T23:59:59-05:00"]),
                "timezone": st.sampled_from(["Asia/Amman", "UTC", "America/New_York"]),
                "user_note": st.one_of(st.just(""), text),
                "items": st.lists(item, min_size=1, max_size=4),
            }
        ),
    }
)


def test_every_integrator_receives_what_its_template_yields_signed(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    for name, template in TEMPLATES.items():
        register(api, name, fake.url(f"/{name}"), template)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=orders)
    def delivered_as_templated(body: dict[str, Any]) -> None:
        order_id = create_order(api, body)
        drain(app, sqs, aws["ORDERS_QUEUE_URL"])
        document = seed_document(order_id, body)
        for name, template in TEMPLATES.items():
            sent = fake.requests(f"/{name}")[-1]
            seed = {key: document[key] for key in ("user", "seller", "order")}
            expected = jmespath.search(template, document) if template else seed
            assert verified(sent) == expected, name
            assert sent.headers["x-order-event"] == "order.created"

    delivered_as_templated()


def test_the_example_template_sends_no_phone_email_or_location(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    created = register(api, "loyalty", fake.url("/loyalty"), MINIMAL)
    assert created["payload_template"] == MINIMAL and created["payload_template_version"] == 1
    order_id = create_order(api, order_body())
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    sent = fake.requests("/loyalty")[0]
    assert sent.json() == {"ref": order_id, "customer": "Lina", "lines": [{"sku": "i-1", "qty": 2}]}
    for personal in (b"+962", b"@example.com", b"lat", b"lng", b"31.9", b"35.9"):
        assert personal not in sent.body
    (attempt,) = attempts(api, order_id)
    assert attempt["outcome"] == "delivered" and attempt["payload_template_version"] == 1


# --- validation ----------------------------------------------------------------------------------------------------

LONG_VALID = "{" + ", ".join(f"k{i}: order.id" for i in range(400)) + "}"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{ref: }", 'Parse error at column 6, token "}"'),
        ("{ref: order.id", "Incomplete expression"),
        ("", "cannot be empty"),
        ("order.items", "must yield a JSON object; it yielded an array"),
        ("user.name", "it yielded a string"),
        ("nothing.here", "it yielded null"),
        ("{n: nope(order.id)}", "Unknown function: nope()"),
        ("{n: abs(user.name)}", "In function abs(), invalid type"),
        (LONG_VALID, "at most 4096 characters"),
    ],
)
def test_a_template_that_cannot_shape_the_sample_order_is_refused(
    api: Api, fake: FakeIntegrator, template: str, message: str
) -> None:
    assert len(LONG_VALID) > 4096
    body = {"name": "partner", "url": fake.url(), "auth": {"type": "none"}, "payload_template": template}
    created = api.post(INTEGRATORS, body)
    assert created.status_code == 422, created.body
    (detail,) = created.json_body["error"]["details"]
    assert detail["field"] == "payload_template" and message in detail["message"]
    assert api.get(f"{INTEGRATORS}/partner").status_code == 404

    register(api, "partner", fake.url(), MINIMAL)
    changed = api.patch(f"{INTEGRATORS}/partner", {"payload_template": template})
    assert changed.status_code == 422
    assert changed.json_body["error"]["details"][0]["field"] == "payload_template"
    stored = api.get(f"{INTEGRATORS}/partner").json_body
    assert stored["payload_template"] == MINIMAL and stored["payload_template_version"] == 1

    previewed = api.post(f"{INTEGRATORS}/partner/preview", {"payload_template": template})
    assert previewed.status_code == 422 and message in previewed.json_body["error"]["details"][0]["message"]


def test_template_versions_count_changes_and_null_goes_back_to_the_seed_shape(api: Api, fake: FakeIntegrator) -> None:
    register(api, "partner", fake.url())
    path = f"{INTEGRATORS}/partner"
    assert "payload_template" not in api.get(path).json_body
    assert api.patch(path, {"payload_template": MINIMAL}).json_body["payload_template_version"] == 1
    assert api.patch(path, {"payload_template": MINIMAL}).json_body["payload_template_version"] == 1  # unchanged
    assert api.patch(path, {"enabled": True}).json_body["payload_template"] == MINIMAL  # absent: kept
    removed = api.patch(path, {"payload_template": None}).json_body
    assert "payload_template" not in removed and removed["payload_template_version"] == 2
    exactly = "{ref: order.id}".ljust(4096)  # the longest template allowed
    assert api.patch(path, {"payload_template": exactly}).json_body["payload_template_version"] == 3


# --- a template that fails for one order ----------------------------------------------------------------------------


def test_a_template_failing_for_one_order_fails_that_delivery_at_once_and_replays_once_fixed(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    register(api, "strict", fake.url("/strict"), NEEDS_PHONE)
    register(api, "plain", fake.url("/plain"))
    no_phone = order_body()
    del no_phone["user"]["phone"]
    failing = create_order(api, no_phone)
    fine = create_order(api, order_body())
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])

    assert queue_messages(aws["ORDERS_QUEUE_URL"]) == [], "nothing queued for a retry"
    assert [r.json()["ref"] for r in fake.requests("/strict")] == [fine]
    assert {r.json()["order"]["id"] for r in fake.requests("/plain")} == {failing, fine}
    state = states(api, failing)
    assert state["strict"]["status"] == "failed" and state["strict"]["attempts"] == 1
    assert state["plain"]["status"] == "delivered" and states(api, fine)["strict"]["status"] == "delivered"
    log = {a["integrator"]: a for a in attempts(api, failing)}
    assert log["strict"]["outcome"] == "failed" and log["strict"]["error_class"] == "payload_template_error"
    # The reason is jmespath's, for the admin who wrote the template; the error is the service's own words.
    assert "starts_with()" in log["strict"]["detail"] and log["strict"]["status_code"] is None
    assert log["strict"]["error"] == state["strict"]["last_error"] == "the payload template failed for this order"
    assert log["strict"]["payload_template_version"] == 1 and log["plain"]["payload_template_version"] is None
    health = api.get(f"{INTEGRATORS}/strict/health").json_body
    assert health["window"]["attempts"] == 1 and health["window"]["failed"] == 0, "nothing sent, nothing counted"
    assert health["circuit"] == "closed" and health["consecutive_failures"] == 0

    fixed = "{ref: order.id, international: starts_with(user.phone || '', '+')}"
    assert api.patch(f"{INTEGRATORS}/strict", {"payload_template": fixed}).status_code == 200
    assert api.post(f"{ORDERS}/{failing}/deliveries/strict/retry").status_code == 202
    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert verified(fake.requests("/strict")[-1]) == {"ref": failing, "international": False}
    assert states(api, failing)["strict"]["status"] == "delivered"
    retried = [a for a in attempts(api, failing) if a["integrator"] == "strict" and a["outcome"] == "delivered"]
    assert [a["payload_template_version"] for a in retried] == [2]


# --- preview ---------------------------------------------------------------------------------------------------------


def test_preview_shows_exactly_what_is_then_sent_and_sends_nothing(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    courier = str(TEMPLATES["courier"])
    register(api, "courier", fake.url("/courier"), courier)
    body = order_body(user_note="leave at the door")
    order_id = create_order(api, body)

    shown = api.post(f"{INTEGRATORS}/courier/preview", {"order_id": order_id})
    assert shown.status_code == 200, shown.body
    preview = shown.json_body
    assert fake.requests() == [], "a preview sends nothing"
    assert preview["event"] == "order.created"
    assert preview["body"] == jmespath.search(courier, seed_document(order_id, body))

    drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    (sent,) = fake.requests("/courier")
    assert sent.json() == preview["body"]
    for name in ("webhook-id", "x-order-event", "content-type", "user-agent"):
        assert preview["headers"][_key(preview["headers"], name)] == sent.headers[name]
    # The preview signed the very bytes the dispatcher sent: its signature verifies over them.
    assert standardwebhooks.Webhook(SECRET).verify(sent.body, preview["headers"]) == preview["body"]


def _key(headers: dict[str, str], name: str) -> str:
    return next(key for key in headers if key.lower() == name)


def test_preview_tries_a_candidate_template_on_the_sample_order_without_saving_it(
    api: Api, fake: FakeIntegrator
) -> None:
    register(api, "partner", fake.url(), MINIMAL)
    path = f"{INTEGRATORS}/partner/preview"
    sample = api.post(path, raw=b"")
    assert sample.status_code == 200
    assert sample.json_body["body"] == {"ref": "ord_SAMPLE", "customer": "Lina", "lines": [{"sku": "i-1", "qty": 2}]}
    candidate = api.post(path, {"payload_template": "{ref: order.id, event: event}", "event": "order.cancelled"})
    assert candidate.json_body == {**candidate.json_body, "event": "order.cancelled"}
    assert candidate.json_body["body"] == {"ref": "ord_SAMPLE", "event": "order.cancelled"}
    seed = api.post(path, {"payload_template": None}).json_body["body"]
    assert set(seed) == {"user", "seller", "order"} and seed["user"]["phone"] == "+962790000000"
    assert api.get(f"{INTEGRATORS}/partner").json_body["payload_template"] == MINIMAL
    assert fake.requests() == []


def test_preview_masks_credentials_and_fetches_no_token(api: Api, fake: FakeIntegrator) -> None:
    fake.oauth2_token_endpoint(client_id="cid", client_secret="client-secret-1234")
    auths = {
        "keyed": {"type": "api_key", "header": "X-Partner-Key", "key": "partner-key-abcd1234"},
        "bearer": {"type": "bearer", "token": "bearer-token-wxyz9876"},
        "oauth": {
            "type": "oauth2_client_credentials",
            "token_url": fake.url("/oauth/token"),
            "client_id": "cid",
            "client_secret": "client-secret-1234",
        },
    }
    for name, auth in auths.items():
        assert api.post(INTEGRATORS, {"name": name, "url": fake.url(), "auth": auth}).status_code == 201
    headers = {name: api.post(f"{INTEGRATORS}/{name}/preview").json_body["headers"] for name in auths}
    assert headers["keyed"]["X-Partner-Key"] == "****1234"
    assert headers["bearer"]["Authorization"] == "Bearer ****9876"
    assert headers["oauth"]["Authorization"] == "Bearer ****"
    assert fake.requests() == [], "no token was fetched, nothing was sent"


def test_preview_refuses_bad_requests(api: Api, fake: FakeIntegrator, seller_token: str) -> None:
    register(api, "strict", fake.url(), NEEDS_PHONE)
    no_phone = order_body()
    del no_phone["user"]["phone"]
    order_id = create_order(api, no_phone)
    path = f"{INTEGRATORS}/strict/preview"

    assert api.post(path, {"order_id": "ord_NOPE"}).status_code == 404
    assert api.post(f"{INTEGRATORS}/nobody/preview").status_code == 404
    malformed = api.post(path, {"order_id": "../etc"})
    assert malformed.status_code == 422 and malformed.json_body["error"]["details"][0]["field"] == "order_id"
    assert api.post(path, {"order_ref": order_id}).status_code == 422
    assert api.post(path, raw=b"{not json").status_code == 400
    assert api.post(path, {"order_id": order_id}, token=seller_token).status_code == 403
    fails = api.post(path, {"order_id": order_id})
    assert fails.status_code == 422
    (detail,) = fails.json_body["error"]["details"]
    assert detail["field"] == "payload_template" and "starts_with()" in detail["message"]
    assert fake.requests() == []


def test_openapi_documents_the_template_and_the_preview(api: Api) -> None:
    document = api.get("/api/v1/openapi.json").json_body
    operation = document["paths"]["/api/v1/integrators/{name}/preview"]["post"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("PayloadPreview")
    schemas = document["components"]["schemas"]
    assert {"order_id", "event", "payload_template"} <= set(schemas["PreviewRequest"]["properties"])
    assert "payload_template" in schemas["CreateIntegratorRequest"]["properties"]
