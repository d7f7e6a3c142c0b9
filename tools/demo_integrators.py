"""Three partner platforms from the original design, for the local stack: each checks its own auth, answers
orders, and a little later walks the order through its statuses with signed callbacks.

The food-ordering platform must acknowledge an order within 3 s, and (as real platforms sometimes do) it takes
every third order without ever calling back, so the log shows an overdue acknowledgement."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import requests

from chalicelib.integrators.signing import signature_headers

API_KEY = "demo-loyalty-key-" + secrets.token_hex(8)
CLIENT_ID = "food-ordering-demo"
CLIENT_SECRET = "demo-secret-" + secrets.token_hex(8)
HMAC_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()

# name -> (step, status) the partner reports after receiving an order: the kitchen platform accepts and cooks,
# the courier picks up and delivers, the loyalty programme only acknowledges.
PLANS: dict[str, list[tuple[int, str]]] = {
    "food-ordering": [(1, "accepted"), (2, "preparing"), (3, "ready")],
    "delivery": [(4, "picked_up"), (5, "delivered")],
    "loyalty": [(1, "accepted")],
}
ACK_WITHIN_SECONDS = 3  # food-ordering's acknowledgement window
SILENT_EVERY = 3  # food-ordering never calls back for every third order it receives
DELIVER_WITHIN_SECONDS = 600  # the courier gets nothing more than 10 minutes after an event was raised


# The loyalty programme needs a member and what was bought, not where the customer lives or how to reach them:
# its payload template sends no phone, email or location (docs/payload-mapping.md).
LOYALTY_TEMPLATE = (
    "{event: event, ref: order.id, member: user.id, shop: seller.id, placed_at: order.datetime,"
    " units: sum(order.items[].quantity), lines: order.items[].{sku: id, qty: quantity}}"
)


def registrations(base_url: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "delivery",
            "url": f"{base_url}/delivery",
            "auth": {"type": "hmac", "secret": HMAC_SECRET},
            "deliver_within_seconds": DELIVER_WITHIN_SECONDS,
        },
        {
            "name": "loyalty",
            "url": f"{base_url}/loyalty",
            "auth": {"type": "api_key", "header": "X-Loyalty-Key", "key": API_KEY},
            "payload_template": LOYALTY_TEMPLATE,
        },
        {
            "name": "food-ordering",
            "url": f"{base_url}/food-ordering",
            "auth": {
                "type": "oauth2_client_credentials",
                "token_url": f"{base_url}/oauth/token",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "scope": "orders:write",
            },
            "ack_within_seconds": ACK_WITHIN_SECONDS,
        },
    ]


def _verify_hmac(headers: Any, body: bytes) -> bool:
    key = base64.b64decode(HMAC_SECRET.removeprefix("whsec_"))
    signed = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, sig) for sig in (headers.get("webhook-signature") or "").split())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many deliveries connect at once; the default backlog of 5 resets them


class DemoPartners:
    def __init__(self, say: Callable[[str, str], None], step_seconds: float = 1.0) -> None:
        self.say = say
        self.step = step_seconds
        self.callback_secrets: dict[str, str] = {}
        self.callback_urls: dict[str, str] = {}
        self.issued_tokens: set[str] = set()
        self.received: dict[str, int] = {}
        self._count = threading.Lock()
        self.down_until: dict[str, float] = {}
        self._stop = threading.Event()
        partners = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, reply = partners.handle(self.path, self.headers, body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="demo-partners", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def _authorised(self, name: str, headers: Any, body: bytes) -> bool:
        if name == "delivery":
            return _verify_hmac(headers, body)
        if name == "loyalty":
            return hmac.compare_digest(headers.get("X-Loyalty-Key") or "", API_KEY)
        token = (headers.get("Authorization") or "").removeprefix("Bearer ")
        return token in self.issued_tokens

    def outage(self, name: str, seconds: float) -> tuple[int, dict[str, Any]]:
        """`POST /control/outage/<partner>?seconds=N`: the partner answers 503 for N seconds (watch its circuit)."""
        if name not in PLANS:
            return 404, {"error": "unknown partner"}
        self.down_until[name] = time.monotonic() + seconds
        self.say(name, f"is down for {seconds:.0f} s (answers 503)" if seconds else "is back up")
        return 200, {"partner": name, "down_for_seconds": seconds}

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        route, _, query = path.partition("?")
        if route.startswith("/control/outage/"):
            seconds = float(parse_qs(query).get("seconds", ["60"])[0])
            return self.outage(route.removeprefix("/control/outage/"), min(max(seconds, 0.0), 3600.0))
        if path == "/oauth/token":
            form = parse_qs(body.decode())
            basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if headers.get("Authorization") != f"Basic {basic}" or form.get("grant_type") != ["client_credentials"]:
                return 401, {"error": "invalid_client"}
            token = secrets.token_urlsafe(24)
            self.issued_tokens.add(token)
            return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
        name = path.strip("/")
        if name not in PLANS:
            return 404, {"error": "unknown partner"}
        if time.monotonic() < self.down_until.get(name, 0.0):
            return 503, {"error": "temporarily unavailable (demo outage)"}
        if not self._authorised(name, headers, body):
            self.say(name, "refused a request with bad credentials")
            return 401, {"error": "unauthorised"}
        received = json.loads(body)
        event = headers.get("X-Order-Event")
        # The seed's shape carries `order.id`; the loyalty programme's own shape calls it `ref`.
        order_id = str(received["ref"] if name == "loyalty" else received["order"]["id"])
        if event == "order.created" and not self._stays_silent(name):
            self._walk(name, order_id)
        elif event == "order.created":
            self.say(name, f"took {order_id} and will not call back")
        return 200, {"external_id": f"{name[:3].upper()}-{secrets.token_hex(3)}", "received": event}

    def _stays_silent(self, name: str) -> bool:
        if name != "food-ordering":
            return False
        with self._count:
            self.received[name] = self.received.get(name, 0) + 1
            return self.received[name] % SILENT_EVERY == 0

    def _walk(self, name: str, order_id: str) -> None:
        def run() -> None:
            waited = 0
            for step, status in PLANS[name]:
                if self._stop.wait((step - waited) * self.step):
                    return
                waited = step
                self.callback(name, order_id, status)

        threading.Thread(target=run, name=f"demo-{name}-{order_id}", daemon=True).start()

    def callback(self, name: str, order_id: str, status: str) -> None:
        secret, url = self.callback_secrets.get(name), self.callback_urls.get(name)
        if not secret or not url:
            return
        body = json.dumps({"order_id": order_id, "status": status, "message": f"{name} says {status}"}).encode()
        headers = {"Content-Type": "application/json", **signature_headers(secret, f"cb_{secrets.token_hex(8)}", body)}
        try:
            response = requests.post(url, data=body, headers=headers, timeout=5)
        except requests.RequestException as exc:
            self.say(name, f"callback {status} failed: {exc}")
            return
        outcome = response.json().get("applied") if response.status_code < 300 else response.status_code
        self.say(
            name,
            f"callback {status}: "
            + (
                "moved the order"
                if outcome is True
                else "kept on its delivery"
                if outcome is False
                else f"HTTP {outcome}"
            ),
        )
