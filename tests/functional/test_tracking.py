"""Tracking links and the public tracking view over HTTP: what a customer with the link sees, and that nothing
else does (forged, expired, revoked, another order's link: one neutral answer)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import boto3
import pytest

from tests.functional.test_callbacks import Partner
from tests.support.api import Api
from tests.support.fake_integrator import FakeIntegrator
from tools.poller import drain
from tools.sample_order import order_body

ORDERS = "/api/v1/orders"
NOT_VALID = {"code": "link_not_valid", "message": "This tracking link is not valid. Ask the shop for a new one."}


def token_of(url: str) -> str:
    assert "/track#" in url, url
    return url.split("#", 1)[1]


def track(api: Api, token: str | None) -> Any:
    return api.request("GET", "/api/v1/track", token="", headers={"X-Tracking-Token": token} if token else {})


def refused(response: Any) -> None:
    assert response.status_code == 404, response.body
    body = response.json_body["error"]
    assert {"code": body["code"], "message": body["message"]} == NOT_VALID


@pytest.fixture
def order(api: Api, seller_token: str) -> dict[str, Any]:
    body = order_body(user_note="<img src=x onerror=alert(1)>")
    body["seller"]["name"] = "Falafel <b>House</b>"
    created = api.as_(seller_token).post(ORDERS, body)
    assert created.status_code == 201, created.body
    return dict(created.json_body)


def test_create_and_read_answer_a_tracking_link_that_shows_only_customer_facts(
    api: Api, order: dict[str, Any], seller_token: str
) -> None:
    again = api.as_(seller_token).get(f"{ORDERS}/{order['id']}").json_body
    assert again["tracking_url"].startswith("http") and again["tracking_url"].count("#") == 1
    response = track(api, token_of(order["tracking_url"]))
    assert response.status_code == 200, response.body
    assert response.headers["Cache-Control"] == "no-store"
    view = response.json_body["order"]
    assert view["status"] == "pending" and view["label"] == "Order received" and view["version"] == 1
    assert view["shop"] == {"name": "Falafel <b>House</b>", "phone": order["seller"]["phone"]}
    assert view["note"] == "<img src=x onerror=alert(1)>"
    assert [step["status"] for step in view["timeline"]] == ["pending"]
    text = json.dumps(response.json_body)
    for private in (order["seller"]["email"], order["user"]["phone"], order["user"]["email"], "s-1", "u-1", "api"):
        assert private not in text
    assert set(response.json_body) == {"order", "live", "link_expires_at"}
    assert track(api, token_of(again["tracking_url"])).status_code == 200  # a fresh link for the same order


def test_partner_progress_shows_in_customer_words_without_partner_names_or_messages(
    api: Api, app: Any, aws: dict[str, str], fake: FakeIntegrator, order: dict[str, Any]
) -> None:
    courier = Partner(api, "speedy-courier", fake)
    other = api.post(ORDERS, order_body()).json_body["id"]
    drain(app, boto3.client("sqs", region_name="us-east-1"), aws["ORDERS_QUEUE_URL"])
    courier.status(order["id"], "picked_up", eta="2026-11-24T10:30:00+02:00", message="driver Bob, err 0x1F")
    view = track(api, token_of(order["tracking_url"])).json_body["order"]
    assert view["status"] == "picked_up" and view["label"] == "On its way"
    assert view["eta"] == "2026-11-24T10:30:00+02:00"
    assert [s["status"] for s in view["timeline"]] == ["pending", "dispatched", "picked_up"]
    text = json.dumps(view)
    assert "speedy" not in text and "Bob" not in text and other not in text


@pytest.mark.parametrize("kind", ["missing", "garbage", "forged", "altered", "other key"])
def test_a_bad_token_gets_the_neutral_answer(api: Api, order: dict[str, Any], kind: str) -> None:
    token = token_of(order["tracking_url"])
    bad = {
        "missing": None,
        "garbage": "not-a-token",
        "forged": token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        "altered": token.replace(order["id"], "ord_" + "0" * 26),
        "other key": token.rsplit(".", 2)[0] + ".0badc0de." + token.rsplit(".", 1)[1],
    }[kind]
    refused(track(api, bad))


def test_expired_links_and_links_of_orders_ended_long_ago_are_refused(
    api: Api, order: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.domain import clock
    from chalicelib.settings import get_settings
    from chalicelib.tracking import links

    old, _ = links.issue(order["id"], now=time.time() - 31 * 24 * 3600)
    refused(track(api, old))
    api.delete(f"{ORDERS}/{order['id']}")  # cancelled: an end state
    ended = clock.utcnow()
    token = token_of(order["tracking_url"])
    assert track(api, token).status_code == 200  # still within a day of the end
    a_day_later = ended + timedelta(seconds=get_settings().tracking_link_ttl_seconds + 1)
    monkeypatch.setattr(clock, "utcnow", lambda: a_day_later)
    refused(track(api, token))


def test_a_seller_revokes_the_links_and_gets_a_new_one(api: Api, order: dict[str, Any], seller_token: str) -> None:
    old = token_of(order["tracking_url"])
    other_seller = api.post("/api/v1/tokens", {"role": "seller", "seller_id": "s-2"}).json_body["token"]
    assert api.as_(other_seller).post(f"{ORDERS}/{order['id']}/tracking-links").status_code == 404
    assert track(api, old).status_code == 200
    answer = api.as_(seller_token).post(f"{ORDERS}/{order['id']}/tracking-links")
    assert answer.status_code == 201, answer.body
    refused(track(api, old))
    assert track(api, token_of(answer.json_body["tracking_url"])).status_code == 200


def test_a_deleted_order_and_a_missing_one_look_the_same(api: Api, order: dict[str, Any]) -> None:
    from chalicelib.tracking import links

    ghost, _ = links.issue("ord_" + "7" * 26)
    refused(track(api, ghost))


def test_a_rotated_secret_keeps_live_links_working(api: Api, order: dict[str, Any], aws: dict[str, str]) -> None:
    from chalicelib.aws import forget_secret

    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    old_key = secrets.get_secret_value(SecretId=aws["TRACKING_LINK_SECRET"])["SecretString"]
    secrets.put_secret_value(SecretId=aws["TRACKING_LINK_SECRET"], SecretString="n" * 40 + " " + old_key)
    forget_secret()
    assert track(api, token_of(order["tracking_url"])).status_code == 200
    fresh = token_of(api.get(f"{ORDERS}/{order['id']}").json_body["tracking_url"])
    secrets.put_secret_value(SecretId=aws["TRACKING_LINK_SECRET"], SecretString="n" * 40)  # the old key retired
    forget_secret()
    assert track(api, fresh).status_code == 200
    refused(track(api, token_of(order["tracking_url"])))


def test_the_page_is_served_with_strict_headers_allowing_only_the_websocket_api(api: Api, configure: Any) -> None:
    configure(TRACKING_WEBSOCKET_URL="wss://abc123.execute-api.us-east-1.amazonaws.com/api")
    page = api.get("/track", token="")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "connect-src 'self' wss://abc123.execute-api.us-east-1.amazonaws.com;" in csp
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    script = api.get("/console/track.js", token="")
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
