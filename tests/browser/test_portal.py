"""The integrator portal in a real Chromium against `make run`'s stack: a partner opens the link an admin sent,
finds its failed delivery with the attempt as sent and answered, retries it and watches it land, sends a test
event and rotates its callback secret, without an operator."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, Stack


def portal_link(stack: Stack, integrator: str, *scopes: str) -> str:
    response = stack.call("POST", f"/integrators/{integrator}/portal-links", json={"scopes": list(scopes)})
    assert response.status_code == 201, response.text
    return str(response.json()["url"])


def test_a_partner_fixes_its_failed_delivery_sends_a_test_and_rotates_its_secret(
    page: Any, browser: Any, stack: Stack
) -> None:
    order_id = stack.order_with_failed("s-portal", failing="loyalty")
    url = portal_link(stack, "loyalty", "retry", "rotate_secret")
    assert url.startswith(stack.url + "/portal#code=")

    page.goto(url)
    expect(page.get_by_text("loyalty · integrator portal")).to_be_visible()
    assert "code=" not in page.url, "the code leaves the address bar once used"
    row = page.locator(f'tr[data-order="{order_id}"]')
    expect(row).to_contain_text("failed")
    row.click()
    detail = page.locator("#delivery")
    expect(detail).to_contain_text("HTTP 503")
    expect(detail.locator("pre.body")).to_contain_text(order_id)  # the body exactly as it was sent

    partner_requests = len(stack.partner.requests("/loyalty"))
    detail.get_by_role("button", name="Retry this delivery").click()
    expect(detail.locator(".page-head .badge")).to_have_text("delivered", timeout=30_000)
    expect(detail.locator(".attempt")).to_have_count(2)
    assert len(stack.partner.requests("/loyalty")) == partner_requests + 1

    page.get_by_role("button", name="Send a test event").click()
    expect(page.locator("#messages")).to_contain_text("Test event sent: delivered")
    expect(page.locator("#delivery h2")).to_contain_text("Test event test_")
    test_request = stack.partner.requests("/loyalty")[-1]
    assert test_request.headers["x-order-relay-test"] == "true"

    page.get_by_role("link", name="Endpoint").click()
    page.get_by_role("button", name="Rotate the secret").click()
    expect(page.locator("#new-secret")).to_contain_text("whsec_")

    # The link was spent: opened again elsewhere it shows nothing of the integrator.
    other = browser.new_context(viewport=PHONE)
    second = other.new_page()
    second.goto(url)
    expect(second.get_by_text("this portal link is not valid")).to_be_visible()
    assert order_id not in second.content()
    other.close()


def test_a_view_only_session_on_a_phone_shows_no_actions_it_may_not_take(page: Any, stack: Stack) -> None:
    page.set_viewport_size(PHONE)
    page.goto(portal_link(stack, "delivery"))
    expect(page.get_by_role("heading", name="Deliveries")).to_be_visible()
    expect(page.get_by_role("button", name="Replay failed in this range")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    page.keyboard.press("Tab")  # the skip link, then the page is usable from the keyboard
    page.get_by_role("link", name="Endpoint").click()
    expect(page.get_by_label("URL")).to_be_disabled()
    expect(page.get_by_role("button", name="Rotate the secret")).to_have_count(0)
    page.get_by_role("link", name="Health").click()
    expect(page.locator("#health")).to_contain_text("Circuit")
