"""Live tracking's cost and speed: AWS requests and dollars per customer-facing change per watching page, and the
time from the fan-out's start to the last page's frame, with 1, 10 and 100 pages open (moto server, the local
WebSocket API, real WebSocket clients).

Per change the fan-out pays a fixed part (its Lambda invocation, the order, its deliveries, the revocation row,
one Query per shard) and, per watcher, one PostToConnection (an API Gateway message) and its share of the shard
Queries. `make bench` prints the table and writes it into docs/live-tracking.md between the bench markers.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import prices
from bench.aws_requests import recording
from bench.stack import api_client, call, stack

ROOT = Path(__file__).resolve().parent.parent
WATCHERS = (1, 10, 100)
FAN_OUT_MEMORY_GB = 0.5  # push_tracking's lambda_memory_size (.chalice/config.json)
BEGIN, END = "<!-- bench:tracking -->", "<!-- /bench:tracking -->"


@dataclass(frozen=True)
class Row:
    watchers: int
    requests: dict[str, int]
    seconds: float  # fan-out start -> every page has the frame
    dollars_per_change: float

    @property
    def per_watcher(self) -> float:
        return self.dollars_per_change / self.watchers


def dollars(requests: dict[str, int], seconds: float) -> float:
    """One change: the SNS-triggered invocation (SNS to Lambda delivery is free), its duration, DynamoDB reads
    (one read unit each at most: the rows are small), deletes, and API Gateway messages."""
    reads = sum(n for op, n in requests.items() if op in ("dynamodb.GetItem", "dynamodb.Query"))
    writes = requests.get("dynamodb.DeleteItem", 0)
    messages = requests.get("apigatewaymanagementapi.PostToConnection", 0)
    return (
        prices.LAMBDA_REQUEST_PER_M / 1e6
        + seconds * FAN_OUT_MEMORY_GB * prices.LAMBDA_GB_SECOND
        + reads * prices.DYNAMODB_RRU_PER_M / 1e6
        + writes * prices.DYNAMODB_WRU_PER_M / 1e6
        + messages * prices.WEBSOCKET_MESSAGES_PER_M / 1e6
    )


def measure() -> list[Row]:
    from websockets.sync.client import connect

    from chalicelib.settings import reset_settings
    from chalicelib.tracking.fanout import push_order, reset_client
    from tools.local_websocket import LocalWebsocketApi
    from tools.sample_order import order_body

    rows = []
    with stack("bench-tracking"), tempfile.TemporaryDirectory() as tmp:
        import app as application

        gateway = LocalWebsocketApi(application.app).start()
        os.environ.update(TRACKING_WEBSOCKET_URL=gateway.websocket_url, TRACKING_MANAGEMENT_URL=gateway.management_url)
        reset_settings()
        reset_client()
        try:
            with api_client(application.app, Path(tmp)) as client:
                for count in WATCHERS:
                    order = call(client, "POST", "/api/v1/orders", order_body()).json_body
                    token = order["tracking_url"].split("#", 1)[1]
                    opened = contextlib.ExitStack()
                    pages = [
                        opened.enter_context(connect(f"{gateway.websocket_url}?token={token}")) for _ in range(count)
                    ]
                    push_order(order["id"])  # warm: clients and connections made
                    for page in pages:
                        page.recv(timeout=10)
                    done = threading.Barrier(count + 1)

                    def read(page: Any, done: threading.Barrier = done) -> None:
                        json.loads(page.recv(timeout=30))
                        done.wait()

                    for page in pages:
                        threading.Thread(target=read, args=(page,), daemon=True).start()
                    with recording() as log:
                        started = time.perf_counter()
                        push_order(order["id"])
                        fan_out = time.perf_counter() - started
                    done.wait(30)
                    seconds = time.perf_counter() - started
                    requests = {f"{s}.{o}": n for (s, o), n in log.counts().items()}
                    rows.append(Row(count, requests, seconds, dollars(requests, fan_out)))
                    opened.close()
        finally:
            gateway.stop()
            reset_client()
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| pages watching | AWS requests per change | fan-out to last frame | $ per change | $ per change "
        "per watcher |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        requests = ", ".join(f"{op.split('.', 1)[1]} {n}" for op, n in sorted(row.requests.items()))
        lines.append(
            f"| {row.watchers} | {sum(row.requests.values())} ({requests}) | {row.seconds * 1000:.0f} ms "
            f"| {row.dollars_per_change:.8f} | {row.per_watcher:.8f} |"
        )
    lines.append(
        f"\nPlus, per page and minute open, ${prices.WEBSOCKET_CONNECTION_MINUTES_PER_M}/M connection minutes "
        f"(${prices.WEBSOCKET_CONNECTION_MINUTES_PER_M * 60 / 1e6:.7f} an hour), a keep-alive message every 5 "
        "minutes, and per (re)connect one `$connect` (2 GetItem, 1 PutItem, a cached secret) and one `GET /track`."
    )
    return "\n".join(lines)


def write(rows: list[Row], path: Path = ROOT / "docs" / "live-tracking.md") -> None:
    text = path.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        path.write_text(head + BEGIN + "\n" + table(rows) + "\n" + END + rest.split(END, 1)[1])


if __name__ == "__main__":
    measured = measure()
    print(table(measured))
    write(measured)
