"""A cold container builds one botocore client per service it calls. Each client costs tens of milliseconds of a
cold start (its service model read from disk), a new botocore session a few hundred: pynamodb alone would build a
DynamoDB client per model and Powertools one of its own (measured in bench/coldstart.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.aws_requests import recording
from chalicelib.aws import reset_clients
from chalicelib.db.records import unbind_tables
from tests.support.api import Api
from tests.support.fake_integrator import FakeIntegrator, Reply
from tools.poller import drain
from tools.sample_order import order_body


def cold_container() -> None:
    """What a new Lambda container has: no client, no table binding."""
    reset_clients()
    unbind_tables()


def test_a_cold_dispatcher_and_api_build_one_client_per_service(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator
) -> None:
    for name in ("delivery", "loyalty", "food-ordering"):
        fake.default(f"/{name}", Reply(200, json={"ok": True}))
        made = api.post("/api/v1/integrators", {"name": name, "url": fake.url(f"/{name}"), "auth": {"type": "none"}})
        assert made.status_code == 201, made.body

    cold_container()
    with recording() as created:
        assert api.post("/api/v1/orders", order_body()).status_code == 201
    # secretsmanager: the tracking-link key that signs the order's tracking_url (read once per 5 minutes).
    assert Counter(created.clients) == {"dynamodb": 1, "sqs": 1, "secretsmanager": 1}

    cold_container()
    with recording() as dispatched:
        drain(app, sqs, aws["ORDERS_QUEUE_URL"])
    assert len(fake.requests()) == 3  # the order reached every integrator
    assert Counter(dispatched.clients) == {"dynamodb": 1, "secretsmanager": 1, "sns": 1}
    assert dispatched.counts()[("dynamodb", "PutItem")] > 1  # the models and Idempotency all sent through it
