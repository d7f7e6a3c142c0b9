"""Integrators with their secrets are cached per container for CACHE_SECONDS (issue 14): no Scan per dispatcher
batch and no GetItem per callback, while a change made in this container applies at once, a callback secret
rotated elsewhere works at once, and a change made elsewhere applies within CACHE_SECONDS."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.functional.test_callbacks import ORDERS, Partner
from tests.support.api import Api
from tests.support.fake_integrator import FakeIntegrator
from tools.poller import drain
from tools.sample_order import order_body

Calls = list[tuple[str, str, str]]


def dispatch_new_order(api: Api, app: Any, sqs: Any, aws: dict[str, str]) -> str:
    order_id = str(api.post(ORDERS, order_body()).json_body["id"])
    assert all(not batch.failed_ids for batch in drain(app, sqs, aws["ORDERS_QUEUE_URL"]))
    return order_id


@contextmanager
def served_elsewhere(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Admin changes made inside this block act as if another container served them: this one keeps its cache."""
    from chalicelib.integrators import registry

    with monkeypatch.context() as patch:
        patch.setattr(registry, "forget", lambda name=None: None)
        yield


def test_warm_batches_and_callbacks_read_no_integrator(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, aws_calls: Calls
) -> None:
    partner = Partner(api, "partner", fake)
    dispatch_new_order(api, app, sqs, aws)
    aws_calls.clear()
    order_id = dispatch_new_order(api, app, sqs, aws)
    assert partner.status(order_id, "accepted").status_code == 200
    assert len(fake.requests("/partner")) == 2
    read = [(service, op) for service, op, table in aws_calls if table == aws["INTEGRATORS_TABLE"]]
    assert read == [] and ("secretsmanager", "GetSecretValue") not in {(s, o) for s, o, _ in aws_calls}


def test_a_callback_secret_rotated_in_another_container_works_at_once(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    partner = Partner(api, "partner", fake)
    order_id = dispatch_new_order(api, app, sqs, aws)
    assert partner.status(order_id, "accepted").status_code == 200  # this container now holds the old secret
    with served_elsewhere(monkeypatch):
        rotated = api.patch("/api/v1/integrators/partner", {"rotate_callback_secret": True})
    new = rotated.json_body["callback_secret"]
    assert partner.post({"order_id": order_id, "status": "preparing"}, secret=new).status_code == 200
    assert partner.status(order_id, "ready").status_code == 200, "the previous secret stays valid"


def test_an_integrator_changed_elsewhere_stops_within_the_cache_time_and_changed_here_at_once(
    api: Api, app: Any, sqs: Any, aws: dict[str, str], fake: FakeIntegrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.integrators import cache

    def received() -> tuple[int, int]:
        return len(fake.requests("/here")), len(fake.requests("/away"))

    Partner(api, "here", fake)
    Partner(api, "away", fake)
    dispatch_new_order(api, app, sqs, aws)  # both cached
    with served_elsewhere(monkeypatch):
        assert api.patch("/api/v1/integrators/away", {"enabled": False}).status_code == 200
    dispatch_new_order(api, app, sqs, aws)
    assert received() == (2, 2), "away is still cached as enabled"
    with monkeypatch.context() as later:
        later.setattr(cache, "CACHE_SECONDS", 0)  # CACHE_SECONDS later
        dispatch_new_order(api, app, sqs, aws)
    assert received() == (3, 2)
    assert api.patch("/api/v1/integrators/here", {"enabled": False}).status_code == 200
    dispatch_new_order(api, app, sqs, aws)
    assert received() == (3, 2)
