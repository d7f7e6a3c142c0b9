"""The Orders API through chalice.test.Client against moto: what a POS tablet or app sees."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.aws import queue_messages
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"


def create(api: Api, body: dict[str, Any] | None = None, **kw: Any) -> Any:
    response = api.post(ORDERS, body or order_body(), **kw)
    assert response.status_code == 201, response.body
    return response


# --- create ----------------------------------------------------------------------------------------------------


def test_create_returns_the_order_with_location_and_queues_an_event(api: Api, aws: dict[str, str]) -> None:
    response = create(api)
    order = response.json_body
    assert response.headers["Location"] == f"{ORDERS}/{order['id']}"
    assert order["id"].startswith("ord_") and order["status"] == "pending" and order["version"] == 1
    assert order["order"]["id"] == order["id"]
    assert order["order"]["items"] == [{"id": "i-1", "name": "Falafel wrap", "quantity": 2}]
    assert order["timeline"][0]["status"] == "pending"

    messages = queue_messages(aws["ORDERS_QUEUE_URL"])
    assert len(messages) == 1
    event = json.loads(messages[0]["Body"])
    assert event["kind"] == "order_event" and event["type"] == "order.created"
    assert event["order_id"] == order["id"] and event["version"] == 1 and event["correlation_id"]


def test_created_order_can_be_read_back(api: Api) -> None:
    order = create(api).json_body
    fetched = api.get(f"{ORDERS}/{order['id']}")
    assert fetched.status_code == 200
    assert fetched.json_body["user"] == order["user"] and fetched.json_body["deliveries"] == []
    assert fetched.headers["ETag"] == '"1"'


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["user"].pop("id"), "user.id"),
        (lambda b: b["user"].update(id=7), "user.id"),
        (lambda b: b["user"].update(lat=95), "user.lat"),
        (lambda b: b["seller"].update(lng="35.9"), "seller.lng"),
        (lambda b: b["order"]["items"][0].update(quantity=0), "order.items.0.quantity"),
        (lambda b: b["order"]["items"][0].update(quantity="2"), "order.items.0.quantity"),
        (lambda b: b["order"].update(items=[]), "order.items"),
        (lambda b: b["order"].update(datetime="tomorrow"), "order.datetime"),
        (lambda b: b["order"].update(datetime="2026-11-24T10:00:00"), "order.datetime"),
        (lambda b: b["order"].update(timezone="Mars/Olympus"), "order.timezone"),
        (lambda b: b["order"].update(id="mine"), "order.id"),
        (lambda b: b["user"].update(email="not-an-email"), "user.email"),
        (lambda b: b.update(extra=1), "extra"),
    ],
)
def test_invalid_fields_get_422_with_the_field_named(api: Api, mutate: Any, field: str) -> None:
    body = order_body()
    mutate(body)
    response = api.post(ORDERS, body)
    assert response.status_code == 422
    error = response.json_body["error"]
    assert error["code"] == "validation_error"
    assert field in [detail["field"] for detail in error["details"]]


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"{not json", 400, "malformed_request"),
        (b"", 400, "malformed_request"),
        (b"[1, 2]", 422, "validation_error"),
        (b'{"a": "' + b"x" * 70_000 + b'"}', 413, "payload_too_large"),
    ],
)
def test_unusable_bodies_get_clear_errors_not_500(api: Api, raw: bytes, status: int, code: str) -> None:
    response = api.post(ORDERS, raw=raw)
    assert response.status_code == status
    assert response.json_body["error"]["code"] == code


def test_wrong_content_type_is_refused(api: Api) -> None:
    response = api.post(ORDERS, order_body(), headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_unknown_route_is_not_served(api: Api) -> None:
    # API Gateway (and Chalice's local gateway) answer a route that does not exist with 403, not 404.
    assert api.get("/api/v1/nothing-here").status_code == 403


# --- auth ------------------------------------------------------------------------------------------------------


def test_no_token_is_401_and_bad_token_is_refused(api: Api) -> None:
    assert api.get(ORDERS, token="").status_code == 401
    assert api.get(ORDERS, token="orl_0123456789abcdef_" + "x" * 43).status_code == 403
    assert api.get(ORDERS, token="garbage").status_code == 403


def test_seller_token_sees_only_its_own_orders(api: Api, seller_token: str) -> None:
    mine = create(api.as_(seller_token)).json_body
    theirs = create(api, order_body(seller_id="s-2")).json_body
    seller = api.as_(seller_token)
    assert seller.get(f"{ORDERS}/{mine['id']}").status_code == 200
    hidden = seller.get(f"{ORDERS}/{theirs['id']}")
    assert hidden.status_code == 404 and hidden.json_body["error"]["code"] == "not_found"
    assert seller.patch(f"{ORDERS}/{theirs['id']}", {"order": {"user_note": "x"}}).status_code == 404
    assert seller.delete(f"{ORDERS}/{theirs['id']}").status_code == 404
    listed = seller.get(ORDERS).json_body["items"]
    assert [o["id"] for o in listed] == [mine["id"]]
    assert seller.get(f"{ORDERS}?seller_id=s-2").json_body["items"] == []


def test_seller_cannot_create_for_another_seller(api: Api, seller_token: str) -> None:
    response = api.as_(seller_token).post(ORDERS, order_body(seller_id="s-2"))
    assert response.status_code == 403
    assert response.json_body["error"]["details"][0]["field"] == "seller.id"


def test_admin_routes_refuse_seller_tokens(api: Api, seller_token: str) -> None:
    response = api.as_(seller_token).post("/api/v1/tokens", {"role": "admin"})
    assert response.status_code == 403
    assert api.as_(seller_token).get("/api/v1/integrators").status_code == 403


def test_deployed_bootstrap_admin_token_comes_from_secrets_manager(
    api: Api, aws: dict[str, str], configure: Any
) -> None:
    import boto3

    configure(ORDER_RELAY_ADMIN_TOKEN=None)
    generated = boto3.client("secretsmanager", region_name="us-east-1").get_secret_value(
        SecretId=aws["ORDER_RELAY_ADMIN_TOKEN_SECRET"]
    )["SecretString"]
    assert len(generated) >= 40
    assert api.get(ORDERS, token=generated).status_code == 200
    assert api.get(ORDERS).status_code == 403  # the environment's token no longer counts


def test_tokens_are_shown_once_and_can_be_revoked(api: Api) -> None:
    issued = api.post("/api/v1/tokens", {"role": "seller", "seller_id": "s-9", "label": "till 1"}).json_body
    listed = api.get("/api/v1/tokens").json_body["items"]
    assert issued["id"] in [t["id"] for t in listed]
    assert all("token" not in t and "secret_sha256" not in t for t in listed)
    assert api.get(ORDERS, token=issued["token"]).status_code == 200
    assert api.delete(f"/api/v1/tokens/{issued['id']}").status_code == 204
    assert api.get(ORDERS, token=issued["token"]).status_code == 403


@pytest.mark.parametrize("body", [{"role": "seller"}, {"role": "root"}, {"role": "admin", "seller_id": "s-1"}])
def test_token_requests_are_validated(api: Api, body: dict[str, Any]) -> None:
    assert api.post("/api/v1/tokens", body).status_code == 422


# --- idempotency -----------------------------------------------------------------------------------------------


def test_same_idempotency_key_returns_the_first_order(api: Api, aws: dict[str, str]) -> None:
    first = create(api, headers={"Idempotency-Key": "k-1"})
    second = create(api, headers={"Idempotency-Key": "k-1"})
    assert second.json_body["id"] == first.json_body["id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert len(api.get(ORDERS).json_body["items"]) == 1
    assert len(queue_messages(aws["ORDERS_QUEUE_URL"])) == 1


def test_same_idempotency_key_with_another_body_is_refused(api: Api) -> None:
    create(api, headers={"Idempotency-Key": "k-2"})
    response = api.post(ORDERS, order_body(user_note="extra cheese"), headers={"Idempotency-Key": "k-2"})
    assert response.status_code == 422
    assert response.json_body["error"]["details"][0]["field"] == "Idempotency-Key"
    assert len(api.get(ORDERS).json_body["items"]) == 1


def test_a_key_whose_first_request_is_still_running_answers_409_with_retry_after(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.orders import service

    reached, release = threading.Event(), threading.Event()
    send = service._send

    def held(order: Any, event: Any) -> bool:  # the first create is held before it writes the order
        reached.set()
        release.wait(10)
        return send(order, event)

    monkeypatch.setattr(service, "_send", held)
    first: list[Any] = []
    thread = threading.Thread(target=lambda: first.append(create(api, headers={"Idempotency-Key": "k-3"})))
    thread.start()
    try:
        assert reached.wait(10)
        retried = api.post(ORDERS, order_body(), headers={"Idempotency-Key": "k-3"})
    finally:
        release.set()
        thread.join()
    assert retried.status_code == 409
    assert retried.headers["Retry-After"] == "1", "the till is told when to ask again"
    assert retried.json_body["error"]["code"] == "conflict"
    document = api.get("/api/v1/openapi.json", token="").json_body
    assert "Retry-After" in document["paths"][ORDERS]["post"]["responses"]["409"]["headers"], "and the document says so"
    again = create(api, headers={"Idempotency-Key": "k-3"})  # after Retry-After: the first request's answer
    assert again.json_body["id"] == first[0].json_body["id"]
    assert len(api.get(ORDERS).json_body["items"]) == 1


def test_idempotency_keys_are_scoped_per_caller(api: Api, seller_token: str) -> None:
    a = create(api.as_(seller_token), headers={"Idempotency-Key": "same"}).json_body
    b = create(api, headers={"Idempotency-Key": "same"}).json_body
    assert a["id"] != b["id"]


# --- list ------------------------------------------------------------------------------------------------------


def test_list_pages_newest_first_with_filters(api: Api) -> None:
    ids = [create(api, order_body(user_id="u-1" if i % 2 else "u-2")).json_body["id"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        query = f"{ORDERS}?limit=2&seller_id=s-1" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(query).json_body
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    by_user = [o["id"] for o in api.get(f"{ORDERS}?user_id=u-2&limit=100").json_body["items"]]
    assert by_user == [i for n, i in reversed(list(enumerate(ids))) if n % 2 == 0]


def test_list_filters_by_status(api: Api) -> None:
    kept = create(api).json_body["id"]
    cancelled = create(api).json_body["id"]
    assert api.delete(f"{ORDERS}/{cancelled}").status_code == 200
    pending = [o["id"] for o in api.get(f"{ORDERS}?status=pending").json_body["items"]]
    gone = [o["id"] for o in api.get(f"{ORDERS}?status=cancelled&seller_id=s-1").json_body["items"]]
    assert pending == [kept] and gone == [cancelled]


@pytest.mark.parametrize(
    ("query", "status"),
    [("limit=0", 422), ("limit=101", 422), ("limit=abc", 422), ("status=eaten", 422), ("cursor=%%%", 400)],
)
def test_bad_list_parameters_are_refused_with_details(api: Api, query: str, status: int) -> None:
    response = api.get(f"{ORDERS}?{query}")
    assert response.status_code == status
    assert response.json_body["error"]["details"]


def test_a_page_reads_the_same_number_of_items_whatever_the_table_size(api: Api) -> None:
    from chalicelib.db.records import ORDER_SHARDS
    from chalicelib.db.repository import repo
    from chalicelib.domain.order_list import ListFilter

    store = repo().orders
    for _ in range(5):
        create(api)
    small = store.list_orders(ListFilter(seller_id="s-1"), 3, None).items_read
    for _ in range(25):
        create(api)
    large = store.list_orders(ListFilter(seller_id="s-1"), 3, None).items_read
    everything = store.list_orders(ListFilter(), 3, None).items_read
    assert small == large == 3 + 3, "3 index keys and the 3 orders they name"
    assert everything <= ORDER_SHARDS * 3 + 3, "every shard's newest 3 at most, and the page's orders"


# --- patch -----------------------------------------------------------------------------------------------------


def test_patch_merges_and_bumps_version(api: Api, aws: dict[str, str]) -> None:
    order = create(api).json_body
    queue_messages(aws["ORDERS_QUEUE_URL"])
    response = api.patch(
        f"{ORDERS}/{order['id']}",
        {"order": {"user_note": "ring twice"}, "user": {"phone": None}},
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 200, response.body
    changed = response.json_body
    assert changed["version"] == 2 and changed["order"]["user_note"] == "ring twice"
    assert "phone" not in changed["user"] or changed["user"]["phone"] is None
    assert changed["order"]["items"] == order["order"]["items"]
    event = json.loads(queue_messages(aws["ORDERS_QUEUE_URL"])[0]["Body"])
    assert event["type"] == "order.updated" and event["version"] == 2


def test_stale_if_match_is_412_before_anything_else(api: Api) -> None:
    order = create(api).json_body
    api.patch(f"{ORDERS}/{order['id']}", {"order": {"user_note": "one"}})
    response = api.patch(f"{ORDERS}/{order['id']}", {"order": {"items": []}}, headers={"If-Match": "1"})
    assert response.status_code == 412
    assert api.get(f"{ORDERS}/{order['id']}").json_body["order"]["user_note"] == "one"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"status": "delivered"}, "status"),
        ({"seller": {"id": "s-2"}}, "seller"),
        ({"user": {"id": "u-9"}}, "user.id"),
        ({"order": {"items": [{"id": "i", "name": "x", "quantity": -1}]}}, "order.items.0.quantity"),
        ({"order": {"items": None}}, "order.items"),
    ],
)
def test_patch_refuses_fields_that_may_not_change(api: Api, patch: dict[str, Any], field: str) -> None:
    order = create(api).json_body
    response = api.patch(f"{ORDERS}/{order['id']}", patch)
    assert response.status_code == 422
    assert any(d["field"] and d["field"].startswith(field) for d in response.json_body["error"]["details"])


def test_patch_of_a_cancelled_order_is_409(api: Api) -> None:
    order = create(api).json_body
    api.delete(f"{ORDERS}/{order['id']}")
    response = api.patch(f"{ORDERS}/{order['id']}", {"order": {"user_note": "late"}})
    assert response.status_code == 409


# --- cancel ----------------------------------------------------------------------------------------------------


def test_cancel_keeps_the_record_and_queues_the_event(api: Api, aws: dict[str, str]) -> None:
    order = create(api).json_body
    queue_messages(aws["ORDERS_QUEUE_URL"])
    response = api.delete(f"{ORDERS}/{order['id']}")
    assert response.status_code == 200 and response.json_body["status"] == "cancelled"
    assert api.get(f"{ORDERS}/{order['id']}").json_body["timeline"][-1]["status"] == "cancelled"
    event = json.loads(queue_messages(aws["ORDERS_QUEUE_URL"])[0]["Body"])
    assert event["type"] == "order.cancelled"
    assert api.delete(f"{ORDERS}/{order['id']}").status_code == 200  # cancelling twice changes nothing


def test_cancel_of_a_finished_order_is_409(api: Api) -> None:
    from chalicelib.domain.order_status import OrderStatus
    from chalicelib.orders.progress import apply_status

    order = create(api).json_body
    for status in (OrderStatus.DISPATCHED, OrderStatus.DELIVERED):
        apply_status(order["id"], status, source="test")
    response = api.delete(f"{ORDERS}/{order['id']}")
    assert response.status_code == 409
    assert api.get(f"{ORDERS}/{order['id']}").json_body["status"] == "delivered"


# --- no lost orders --------------------------------------------------------------------------------------------


def test_order_saved_but_not_queued_is_requeued_by_the_sweeper(
    api: Api, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch, app: Any, tmp_path: Any
) -> None:
    from chalicelib import queue

    def broken_send(*args: Any, **kwargs: Any) -> str:
        raise ConnectionError("SQS unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(queue, "send", broken_send)
        order = create(api).json_body  # the client still gets its order
    assert queue_messages(aws["ORDERS_QUEUE_URL"]) == []

    from chalice.test import Client

    with Client(app, project_dir=str(tmp_path)) as client:
        tick = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
        assert client.lambda_.invoke("sweep_outbox", tick).payload == {"requeued": 1, "resumed_integrators": 0}
        messages = queue_messages(aws["ORDERS_QUEUE_URL"])
        assert [json.loads(m["Body"])["order_id"] for m in messages] == [order["id"]]
        assert client.lambda_.invoke("sweep_outbox", tick).payload == {"requeued": 0, "resumed_integrators": 0}


# --- docs ------------------------------------------------------------------------------------------------------


def test_openapi_lists_every_route_without_auth(api: Api, app: Any) -> None:
    response = api.get("/api/v1/openapi.json", token="")
    assert response.status_code == 200
    document = response.json_body
    assert document["openapi"].startswith("3.1")
    for path, methods in app.routes.items():
        for method in methods:
            assert method.lower() in document["paths"][path], (path, method)
    create_op = document["paths"]["/api/v1/orders"]["post"]
    schema_name = create_op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(document["components"]["schemas"][schema_name]["properties"]) == {"user", "seller", "order"}


def test_deployed_stage_config_with_names_only_finds_its_queue_and_topic(
    api: Api, aws: dict[str, str], configure: Any
) -> None:
    """`chalice deploy` stages carry account-free names; the URL and ARN are looked up at first use."""
    from chalicelib import queue

    configure(
        ORDERS_QUEUE_URL=None,
        NOTIFICATIONS_TOPIC_ARN=None,
        NOTIFICATIONS_TOPIC_NAME=aws["NOTIFICATIONS_TOPIC_ARN"].rsplit(":", 1)[1],
    )
    create(api)
    assert len(queue_messages(aws["ORDERS_QUEUE_URL"])) == 1
    assert queue.topic_arn() == aws["NOTIFICATIONS_TOPIC_ARN"]
