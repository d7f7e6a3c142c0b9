"""Requests and items read for list pages, a dispatch and a callback with 1,000 and with 50,000 orders in the
table: each should cost the same whatever the table holds.

The table is filled with BatchWriteItem straight to DynamoDB, cloning one order the API created (its id swapped
everywhere, its shard recomputed), spread over SELLERS sellers and a status mix (a quarter `accepted`, the rest
`delivered`), so the fill has whatever attributes and index keys the service writes today.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.aws_requests import recording
from bench.stack import REGION, api_client, call, register_partners, signed, stack

SIZES = (1_000, 3_000) if os.environ.get("BENCH_QUICK") else (1_000, 50_000)
SELLERS = 20
ORDERS_PER_SIZE = 3  # the dispatched-status race between delivery threads varies a dispatch by a request or two


@dataclass
class Cost:
    requests: int
    items_read: int


@dataclass
class Scale:
    size: int
    list_page: Cost
    seller_page: Cost  # one seller of SELLERS, a status filter
    status_page: Cost  # every seller, a status filter
    dispatch: list[Cost]
    callback: list[Cost]
    fill_seconds: float


def _clone(template: dict[str, Any], old: str, new: str, n: int) -> dict[str, Any]:
    from chalicelib.db.orders import shard_key

    text = json.dumps({k: v for k, v in template.items() if k != "doc"}).replace(old, new)
    item: dict[str, Any] = json.loads(text)
    for name in [k for k in item if k.startswith("outbox")]:
        del item[name]
    seller = f"s-{n % SELLERS + 1}"
    item["shard"] = {"S": shard_key(new)}
    item["seller_id"] = {"S": seller}
    content = json.loads(zlib.decompress(template["doc"]["B"]))  # the order's compressed document
    content["seller"]["id"] = seller
    item["doc"] = {"B": zlib.compress(json.dumps(content).encode())}
    item["status"] = {"S": "accepted" if (n // SELLERS) % 4 == 0 else "delivered"}
    return item


def _fill(table: str, template: dict[str, Any], old: str, start: int, stop: int) -> None:
    import boto3

    dynamodb = boto3.client("dynamodb", region_name=REGION)

    def write(first: int) -> None:
        items = [_clone(template, old, f"ord_fill{n:07d}", n) for n in range(first, min(first + 25, stop))]
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in items]}
        while pending:
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(8) as pool:  # the moto server is the bottleneck; keep it busy
        list(pool.map(write, range(start, stop, 25)))


def measure() -> list[Scale]:
    import boto3

    from tests.support.fake_integrator import FakeIntegrator
    from tools.localstack import example_order
    from tools.poller import poll_once

    results: list[Scale] = []
    with stack("scale") as env, FakeIntegrator() as fake, tempfile.TemporaryDirectory() as tmp:
        import app as application

        app = application.app
        sqs = boto3.client("sqs", region_name=REGION)
        with api_client(app, Path(tmp)) as client:
            secrets = register_partners(client, fake, ("food-ordering", "delivery", "loyalty"))
            first = call(client, "POST", "/api/v1/orders", json.loads(example_order())).json_body["id"]
            poll_once(app, sqs, env["ORDERS_QUEUE_URL"])
            template = boto3.client("dynamodb", region_name=REGION).get_item(
                TableName=env["ORDERS_TABLE"], Key={"id": {"S": first}}
            )["Item"]
            filled = 1
            for size in SIZES:
                started = time.perf_counter()
                _fill(env["ORDERS_TABLE"], template, first, filled, size)
                filled = size
                fill_seconds = time.perf_counter() - started
                dispatch, callback = [], []
                for n in range(ORDERS_PER_SIZE):
                    order_id = call(client, "POST", "/api/v1/orders", json.loads(example_order())).json_body["id"]
                    with recording() as log:
                        batch = poll_once(app, sqs, env["ORDERS_QUEUE_URL"])
                    assert batch.received == 1 and not batch.failed_ids
                    polling = sum(1 for r in log.requests if r.operation in ("ReceiveMessage", "GetQueueAttributes"))
                    dispatch.append(Cost(log.total - polling, log.items_read))
                    body = json.dumps({"order_id": order_id, "status": "accepted"}).encode()
                    headers = signed(secrets["food-ordering"], f"cb_scale_{size}_{n}", body)
                    with recording() as log:
                        answer = call(client, "POST", "/api/v1/callbacks/food-ordering", body, token=None, **headers)
                    assert answer.status_code == 200, answer.body
                    callback.append(Cost(log.total, log.items_read))
                with recording() as log:
                    page = call(client, "GET", "/api/v1/orders?limit=20")
                assert page.status_code == 200 and len(page.json_body["items"]) == 20
                list_page = Cost(log.total, log.items_read)
                with recording() as log:
                    page = call(client, "GET", "/api/v1/orders?limit=20&seller_id=s-2&status=accepted")
                assert page.status_code == 200 and page.json_body["items"]
                seller_page = Cost(log.total, log.items_read)
                with recording() as log:
                    page = call(client, "GET", "/api/v1/orders?limit=20&status=accepted")
                assert page.status_code == 200 and page.json_body["items"]
                status_page = Cost(log.total, log.items_read)
                results.append(Scale(size, list_page, seller_page, status_page, dispatch, callback, fill_seconds))
    return results


if __name__ == "__main__":
    for row in measure():
        print(row)
