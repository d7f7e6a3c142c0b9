"""Fan-out and in-process speed, against a moto server (so AWS calls are I/O, as in Lambda).

1. One SQS batch of 10 orders to 3 integrators that each answer in 100 ms: wall time against one call (a batch of
   one order) and against the sequential sum (the same 30 POSTs one after another, measured in the same run).
2. In-process, warm: `POST /orders` through the app against the bare boto3 calls it makes (recorded, replayed).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.aws_requests import recording
from bench.stack import REGION, api_client, call, stack

DELAY = 0.1
INTEGRATORS = ("food-ordering", "delivery", "loyalty")


@dataclass
class FanOut:
    one_order: float
    batch: float
    batch_instant: float
    sequential: float
    post_orders_ms: float
    bare_boto3_ms: float
    post_orders_calls: int


def _messages(sqs: Any, url: str, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while len(found) < count:
        found += sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, count - len(found)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
    return found


def measure(repeats: int = 3) -> FanOut:
    import boto3
    import requests

    from tests.support.fake_integrator import FakeIntegrator, Reply
    from tools.localstack import example_order
    from tools.poller import run_batch

    with stack("fanout") as env, FakeIntegrator() as fake, tempfile.TemporaryDirectory() as tmp:
        import app as application

        app = application.app
        sqs = boto3.client("sqs", region_name=REGION)
        url = env["ORDERS_QUEUE_URL"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        with api_client(app, Path(tmp)) as client:
            for name in INTEGRATORS:
                fake.default(f"/{name}", Reply(200, json={"ok": True}, delay=DELAY))
                call(
                    client,
                    "POST",
                    "/api/v1/integrators",
                    {"name": name, "url": fake.url(f"/{name}"), "auth": {"type": "none"}},
                )

            def batch_of(orders: int) -> float:
                for _ in range(orders):
                    call(client, "POST", "/api/v1/orders", json.loads(example_order()))
                messages = _messages(sqs, url, orders)
                before = len(fake.requests())
                started = time.perf_counter()
                result = run_batch(app, "dispatch_orders", sqs, url, messages, arn, REGION)
                elapsed = time.perf_counter() - started
                assert not result.failed_ids and len(fake.requests()) - before == orders * len(INTEGRATORS)
                return elapsed

            batch_of(1)  # warm container: clients, connections, caches
            one = statistics.median(batch_of(1) for _ in range(repeats))
            batch = statistics.median(batch_of(10) for _ in range(repeats))
            for name in INTEGRATORS:
                fake.default(f"/{name}", Reply(200, json={"ok": True}))
            instant = batch_of(10)
            for name in INTEGRATORS:
                fake.default(f"/{name}", Reply(200, json={"ok": True}, delay=DELAY))
            http = requests.Session()
            sequential = []
            for _ in range(1):
                started = time.perf_counter()
                for _ in range(10):
                    for name in INTEGRATORS:
                        http.post(fake.url(f"/{name}"), json={"bench": True}, timeout=5).raise_for_status()
                sequential.append(time.perf_counter() - started)

            # In-process POST /orders (warm) against its own AWS calls made with bare boto3.
            body = json.loads(example_order())
            call(client, "POST", "/api/v1/orders", body)
            with recording() as log:
                call(client, "POST", "/api/v1/orders", body)
            session = boto3.session.Session(region_name=REGION)
            clients: dict[str, Any] = {service: session.client(service) for service, _, _ in log.calls}  # type: ignore[call-overload]
            from botocore import xform_name

            api_times, bare_times = [], []
            for _ in range(20):
                started = time.perf_counter()
                assert call(client, "POST", "/api/v1/orders", body).status_code == 201
                api_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                for service, operation, params in log.calls:
                    try:
                        getattr(clients[service], xform_name(operation))(**params)
                    except clients[service].exceptions.ClientError:
                        pass
                bare_times.append(time.perf_counter() - started)
    return FanOut(
        one,
        batch,
        instant,
        statistics.median(sequential),
        statistics.median(api_times) * 1000,
        statistics.median(bare_times) * 1000,
        len(log.calls),
    )


if __name__ == "__main__":
    print(measure())
