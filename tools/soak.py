"""`make soak`: orders from concurrent clients through the local stack to three integrators on loopback, one
failing 30% of calls at random and one answering in 1-2 s; then proof that nothing was lost or sent twice.

    python -m tools.soak --orders 2000 --clients 20

Every order must end delivered to all three, or failed exactly where the flaky integrator gave up (it refused
every attempt); no webhook-id may be accepted twice. Prints orders/second, create latency p50/p99, time to
drain and the longest wait from create to first delivery (the queue's age, seen from the outside).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from tools.sample_order import order_body
from tools.stack_process import local_stack


@dataclass
class Partner:
    """One integrator on loopback that counts what it accepted and refused, per webhook-id."""

    name: str
    fail_rate: float = 0.0
    delay: tuple[float, float] = (0.0, 0.0)
    accepted: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    order_of: dict[str, str] = field(default_factory=dict)
    first_seen: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        partner = self
        pause = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                webhook_id = self.headers.get("webhook-id", "")
                if partner.delay[1]:
                    pause.wait(random.uniform(*partner.delay))
                ok = random.random() >= partner.fail_rate
                with partner.lock:
                    partner.order_of[webhook_id] = json.loads(body)["order"]["id"]
                    if ok:
                        partner.accepted[webhook_id] += 1
                        partner.first_seen.setdefault(webhook_id, time.monotonic())
                    else:
                        partner.refused[webhook_id] += 1
                reply = b'{"ok": true}' if ok else b'{"error": "flaky"}'
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.request_queue_size = 256
        self.server = server
        threading.Thread(target=server.serve_forever, name=f"partner-{self.name}", daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}/{self.name}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def progress(text: str) -> None:
    """A line on stderr now and then: a 2,000-order run takes a quarter of an hour or more."""
    print(f"soak: {text}", file=sys.stderr, flush=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _create_all(api: str, token: str, orders: int, clients: int) -> tuple[list[tuple[str, float]], list[float], float]:
    """(order id, monotonic time created) for every order, the create latencies, and the seconds it took."""
    local = threading.local()
    created = Counter[str]()
    created_lock = threading.Lock()

    def create(n: int) -> tuple[str, float, float]:
        if not hasattr(local, "http"):
            local.http = requests.Session()
            local.http.headers["Authorization"] = f"Bearer {token}"
        started = time.monotonic()
        for _ in range(30):  # a refused, timed-out or still-running create is repeated with the same key
            try:
                response = local.http.post(
                    f"{api}/api/v1/orders",
                    json=order_body(user_id=f"u-soak-{n}"),
                    headers={"Idempotency-Key": f"soak-{n}"},
                    timeout=30,
                )
            except (requests.ConnectionError, requests.Timeout):
                continue  # as a real till would: the Idempotency-Key makes the repeat safe
            if response.status_code == 409 and "Retry-After" in response.headers:
                # Our timed-out first try is still running; its answer comes back on a repeat after Retry-After.
                time.sleep(float(response.headers["Retry-After"]))
                continue
            break
        else:
            raise RuntimeError(f"order {n} could not be created")
        response.raise_for_status()
        done = time.monotonic()
        with created_lock:
            created["orders"] += 1
            if created["orders"] % 250 == 0:
                progress(f"{created['orders']} of {orders} orders created")
        return str(response.json()["id"]), done, done - started

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(create, range(orders)))
    return [(oid, at) for oid, at, _ in results], [lat for _, _, lat in results], time.monotonic() - began


def _deliveries(api: str, token: str, order_ids: list[str], clients: int) -> dict[str, dict[str, dict[str, Any]]]:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"

    def read(order_id: str) -> tuple[str, dict[str, dict[str, Any]]]:
        for _ in range(5):  # a read that times out under load is simply asked again
            try:
                body = http.get(f"{api}/api/v1/orders/{order_id}", timeout=30).json()
                return order_id, {d["integrator"]: d for d in body["deliveries"]}
            except (requests.ConnectionError, requests.Timeout):
                continue
        return order_id, {}  # still pending: the drain loop asks again on its next round

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return dict(pool.map(read, order_ids))


def _done_at_partners(partners: list[Partner], attempts: int) -> set[str]:
    """Orders every partner accepted, or that the flaky partner refused at least `attempts` times (it may have
    given up on them; a failed probe spends no attempt, so some of these are still on their way)."""
    by_name = {p.name: p for p in partners}
    with by_name["flaky"].lock:
        flaky = by_name["flaky"]
        flaky_done = {flaky.order_of[w] for w in flaky.accepted} | {
            flaky.order_of[w] for w, n in flaky.refused.items() if n >= attempts
        }
    done = flaky_done
    for name in ("steady", "slow"):
        with by_name[name].lock:
            done &= {by_name[name].order_of[w] for w in by_name[name].accepted}
    return done


def _settled(states: dict[str, dict[str, Any]], names: list[str]) -> bool:
    return all(states.get(n, {}).get("status") in ("delivered", "failed") for n in names)


def run(orders: int, clients: int, drain_timeout: float, state_dir: Path) -> dict[str, Any]:  # noqa: PLR0915
    partners = [Partner("steady"), Partner("flaky", fail_rate=0.3), Partner("slow", delay=(1.0, 2.0))]
    names = [p.name for p in partners]
    env = {
        "DISPATCH_RETRY_DELAYS": "1,1,2,2",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "ORDER_RELAY_POLLERS": "4",
        # The flaky partner can open its circuit now and then (5 failures in a row): a short cooldown keeps the
        # drain about load, not about waiting out the default 30 s.
        "CIRCUIT_COOLDOWN_SECONDS": "5",
    }
    try:
        urls = {p.name: p.start() for p in partners}
        with local_stack(state_dir, env) as stack:
            api, admin = stack["api_url"], stack["admin_token"]
            for name, url in urls.items():
                response = requests.post(
                    f"{api}/api/v1/integrators",
                    json={"name": name, "url": url, "auth": {"type": "none"}, "timeout_seconds": 5},
                    headers={"Authorization": f"Bearer {admin}"},
                    timeout=30,
                )
                response.raise_for_status()
            created, latencies, create_seconds = _create_all(api, stack["seller_token"], orders, clients)
            creates_done = time.monotonic()
            order_ids = [oid for oid, _ in created]
            pause = threading.Event()
            deadline = creates_done + drain_timeout
            pending = set(order_ids)
            states: dict[str, dict[str, dict[str, Any]]] = {}
            told = creates_done
            while pending and time.monotonic() < deadline:
                # Only orders the partners say are done are read back (reading all 2,000 every second would be
                # most of the stack's load): accepted by all three, or refused by the flaky one attempts times.
                done = _done_at_partners(partners, attempts=5)
                candidates = [oid for oid in pending if oid in done]
                if candidates:
                    found = _deliveries(api, admin, candidates, clients)
                    states.update(found)
                    pending -= {oid for oid, s in found.items() if _settled(s, names)}
                if pending:
                    if time.monotonic() - told >= 30:
                        told = time.monotonic()
                        progress(f"{len(pending)} orders not settled yet")
                    pause.wait(1.0)
            drain_seconds = time.monotonic() - creates_done
            return _verdict(partners, created, states, pending, latencies, create_seconds, drain_seconds)
    finally:
        for partner in partners:
            partner.stop()


def _check_orders(
    partners: list[Partner], created: list[tuple[str, float]], states: dict[str, dict[str, dict[str, Any]]]
) -> tuple[list[str], int]:
    """What is wrong with any order's deliveries, and how many ended failed at the flaky integrator."""
    problems: list[str] = []
    accepted_orders: dict[str, set[str]] = defaultdict(set)
    for partner in partners:
        for webhook_id in partner.accepted:
            accepted_orders[partner.name].add(partner.order_of[webhook_id])
    flaky_failed = 0
    for order_id, _ in created:
        state = states.get(order_id, {})
        for name in ("steady", "slow"):
            if order_id not in accepted_orders[name] or state.get(name, {}).get("status") != "delivered":
                problems.append(f"{order_id} not delivered to {name}")
        flaky = state.get("flaky", {}).get("status")
        if flaky == "failed":
            flaky_failed += 1
            if order_id in accepted_orders["flaky"]:
                problems.append(f"{order_id} marked failed but the flaky integrator accepted it")
        elif flaky != "delivered" or order_id not in accepted_orders["flaky"]:
            problems.append(f"{order_id} neither delivered to nor failed at flaky ({flaky})")
    return problems, flaky_failed


