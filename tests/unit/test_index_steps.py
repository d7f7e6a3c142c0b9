"""The orders table moves to the sharded layout the only way DynamoDB allows: one index created or deleted per
table update, every new index in place (and backfilled) before any old one is dropped."""

from __future__ import annotations

from typing import Any

from infra.migration import (
    LEGACY_ORDER_INDEXES,
    expanding,
    index_steps,
    target_order_indexes,
    template_with_order_indexes,
)

# What a stack created before issue 22 holds: the first model's list indexes and the three kept since.
TARGET = target_order_indexes("prod")
KEPT = [i for i in TARGET if i["IndexName"] in ("outbox", "overdue", "by_seller_overdue")]
DEPLOYED = [*LEGACY_ORDER_INDEXES, *KEPT]


def names(indexes: list[dict[str, Any]]) -> set[str]:
    return {i["IndexName"] for i in indexes}


def test_each_step_changes_one_index_and_every_add_comes_before_every_drop() -> None:
    steps = index_steps(DEPLOYED, TARGET)
    before = DEPLOYED
    kinds = []
    for step in steps:
        assert len(names(step) ^ names(before)) == 1, (names(before), names(step))
        kinds.append("add" if len(step) > len(before) else "drop")
        before = step
    assert sorted(steps[-1], key=lambda i: i["IndexName"]) == sorted(TARGET, key=lambda i: i["IndexName"])
    assert kinds == ["add"] * 3 + ["drop"] * 5
    assert len(expanding(steps, DEPLOYED)) == 3


def test_a_stack_already_on_the_target_needs_no_step() -> None:
    assert index_steps(TARGET, TARGET) == []


def test_an_index_redefined_under_its_name_is_dropped_then_added_again() -> None:
    changed = [{**TARGET[0], "Projection": {"ProjectionType": "ALL"}}, *TARGET[1:]]
    steps = index_steps(changed, TARGET)
    assert [len(s) for s in steps] == [len(TARGET) - 1, len(TARGET)]
    assert steps[-1][-1] == TARGET[0]


def test_each_steps_template_defines_exactly_the_attributes_its_keys_use() -> None:
    for step in index_steps(DEPLOYED, TARGET):
        table = template_with_order_indexes("prod", step)["Resources"]["OrdersTable"]["Properties"]
        used = {k["AttributeName"] for k in table["KeySchema"]} | {
            k["AttributeName"] for i in step for k in i["KeySchema"]
        }
        assert {d["AttributeName"] for d in table["AttributeDefinitions"]} == used
        assert table["GlobalSecondaryIndexes"] == step
