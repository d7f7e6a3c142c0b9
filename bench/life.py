"""AWS requests of one order's whole life, step by step: created, sent to three integrators, six signed callbacks
walking it to `delivered`, the notifications, and the sweeper when idle.

Driven only through public surfaces (HTTP routes via chalice.test.Client, the SQS handler via tools.poller, the
schedule via `app.handler_map`) against a moto server, and counted with bench.aws_requests. Run twice: the
first order in fresh containers (every per-container cache cold) and a second one in warm containers.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.aws_requests import AwsRequest, RequestLog, recording
from bench.stack import ADMIN_TOKEN, REGION, api_client, call, register_partners, signed, stack

ORDERS = "/api/v1/orders"
INTEGRATORS = ("food-ordering", "delivery", "loyalty")
# The demo partners' plans (tools/demo_integrators.py): the kitchen accepts and cooks, the loyalty programme
# acknowledges (too late to move the order), the courier picks up and delivers.
CALLBACKS = (
    ("food-ordering", "accepted"),
    ("loyalty", "accepted"),
    ("food-ordering", "preparing"),
    ("food-ordering", "ready"),
    ("delivery", "picked_up"),
    ("delivery", "delivered"),
)
# What Lambda's SQS event source does on its own account (continuous long polling, billed per poll, not per
# order); the local poller makes these calls in its place. Its DeleteMessageBatch is per batch and counted.
POLLING = {("sqs", "ReceiveMessage"), ("sqs", "GetQueueAttributes")}


@dataclass
class Step:
    name: str
    requests: list[AwsRequest]
    note: str = ""
    parts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return len(self.requests)

    def summary(self) -> str:
        return RequestLog(self.requests).summary()


@dataclass
class Life:
    label: str
    steps: list[Step]
    sizes: dict[str, float] = field(default_factory=dict)

    def total(self, *, include: tuple[str, ...] = ()) -> int:
        return sum(s.total for s in self.steps if s.name in include or not s.name.startswith(("authorizer", "sweeper")))

    def counts(self) -> Counter[tuple[str, str]]:
        found: Counter[tuple[str, str]] = Counter()
        for step in self.steps:
            if not step.name.startswith(("authorizer", "sweeper")):
                found.update((r.service, r.operation) for r in step.requests)
        return found


def _is_notification(request: AwsRequest, idempotency_table: str) -> bool:
    if request.service == "sns":
        return True
    return request.target == idempotency_table and request.key.startswith("notification#")


def _split(name: str, log: RequestLog, env: dict[str, str]) -> list[Step]:
    """One recorded step, split into its own requests, the authorizer's and the notifications' (told apart by the
    table they name and Powertools' idempotency key prefix)."""
    own, auth, notes = [], [], []
    for request in log.requests:
        if (request.service, request.operation) in POLLING:
            continue
        if request.target == env["TOKENS_TABLE"]:
            auth.append(request)
        elif _is_notification(request, env["IDEMPOTENCY_TABLE"]):
            notes.append(request)
        else:
            own.append(request)
    steps = [Step(name, own)]
    if auth:
        steps.append(Step(f"authorizer ({name})", auth, "API Gateway caches the answer per token for 60 s"))
    if notes:
        steps.append(Step(f"  notification ({name})", notes))
    return steps


def _threads(log: RequestLog) -> dict[str, int]:
    """Requests per kind of worker thread (names are the dispatcher's; informative only)."""
    found: Counter[str] = Counter()
    for request in log.requests:
        if (request.service, request.operation) in POLLING:
            continue
        found[request.thread.rstrip("0123456789_").rstrip("-_") or "main"] += 1
    return dict(found)


def one_life(label: str, client: Any, app: Any, env: dict[str, str], secrets: dict[str, str], seller: str) -> Life:
    import boto3

    from tools.poller import poll_once

    sqs = boto3.client("sqs", region_name=REGION)
    steps: list[Step] = []
    started = time.perf_counter()
    with recording() as log:
        created = call(client, "POST", ORDERS, _order(), token=seller)
    took = time.perf_counter() - started
    assert created.status_code == 201, created.body
    order_id = created.json_body["id"]
    split = _split("create (POST /orders)", log, env)
    split[0].seconds = took
    steps += split

    started = time.perf_counter()
    with recording() as log:
        batch = poll_once(app, sqs, env["ORDERS_QUEUE_URL"])
    took = time.perf_counter() - started
    assert batch.received == 1 and not batch.failed_ids, batch
    dispatch = _split("dispatch: 1 order to 3 integrators (one SQS batch)", log, env)
    dispatch[0].seconds = took
    dispatch[0].parts = _threads(RequestLog(dispatch[0].requests))
    steps += dispatch

    for n, (integrator, status) in enumerate(CALLBACKS, 1):
        body = json.dumps({"order_id": order_id, "status": status}).encode()
        headers = signed(secrets[integrator], f"cb_{label}_{n}_{time.monotonic_ns()}", body)
        started = time.perf_counter()
        with recording() as log:
            answer = call(client, "POST", f"/api/v1/callbacks/{integrator}", body, token=None, **headers)
        took = time.perf_counter() - started
        assert answer.status_code == 200, answer.body
        applied = "moves the order" if answer.json_body["applied"] else "kept on the delivery only"
        split = _split(f"callback {n}: {integrator} {status} ({applied})", log, env)
        split[0].seconds = took
        steps += split

    with recording() as log:
        rest = poll_once(app, sqs, env["ORDERS_QUEUE_URL"])
    assert rest.received == 0, "nothing left on the queue"
    order = call(client, "GET", f"{ORDERS}/{order_id}").json_body
    assert order["status"] == "delivered", order["status"]

    from tools.localstack import scheduled_event
    from tools.poller import lambda_context

    with recording() as log:
        app.handler_map["sweep_outbox"](scheduled_event(), lambda_context("sweep_outbox"))
    steps.append(Step("sweeper, idle (every minute, not per order)", log.requests))
    return Life(label, steps, _item_sizes(env, order_id))


def _item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (strings and numbers close enough as their text)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        kind, raw = next(iter(value.items()))
        if kind in ("M", "L"):
            size += 3 + len(json.dumps(raw).encode())
        elif kind in ("NULL", "BOOL"):
            size += 1
        else:
            size += len(str(raw).encode())
    return size


def _item_sizes(env: dict[str, str], order_id: str) -> dict[str, float]:
    """Average KB of this order's items per table (orders, delivery rows, idempotency records)."""
    import boto3

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    order = dynamodb.get_item(TableName=env["ORDERS_TABLE"], Key={"id": {"S": order_id}})["Item"]
    rows = dynamodb.query(
        TableName=env["DELIVERIES_TABLE"],
        KeyConditionExpression="order_id = :o",
        ExpressionAttributeValues={":o": {"S": order_id}},
    )["Items"]
    idem = dynamodb.scan(TableName=env["IDEMPOTENCY_TABLE"], Limit=50)["Items"]

    def mean(items: list[dict[str, Any]]) -> float:
        return sum(_item_size(i) for i in items) / max(1, len(items)) / 1024

    return {
        "orders": _item_size(order) / 1024,
        "deliveries": mean(rows),
        "idempotency": mean(idem),
    }


def _order() -> dict[str, Any]:
    from tools.localstack import example_order

    data: dict[str, Any] = json.loads(example_order())
    return data


@dataclass
class Lives:
    cold: Life
    warm: Life
    keyed_create: Step
    setup: dict[str, int]


WARM_LIVES = 5  # the warm life's step durations (Lambda GB-seconds in dollars) are the median of this many runs


def _median_times(lives: list[Life]) -> Life:
    """The first life, with each step's duration the median of that step's in every life: the requests are the
    same in each (the tests pin them), the durations move with whatever else the shared machine is doing."""
    first = lives[0]
    for n, step in enumerate(first.steps):
        step.seconds = statistics.median(life.steps[n].seconds for life in lives if len(life.steps) == len(first.steps))
    return first


def measure() -> Lives:
    from tests.support.fake_integrator import FakeIntegrator
    from tools.caches import reset_all

    with stack() as env, FakeIntegrator() as fake, tempfile.TemporaryDirectory() as tmp:
        import app as application

        app = application.app
        with api_client(app, Path(tmp)) as client:
            secrets = register_partners(client, fake, INTEGRATORS)
            token = call(client, "POST", "/api/v1/tokens", {"role": "seller", "seller_id": "s-1"})
            seller = token.json_body["token"]

            reset_all()  # fresh containers: every per-process cache empty, as after a deploy
            cold = one_life("cold", client, app, env, secrets, seller)
            warm = _median_times([one_life(f"warm{n}", client, app, env, secrets, seller) for n in range(WARM_LIVES)])

            with recording() as log:
                keyed = call(client, "POST", ORDERS, _order(), token=seller, **{"Idempotency-Key": "bench-key-1"})
            assert keyed.status_code == 201
            keyed_steps = _split("create with an Idempotency-Key", log, env)
            assert ADMIN_TOKEN
    return Lives(cold, warm, keyed_steps[0], {})
