"""The partition-heat benchmark's arithmetic (bench/heat.py), on synthetic writes: where a table write lands in each
index and what it costs there as DynamoDB bills it, and how a run's tally is projected to 2,000 orders per second
and judged against the 1,000 WCU/s a partition key serves."""

from __future__ import annotations

from typing import Any

import pytest

from bench.heat import (
    Heat,
    Target,
    Write,
    console,
    item_size,
    markdown,
    over_limit,
    targets,
    value_size,
    write_units,
    writes_of,
)
from bench.heat_run import Recorder

TABLE = Target("orders", "", "id", None, ("id",))
ALL_ORDERS = Target("orders", "all_orders", "kind", "sort_key", ("id",))
BY_STATUS = Target("orders", "by_status", "status", "sort_key", ("id",))
OUTBOX = Target("orders", "outbox", "outbox_pk", "outbox_at", ("id",), "KEYS_ONLY")
SLIM = Target("orders", "slim", "status", "sort_key", ("id",), "INCLUDE", ("total",))


def _order(status: str = "pending", **extra: Any) -> dict[str, Any]:
    item = {
        "id": {"S": "ord_1"},
        "kind": {"S": "order"},
        "status": {"S": status},
        "sort_key": {"S": "2026-01-01T00:00:00#ord_1"},
    }
    item.update({name: {"S": value} if isinstance(value, str) else value for name, value in extra.items()})
    return item


def test_every_index_of_the_template_is_measured_with_its_key_and_projection() -> None:
    found = {t.name: t for ts in targets("unit").values() for t in ts}

    assert found["orders by_shard"].hash_key == "shard"
    assert found["orders by_shard"].projection == "INCLUDE"
    assert found["orders outbox"].projection == "KEYS_ONLY"
    assert found["orders (table)"].table_keys == ("id",)
    assert found["deliveries (table)"].table_keys == ("order_id", "sk")
    assert "deliveries by_integrator_status" in found and "idempotency (table)" in found


def test_sizes_follow_dynamodb_item_size_rules() -> None:
    assert value_size({"S": "héllo"}) == 6  # UTF-8 bytes
    assert value_size({"N": "-123.4500"}) == 4  # 5 significant digits: 3 bytes, plus 1
    assert value_size({"BOOL": True}) == value_size({"NULL": True}) == 1
    assert value_size({"M": {"a": {"S": "xy"}}}) == 3 + 1 + 1 + 2
    assert item_size({"id": {"S": "abc"}}) == 2 + 3
    assert [write_units(n) for n in (0, 1, 1024, 1025, 3000)] == [1, 1, 1, 2, 3]


def test_a_new_item_is_one_write_on_the_table_and_on_each_index_that_holds_it() -> None:
    new = _order()

    assert writes_of(TABLE, None, new) == [Write("orders (table)", "ord_1", 1)]
    assert writes_of(ALL_ORDERS, None, new) == [Write("orders all_orders", "order", 1)]
    assert writes_of(OUTBOX, None, new) == [], "sparse: no outbox key, no index write"


def test_a_changed_index_key_is_a_delete_on_the_old_key_and_a_put_on_the_new_one() -> None:
    writes = writes_of(BY_STATUS, _order("pending"), _order("dispatched"))

    assert writes == [Write("orders by_status", "pending", 1), Write("orders by_status", "dispatched", 1)]
    assert writes_of(ALL_ORDERS, _order("pending"), _order("dispatched")) == [Write("orders all_orders", "order", 1)]


def test_an_update_reaches_a_keys_only_or_include_index_only_when_a_projected_attribute_changes() -> None:
    old = _order(outbox_pk="pending", outbox_at="t1", note="a", total={"N": "10"})
    note_changed = _order(outbox_pk="pending", outbox_at="t1", note="b", total={"N": "10"})
    total_changed = _order(outbox_pk="pending", outbox_at="t1", note="a", total={"N": "12"})

    assert writes_of(OUTBOX, old, note_changed) == []
    assert writes_of(SLIM, old, note_changed) == []
    assert writes_of(SLIM, old, total_changed) == [Write("orders slim", "pending", 1)]
    assert writes_of(ALL_ORDERS, old, note_changed) == [Write("orders all_orders", "order", 1)]
    assert writes_of(OUTBOX, old, _order()) == [Write("orders outbox", "pending", 1)], "leaving a sparse index"


def test_write_units_are_the_larger_image_and_a_transaction_doubles_the_table_not_the_index() -> None:
    small, big = _order(), _order(body="x" * 2500)
    keys_only = Target("orders", "keys", "status", "sort_key", ("id",), "KEYS_ONLY")

    assert writes_of(TABLE, small, big)[0].units == 3
    assert writes_of(TABLE, big, small)[0].units == 3, "an update pays for the larger of before and after"
    assert writes_of(TABLE, big, None)[0].units == 3, "a delete pays for the item deleted"
    assert writes_of(TABLE, None, big, transactional=True)[0].units == 6
    assert writes_of(ALL_ORDERS, None, big, transactional=True)[0].units == 3
    assert writes_of(keys_only, None, big)[0].units == 1, "a KEYS_ONLY entry is small whatever the item"


