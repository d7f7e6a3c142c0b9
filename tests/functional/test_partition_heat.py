"""The partition-heat counter (bench/heat.py) on a real run: orders created through the API with sellers' tokens,
dispatched by the SQS handler to three partners and walked to `delivered` by signed callbacks, every item write
counted inside moto on the partition key it lands on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench import heat, heat_run, ledger
from bench.life import INTEGRATORS
from bench.stack import ADMIN_TOKEN, api_client, call, register_partners
from tests.support.api import STAGE
from tests.support.fake_integrator import FakeIntegrator

ORDERS, SELLERS, CUSTOMERS = 20, 4, 10


def test_no_key_passes_a_partitions_writes_at_2000_orders_a_second_and_an_order_life_stays_near_30_writes(
    app: Any, aws: dict[str, str], configure: Callable[..., None], fake: FakeIntegrator, tmp_path: Any
) -> None:
    """Issue 22's rule on a real run: no partition key of any table or index takes over 1,000 WCU/s at 2,000
    orders/s (the run's mix scaled up), and an order's life makes at most 30 item writes across every table and
    index, the integrator portal's list (issue 24: exactly one index write per delivery, when its row is created)
    included. A new index or key that breaks either fails here (and in `make bench`)."""
    configure(ORDER_RELAY_ADMIN_TOKEN=ADMIN_TOKEN)
    with api_client(app, tmp_path) as client:
        secrets = register_partners(client, fake, INTEGRATORS)
        tokens = heat_run.seller_tokens(client, SELLERS)
        with heat_run.counting(heat.targets(STAGE)) as recorder:
            ids = heat_run.walk(
                client,
                app,
                aws["ORDERS_QUEUE_URL"],
                secrets,
                tokens,
                orders=ORDERS,
                customers=CUSTOMERS,
                recorder=recorder,
            )
        for order_id in ids:
            assert call(client, "GET", f"/api/v1/orders/{order_id}").json_body["status"] == "delivered"
    found = recorder.result(ids)
    rows = {row.target.name: row for row in found.rows()}

    assert heat.over_limit(found) == [], [row.label() for row in heat.over_limit(found)]
    portal = rows["deliveries by_integrator"]
    assert portal.writes_per_order == len(INTEGRATORS), "the portal's list: one write per delivery"
    assert found.total_writes_per_order <= 30
    assert ledger.unjustified(found) == [], "every kind of write says why it is made (bench/ledger.py)"
    shards = rows["orders by_shard"]
    assert shards.writes_per_order == 1 and shards.keys > 1, "one write per order, spread over the shards"
    assert rows["orders by_seller_keys"].keys == SELLERS and rows["orders by_user_keys"].keys == CUSTOMERS
    assert rows["orders by_seller_keys"].writes_per_order == 1, "a status move writes no list index"
    assert rows["orders outbox"].writes == 0, "a create's event is queued before its order is written"
    assert rows["orders (table)"].keys == ORDERS and rows["orders (table)"].label() == "id=<one order>"
    assert rows["deliveries by_integrator_status"].writes == 0, "sparse: no delivery failed or waited"
    assert tokens and "tokens (table)" in rows and rows["tokens (table)"].writes == 0, "setup is not counted"
