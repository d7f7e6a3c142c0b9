"""The operator console in a real headless Chromium, against the local stack over real HTTP: what an operator
sees and does, from signing in to retrying a failed delivery."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, Stack
from tests.support.fake_integrator import Reply
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

XSS_NOTE = "<img src=x onerror=alert(1)>"


def open_order(page: Any, stack: Stack, seller_id: str, order_id: str) -> None:
    """Find the order the way an operator would: filter the list by seller, then open the row."""
    page.get_by_label("Seller id").fill(seller_id)
    page.get_by_role("button", name="Apply").click()
    page.get_by_role("link", name=order_id).click()
    expect(page.get_by_role("heading", name=order_id)).to_be_visible()
    expect(page.locator(".order-head .badge")).to_be_visible()


def delivery(page: Any, integrator: str) -> Any:
    return page.locator(f"article.delivery[data-integrator='{integrator}']")


def test_a_wrong_token_is_refused_and_an_admin_token_signs_in(page: Any, stack: Stack) -> None:
    page.goto(stack.url + "/console")
    page.get_by_label("Admin token").fill("orl_not_a_real_token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That token was refused")

    page.get_by_label("Admin token").fill(stack.seller_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not an admin token")

    page.get_by_label("Admin token").fill(stack.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible()
    assert page.evaluate("Object.values(sessionStorage)") == [stack.admin_token]
    assert stack.admin_token not in page.url

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Admin token")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_an_order_made_through_the_api_shows_three_deliveries_and_every_attempt(
    page: Any, stack: Stack, sign_in: Callable[..., None]
) -> None:
    order_id = stack.order_with_failed("s-console")
    stack.create_order("s-console-2")
    sign_in(page)
    row = page.locator("tr", has=page.get_by_role("link", name=order_id))
    expect(row.locator(".chip")).to_have_count(3)
    expect(row.locator(".chip", has_text="loyalty")).to_contain_text("failed")

    open_order(page, stack, "s-console", order_id)
    expect(page.locator("article.delivery")).to_have_count(3)
    for name in ("delivery", "food-ordering"):
        expect(delivery(page, name).locator(".delivery-head .badge")).to_have_text("delivered")
        expect(delivery(page, name).locator("tr.attempt")).to_have_count(1)
        expect(delivery(page, name).locator("tr.attempt")).to_contain_text("200")
    failed = delivery(page, "loyalty")
    expect(failed.locator(".delivery-head .badge")).to_have_text("failed")
    attempt = failed.locator("tr.attempt")
    expect(attempt).to_have_count(1)
    expect(attempt).to_contain_text("503")
    expect(attempt).to_contain_text(re.compile(r"\d+ ms"))
    expect(attempt).to_contain_text("partner down for maintenance")
    expect(page.locator(".timeline li").first).to_contain_text("dispatched")


def test_retrying_a_failed_delivery_shows_it_delivered(
    page: Any, stack: Stack, sign_in: Callable[..., None], screenshot: Callable[..., Any]
) -> None:
    order_id = stack.order_with_failed("s-retry")
    sign_in(page)
    open_order(page, stack, "s-retry", order_id)
    failed = delivery(page, "loyalty")
    failed.get_by_role("button", name="Retry delivery").click()

    expect(failed.locator(".delivery-head .badge")).to_have_text("delivered")
    attempts = failed.locator("tr.attempt")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text("503")
    expect(attempts.nth(1)).to_contain_text("200")
    expect(failed.get_by_role("button", name="Retry delivery")).to_have_count(0)
    assert stack.deliveries(order_id)["loyalty"] == "delivered"
    screenshot(page, "order")

    # A refusal is shown as the API words it: hold the page's view of the order (its reads fail), have someone
    # else retry the delivery meanwhile, then press Retry on the stale page.
    order_id = stack.order_with_failed("s-retry")
    page.get_by_role("link", name="← Orders").click()
    open_order(page, stack, "s-retry", order_id)
    expect(delivery(page, "loyalty").get_by_role("button", name="Retry delivery")).to_be_visible()
    page.route(
        re.compile(r"/api/v1/orders/[^?]*$"),
        lambda route: route.abort() if route.request.method == "GET" else route.continue_(),
    )
    assert stack.call("POST", f"/orders/{order_id}/deliveries/loyalty/retry").status_code == 202
    delivery(page, "loyalty").get_by_role("button", name="Retry delivery").click()
    expect(delivery(page, "loyalty").get_by_role("alert")).to_contain_text(
        re.compile(r"Retry refused: delivery is [a-z_]+; only a failed (or expired )?delivery can be retried")
    )


def test_cancelling_asks_first_and_then_cancels(page: Any, stack: Stack, sign_in: Callable[..., None]) -> None:
    order_id = stack.create_order("s-cancel")
    eventually(lambda: set(stack.deliveries(order_id).values()) == {"delivered"})
    sign_in(page)
    open_order(page, stack, "s-cancel", order_id)

    page.get_by_role("button", name="Cancel order…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("cannot be undone")
    dialog.get_by_role("button", name="Keep order").click()
    expect(dialog).to_be_hidden()
    assert stack.call("GET", f"/orders/{order_id}").json()["status"] == "dispatched"

    page.get_by_role("button", name="Cancel order…").click()
    dialog.get_by_label("Reason").fill("customer called")
    dialog.get_by_role("button", name="Cancel order", exact=True).click()
    expect(page.locator(".order-head .badge")).to_have_text("cancelled")
    expect(page.locator(".timeline li").first).to_contain_text("customer called")
    expect(page.get_by_role("button", name="Cancel order…")).to_be_disabled()
    assert stack.call("GET", f"/orders/{order_id}").json()["status"] == "cancelled"


def test_an_order_note_is_shown_as_text_never_as_html(page: Any, stack: Stack, sign_in: Callable[..., None]) -> None:
    dialogs: list[str] = []

    def record(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    order_id = stack.create_order("s-xss", user_note=XSS_NOTE)
    sign_in(page)
    open_order(page, stack, "s-xss", order_id)

    expect(page.locator(".note")).to_have_text(XSS_NOTE)
    assert page.locator("img[src='x']").count() == 0
    assert dialogs == []


def test_the_page_runs_only_its_own_scripts(page: Any, stack: Stack) -> None:
    response = requests.get(stack.url + "/console", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    script = requests.get(stack.url + "/console/console.js", timeout=5)
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert script.headers["Cache-Control"] == "no-cache"
    again = requests.get(
        stack.url + "/console/console.js", headers={"If-None-Match": script.headers["ETag"]}, timeout=5
    )
    assert again.status_code == 304 and again.content == b""
    missing = requests.get(stack.url + "/console/app.py", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    slash = requests.get(stack.url + "/console/", allow_redirects=False, timeout=5)
    assert slash.status_code == 301 and slash.headers["Location"] == "../console"

    # The browser enforces the policy: an injected inline script never runs.
    page.goto(stack.url + "/console")
    ran = page.evaluate(
        """() => { const s = document.createElement('script'); s.textContent = 'window.injected = true';
                   document.body.append(s); return window.injected === true; }"""
    )
    assert ran is False


def test_integrators_show_health_and_can_be_disabled_enabled_and_replayed(
    page: Any, stack: Stack, sign_in: Callable[..., None], screenshot: Callable[..., Any]
) -> None:
    order_id = stack.order_with_failed("s-replay", failing="food-ordering")
    sign_in(page)
    page.get_by_role("link", name="Integrators").click()
    rows = page.locator("tr[data-integrator]")
    expect(rows).to_have_count(3)
    row = page.locator("tr[data-integrator='food-ordering']")
    # Health from GET /integrators/{name}/health: the circuit, and the last hour's figures.
    expect(row.locator("td").nth(2)).to_have_text("closed")
    expect(row.locator("td").nth(3)).to_have_text(re.compile(r"\d+(\.\d)? %"))
    expect(row.locator("td").nth(4)).to_have_text(re.compile(r"\d+ ms"))
    expect(page.get_by_role("alert")).to_have_count(0)

    row.get_by_role("button", name="Disable").click()
    expect(row.locator(".badge").first).to_have_text("disabled")
    assert stack.call("GET", "/integrators/food-ordering").json()["enabled"] is False
    row.get_by_role("button", name="Enable").click()
    expect(row.locator(".badge").first).to_have_text("enabled")
    assert stack.call("GET", "/integrators/food-ordering").json()["enabled"] is True

    row.get_by_role("button", name="Replay failed…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Failed since")).not_to_have_value("")
    dialog.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status")).to_contain_text("Replaying 1 failed delivery to food-ordering")
    eventually(lambda: stack.deliveries(order_id)["food-ordering"] == "delivered")
    screenshot(page, "integrators")


def test_integrator_health_columns_show_the_documented_health_answer(
    page: Any, stack: Stack, sign_in: Callable[..., None]
) -> None:
    """An open circuit with its figures, stood in for by the documented answer (a real outage is the lead's
    circuit test); an integrator whose health cannot be read (404) shows a dash and no error."""
    health = {
        "circuit": "open",
        "consecutive_failures": 5,
        "opened_at": "2026-11-25T10:00:00Z",
        "next_probe_at": "2026-11-25T10:00:30Z",
        "waiting": 7,
        "last_error": "HTTPError: HTTP 503 <b>not bold</b>",
        "window": {
            "minutes": 60,
            "attempts": 40,
            "delivered": 30,
            "failed": 10,
            "success_rate": 0.75,
            "p50_ms": 120.0,
            "p95_ms": 870.4,
        },
    }

    def answer(route: Any) -> None:
        if "/integrators/loyalty/health" in route.request.url:
            route.fulfill(json=health)
        else:
            route.fulfill(status=404, json={"error": {"code": "not_found", "message": "no health", "details": []}})

    page.route(re.compile(r"/api/v1/integrators/[^/]+/health$"), answer)
    sign_in(page)
    page.get_by_role("link", name="Integrators").click()
    row = page.locator("tr[data-integrator='loyalty']")
    expect(row.locator("td").nth(2)).to_contain_text("open")
    expect(row.locator("td").nth(3)).to_have_text("75 %")
    expect(row.locator("td").nth(4)).to_have_text("870 ms")
    expect(row.locator("td").nth(5)).to_have_text("7")
    expect(row.locator("td").nth(6)).to_have_text("HTTPError: HTTP 503 <b>not bold</b>")
    expect(page.locator("tr[data-integrator='delivery'] td").nth(2)).to_have_text("—")
    expect(page.get_by_role("alert")).to_have_count(0)


def test_the_list_refreshes_itself_and_keeps_the_operators_place(
    page: Any, stack: Stack, sign_in: Callable[..., None]
) -> None:
    first = stack.create_order("s-live")
    sign_in(page)
    page.get_by_label("Seller id").fill("s-live")
    page.get_by_label("Status").select_option("dispatched")
    expect(page.get_by_role("link", name=first)).to_be_visible()
    stamp = page.locator("#refreshed").inner_text()

    second = stack.create_order("s-live")
    eventually(lambda: stack.call("GET", f"/orders/{second}").json()["status"] == "dispatched")
    expect(page.get_by_role("link", name=second)).to_be_visible()
    expect(page.locator("#refreshed")).not_to_have_text(stamp)
    assert page.get_by_label("Seller id").input_value() == "s-live"
    assert page.get_by_label("Status").input_value() == "dispatched"
    assert "seller=s-live" in page.url and "status=dispatched" in page.url

    page.get_by_label("Seller id").fill("s-nobody")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("No orders match these filters.")).to_be_visible()


def test_it_works_under_an_api_gateway_stage_prefix(page: Any, stack: Stack) -> None:
    """API Gateway serves the stage under /prod: the page's relative URLs must keep the prefix."""
    seen: list[str] = []

    def strip_stage(route: Any) -> None:
        url = route.request.url
        seen.append(url)
        route.fulfill(response=route.fetch(url=url.replace("/prod/", "/", 1)))

    page.route(re.compile(r"^https?://[^/]+/prod/"), strip_stage)
    page.goto(stack.url + "/prod/console")
    page.get_by_label("Admin token").fill(stack.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible()
    expect(page.locator(".orders-table")).to_be_visible()
    assert any("/prod/console/console.js" in url for url in seen)
    assert any("/prod/console/api.js" in url for url in seen)  # a module's imports keep the prefix too
    assert any("/prod/api/v1/orders" in url for url in seen)


def test_laptop_and_phone_widths_show_the_orders_without_sideways_scrolling(
    page: Any, browser: Any, stack: Stack, sign_in: Callable[..., None], screenshot: Callable[..., Any]
) -> None:
    sign_in(page)
    expect(page.locator(".orders-table .chip").first).to_be_visible()
    expect(page.locator(".orders-table td", has_text="loading")).to_have_count(0)
    screenshot(page, "orders")

    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        phone = context.new_page()
        sign_in(phone)
        expect(phone.locator(".orders-table .chip").first).to_be_visible()
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(phone, "orders-phone", full_page=False)
        # A reload keeps the session (the tab's sessionStorage), and the keyboard starts at "Skip to content".
        phone.reload()
        expect(phone.locator(".orders-table")).to_be_visible()
        phone.keyboard.press("Tab")
        assert phone.evaluate("document.activeElement.textContent") == "Skip to content"
        phone.keyboard.press("Enter")
        assert phone.evaluate("document.activeElement.id") == "main"
    finally:
        context.close()


def test_paging_follows_the_api_cursor_and_comes_back(page: Any, stack: Stack, sign_in: Callable[..., None]) -> None:
    with ThreadPoolExecutor(4) as pool:
        created = set(pool.map(lambda _: stack.create_order("s-pages"), range(11)))  # one more than a page of 10
    sign_in(page)
    page.get_by_label("Seller id").fill("s-pages")
    page.get_by_label("Per page").select_option("10")
    rows = page.locator(".orders-table tbody tr")
    ids = page.locator(".orders-table tbody tr a.mono")
    expect(rows).to_have_count(10)
    first_page = set(ids.all_inner_texts())
    expect(page.get_by_role("button", name="← Newer")).to_be_disabled()

    page.get_by_role("button", name="Older →").click()
    expect(page.locator(".page-label")).to_have_text("Page 2")
    expect(rows).to_have_count(1)
    assert first_page | set(ids.all_inner_texts()) == created
    expect(page.get_by_role("button", name="Older →")).to_be_disabled()

    page.get_by_role("button", name="← Newer").click()
    expect(page.locator(".page-label")).to_have_text("Page 1")
    expect(rows).to_have_count(10)
    assert set(ids.all_inner_texts()) == first_page
    assert "limit=10" in page.url and "seller=s-pages" in page.url


def test_an_outage_shows_the_integrators_circuit_open(page: Any, stack: Stack, sign_in: Callable[..., None]) -> None:
    """A real outage: the partner answers 503 until its circuit opens (3 failures in the local stack), and the
    integrators page shows the open circuit, its last error and what waits; an operator's disable and enable
    starts it again from a closed circuit."""
    stack.partner.default("/loyalty", Reply(503, json={"error": "down"}))
    try:
        for _ in range(4):
            stack.create_order("s-outage")

        def circuit() -> str:
            return str(stack.call("GET", "/integrators/loyalty/health").json()["circuit"])

        eventually(lambda: circuit() == "open", timeout=30)
        sign_in(page)
        page.get_by_role("link", name="Integrators").click()
        row = page.locator("tr[data-integrator='loyalty']")
        expect(row.locator("td").nth(2)).to_contain_text("open")
        expect(row.locator("td").nth(6)).to_contain_text("HTTP 503")
    finally:
        stack.partner.default("/loyalty", Reply(200, json={}))
        for enabled in (False, True):
            stack.call("PATCH", "/integrators/loyalty", json={"enabled": enabled})
