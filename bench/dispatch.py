"""Dispatch benchmark: one SQS batch of N orders to M integrators that each answer after `delay` seconds.

AWS is a moto server in its own process (so DynamoDB and SQS calls are I/O for the dispatcher, as in Lambda);
the integrators are a real HTTP server on loopback. The baseline, measured in the same run, is the same
deliveries made one after another.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import time
from typing import Any


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure(orders: int, integrators: int, delay: float) -> tuple[float, float]:
    from tools.localstack import start_moto

    port = _free_port()
    moto = start_moto(port)
    try:
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1",
                "ALLOW_LOOPBACK_INTEGRATORS": "true",
                "POWERTOOLS_LOG_LEVEL": "ERROR",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "SQS_PARTIAL_BATCH_RESPONSE": "true",
            }
        )
        from infra.resources import provision
        from tools.caches import reset_all

        reset_all()

        os.environ.update(provision("bench", region="us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL"]))
        return _run(orders, integrators, delay)
    finally:
        moto.terminate()
        moto.wait(10)


def _run(orders: int, integrators: int, delay: float) -> tuple[float, float]:
    import boto3

    import app as application
    from chalicelib.dispatch import transport as sender
    from chalicelib.domain.identity import Principal, Role
    from chalicelib.integrators.models import CreateIntegratorRequest
    from chalicelib.integrators.registry import create_integrator, load_integrators
    from chalicelib.orders import service
    from chalicelib.orders.models import CreateOrderRequest
    from tests.support.fake_integrator import FakeIntegrator, Reply
    from tools.localstack import example_order
    from tools.poller import run_batch

    admin = Principal(token_id="bench", role=Role.ADMIN)
    with FakeIntegrator() as fake:
        for n in range(integrators):
            fake.default(f"/i{n}", Reply(200, json={}, delay=delay))
            create_integrator(
                CreateIntegratorRequest.model_validate(
                    {"name": f"i{n}", "url": fake.url(f"/i{n}"), "auth": {"type": "none"}}
                ),
                callback_base="http://x",
            )
        created = [
            service.create_order(
                CreateOrderRequest.model_validate_json(example_order()),
                admin,
                correlation_id=None,
                idempotency_key=None,
            )[0]
            for _ in range(orders)
        ]

        # Baseline: the same deliveries, one after another.
        targets = load_integrators()
        started = time.perf_counter()
        for order in created:
            for integrator in targets:
                sender.post(integrator, event="order.created", webhook_id="bench", payload=order)
        sequential = time.perf_counter() - started

        sqs = boto3.client("sqs")
        url = os.environ["ORDERS_QUEUE_URL"]
        messages: list[dict[str, Any]] = []
        while len(messages) < orders:
            received = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
            ).get("Messages", [])
            messages += [dict(message) for message in received]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the invocation's EMF metrics line
            result = run_batch(application.app, "dispatch_orders", sqs, url, messages[:10], arn, "us-east-1")
        concurrent = time.perf_counter() - started
        assert not result.failed_ids and len(fake.requests()) == 2 * orders * integrators, "every order delivered"
    return concurrent, sequential
