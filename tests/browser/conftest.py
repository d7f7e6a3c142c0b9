"""One local stack and one real Chromium for the console's browser tests.

The stack is `make run`'s, started as a subprocess on free ports without the demo partners; a scripted fake
integrator on loopback stands in for three partners, so a test decides which delivery fails. Chromium is Debian's
package driven by Playwright's Python package: nothing is downloaded at test time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.support.fake_integrator import FakeIntegrator, Reply
from tests.support.waiting import eventually
from tools.sample_order import order_body
from tools.stack_process import local_stack

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
expect.set_options(timeout=15_000)  # the page refreshes every 5 s; allow for a slow, busy CI machine
PARTNERS = ("delivery", "food-ordering", "loyalty")
LAPTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}


class Stack:
    """The running service as a test sees it: its URL, tokens, and the API over real HTTP."""

    def __init__(self, info: dict[str, Any], partner: FakeIntegrator) -> None:
        self.url: str = info["api_url"]
        self.admin_token: str = info["admin_token"]
        self.seller_token: str = info["seller_token"]
        self.partner = partner
        self.info = info  # all of stack.json (the tracking tests read the WebSocket API's addresses)

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return requests.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=10, **kw)

    def create_order(self, seller_id: str, **order: Any) -> str:
        body = order_body(seller_id=seller_id, user_id=f"u-{seller_id}", **order)
        body["seller"]["name"] = f"Shop {seller_id}"
        response = self.call("POST", "/orders", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def deliveries(self, order_id: str) -> dict[str, str]:
        order = self.call("GET", f"/orders/{order_id}").json()
        return {d["integrator"]: d["status"] for d in order["deliveries"]}

    def order_with_failed(self, seller_id: str, failing: str = "loyalty") -> str:
        """An order whose delivery to `failing` failed (a 503; one attempt allowed) while the others got it."""
        self.partner.script(f"/{failing}", Reply(503, json={"error": "partner down for maintenance"}))
        order_id = self.create_order(seller_id)
        expected = {name: "failed" if name == failing else "delivered" for name in PARTNERS}
        eventually(lambda: self.deliveries(order_id) == expected, timeout=30)
        return order_id


@pytest.fixture(scope="module")
def partner() -> Iterator[FakeIntegrator]:
    with FakeIntegrator() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, partner: FakeIntegrator) -> Iterator[Stack]:
    # A failing partner fails its delivery at once: no retry delays to wait out.
    with local_stack(tmp_path_factory.mktemp("console-stack"), {"DISPATCH_MAX_ATTEMPTS": "1"}) as info:
        running = Stack(info, partner)
        for name in PARTNERS:
            body = {"name": name, "url": partner.url(f"/{name}"), "auth": {"type": "none"}}
            response = running.call("POST", "/integrators", json=body)
            assert response.status_code == 201, response.text
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"the browser tests need Chromium at {CHROMIUM}: `apt-get install chromium` (make test and .ci/run "
            "install it when run as root)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (its own sessionStorage) at laptop width; page errors fail the test."""
    context = browser.new_context(viewport=LAPTOP)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    tab.unroute_all(behavior="ignoreErrors")
    context.close()
    assert not errors, errors


@pytest.fixture
def sign_in(stack: Stack) -> Callable[..., None]:
    def go(page: Any, token: str | None = None, path: str = "/console") -> None:
        page.goto(stack.url + path)
        page.get_by_label("Admin token").fill(token or stack.admin_token)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Orders", exact=True).wait_for()

    return go


@pytest.fixture(scope="session")
def screenshot() -> Callable[..., Path]:
    """Screenshots go to docs/ (shown in docs/console.md) with UPDATE_SCREENSHOTS=1, else to a temporary folder: the
    pictures are taken on every run, and the committed ones change only when someone means to."""
    import tempfile

    target = ROOT / "docs" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else Path(tempfile.mkdtemp())

    def take(page: Any, name: str, full_page: bool = True) -> Path:
        path = target / f"console-{name}.png"
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(path), full_page=full_page)
        assert path.stat().st_size > 10_000
        return path

    return take