def _verdict(
    partners: list[Partner],
    created: list[tuple[str, float]],
    states: dict[str, dict[str, dict[str, Any]]],
    pending: set[str],
    latencies: list[float],
    create_seconds: float,
    drain_seconds: float,
) -> dict[str, Any]:
    problems: list[str] = []
    by_name = {p.name: p for p in partners}
    duplicates = sum(n - 1 for p in partners for n in p.accepted.values() if n > 1)
    if duplicates:
        problems.append(f"{duplicates} webhook-ids accepted more than once")
    if pending:
        problems.append(f"{len(pending)} orders never settled, e.g. {sorted(pending)[:3]}")
    order_problems, flaky_failed = _check_orders(partners, created, states)
    problems += order_problems
    created_at = dict(created)
    first_delivery: dict[str, float] = {}
    for partner in partners:
        for webhook_id, seen in partner.first_seen.items():
            order_id = partner.order_of[webhook_id]
            first_delivery[order_id] = min(first_delivery.get(order_id, seen), seen)
    waits = [max(0.0, first_delivery[oid] - at) for oid, at in created_at.items() if oid in first_delivery]
    return {
        "orders": len(created),
        "orders_per_second": round(len(created) / create_seconds, 1),
        "create_latency_ms_p50": round(percentile(latencies, 0.5) * 1000, 1),
        "create_latency_ms_p99": round(percentile(latencies, 0.99) * 1000, 1),
        "drain_seconds": round(drain_seconds, 1),
        "largest_queue_age_seconds": round(max(waits, default=0.0), 1),
        "median_queue_age_seconds": round(statistics.median(waits), 2) if waits else 0.0,
        "accepted": {p.name: sum(p.accepted.values()) for p in partners},
        "refused_by_flaky": sum(by_name["flaky"].refused.values()),
        "failed_at_flaky": flaky_failed,
        "lost": len(pending),
        "duplicates": duplicates,
        "problems": problems[:20],
        "ok": not problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--drain-timeout", type=float, default=1800.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="order-relay-soak-") as state:
        result = run(args.orders, args.clients, args.drain_timeout, Path(state))
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