def _heat(orders: int, writes: list[tuple[str, str, int]], order_ids: tuple[str, ...] = ()) -> Heat:
    heat = Heat(orders, [TABLE, ALL_ORDERS, BY_STATUS, OUTBOX], order_ids=frozenset(order_ids))
    for target, key, units in writes:
        heat.add(Write(target, key, units))
    return heat


def test_a_shared_key_is_projected_by_its_share_and_the_first_limit_is_where_it_reaches_1000_wcu() -> None:
    # 10 orders: all_orders gets 2 writes of 2 units per order on one key; by_status spreads over 4 statuses.
    writes = [("orders all_orders", "order", 2)] * 20
    writes += [("orders by_status", status, 1) for status in ("a", "b", "c", "d") for _ in range(5)]
    heat = _heat(10, writes)
    rows = {row.target.name: row for row in heat.rows()}

    hot = rows["orders all_orders"]
    assert (hot.writes_per_order, hot.units_per_order, hot.keys, hot.share) == (2.0, 4.0, 1, 1.0)
    assert hot.label() == "kind=order"
    assert hot.writes_per_second(2000) == 4000 and hot.units_per_second(2000) == 8000
    assert hot.units_per_second(10_000) == 40_000
    assert rows["orders by_status"].units_per_second(2000) == 1000 * 5 / 10 * 2  # a quarter of 2 units per order
    first = heat.first_limit()
    assert first is not None and first.target.name == "orders all_orders" and first.limit_rate == 250
    assert [r.target.name for r in over_limit(heat)] == ["orders all_orders"]
    assert "first limit: orders all_orders, key kind=order, reaches 1,000 WCU/s at 250 orders/s" in console(heat)
    assert "**8,000**" in markdown(heat)


def test_one_orders_keys_do_not_grow_with_the_rate() -> None:
    writes = [("orders (table)", f"ord_{n}", 2) for n in range(4) for _ in range(7)]
    heat = _heat(4, writes, order_ids=tuple(f"ord_{n}" for n in range(4)))
    row = next(r for r in heat.rows() if r.target.name == "orders (table)")

    assert row.label() == "id=<one order>"
    assert row.units_per_second(2000) == row.units_per_second(10_000) == 14, "its whole life in one second"
    assert row.writes_per_second(10_000) == 7
    assert row.limit_rate == float("inf") and over_limit(heat) == []
    assert heat.first_limit() is None


@pytest.mark.parametrize(("units", "over"), [(50, False), (51, True)])
def test_the_rule_is_1000_wcu_per_second_on_a_key_at_2000_orders_per_second(units: int, over: bool) -> None:
    heat = _heat(100, [("orders outbox", "pending", units)])  # units per 100 orders -> units x 20 per second

    assert bool(over_limit(heat)) is over


def test_the_recorder_counts_an_upsert_once_and_a_transaction_only_when_it_commits_at_double_units() -> None:
    recorder = Recorder({"t-orders": [TABLE, ALL_ORDERS]})
    keys_only = {"id": {"S": "ord_1"}}

    with recorder.updating():  # moto: an UpdateItem of a missing item puts its key, then updates it
        recorder.seen("t-orders", None, keys_only)
        recorder.seen("t-orders", None, _order())
    with pytest.raises(RuntimeError), recorder.transaction():
        recorder.seen("t-orders", _order(), _order("dispatched"))
        raise RuntimeError("cancelled")
    with recorder.transaction():
        recorder.seen("t-orders", _order(), _order("dispatched"))
    heat = recorder.result(["ord_1"])

    assert heat.writes == {("orders (table)", "ord_1"): 2, ("orders all_orders", "order"): 2}
    assert heat.units == {("orders (table)", "ord_1"): 1 + 2, ("orders all_orders", "order"): 1 + 1}


def test_a_refused_conditional_write_costs_the_existing_items_units_on_its_key() -> None:
    class Stored:
        def to_json(self) -> dict[str, Any]:
            return {"Attributes": _order(body="x" * 1500)}

    class Backend:
        def get_item(self, table: str, key: dict[str, Any]) -> Stored:
            return Stored()

    recorder = Recorder({"t-orders": [TABLE, ALL_ORDERS]})
    recorder.refused(Backend(), "t-orders", _order())  # a PutItem's whole item names the key
    heat = recorder.result(["ord_1"])

    assert (heat.writes, heat.units, heat.refused) == (
        {("orders (table)", "ord_1"): 1},
        {("orders (table)", "ord_1"): 2},
        1,
    )
