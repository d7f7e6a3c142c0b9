"""The orders table's move from the first data model to the sharded one (issue 22), as DynamoDB allows it:
one global secondary index created or deleted per table update, and new indexes backfilled before reads switch.

`index_steps` plans the table's index lists from what is deployed to what the models say, one change at a time:
first every new index is added (the old code keeps working; DynamoDB backfills an index from the attributes
items already have), then, once the new code runs and `tools/migrate.py` has given old rows the attributes only
the new layout writes, every old index is dropped. `template_with_order_indexes` renders the resources stack at
one of those steps, so each stack update changes exactly one index.
"""

from __future__ import annotations

import copy
from typing import Any

from infra.resources import template

ORDERS_TABLE = "OrdersTable"

# The first model's list indexes (ALL projection), as they were deployed: what a stack created before the sharded
# layout holds, and what the migration steps remove.
LEGACY_ORDER_INDEXES: list[dict[str, Any]] = [
    {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": "sort_key", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    for name, hash_key in (
        ("by_seller", "seller_id"),
        ("by_user", "user_id"),
        ("by_status", "status"),
        ("by_seller_status", "seller_status"),
        ("all_orders", "kind"),
    )
]
LEGACY_ATTRIBUTES = ("kind", "status", "seller_status")


def _names(indexes: list[dict[str, Any]]) -> list[str]:
    return [str(index["IndexName"]) for index in indexes]


def index_steps(current: list[dict[str, Any]], target: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The index lists to deploy in turn, each differing from the one before by one index: adds first, then
    drops. An index whose definition changed under the same name is dropped and added again (DynamoDB cannot
    change an index's keys or projection in place)."""
    wanted = {str(index["IndexName"]): index for index in target}
    kept = [index for index in current if wanted.get(str(index["IndexName"])) == index]
    stale = [index for index in current if index not in kept]
    steps: list[list[dict[str, Any]]] = []
    now = list(current)
    # A changed index cannot be added while its old definition holds the name: drop those first.
    for index in [i for i in stale if str(i["IndexName"]) in wanted]:
        now = [i for i in now if i is not index]
        steps.append(list(now))
    for name, index in wanted.items():
        if name not in _names(now):
            now = [*now, index]
            steps.append(list(now))
    for index in [i for i in stale if str(i["IndexName"]) not in wanted]:
        now = [i for i in now if i["IndexName"] != index["IndexName"]]
        steps.append(list(now))
    return steps


def expanding(steps: list[list[dict[str, Any]]], current: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The steps that only add indexes (deployed before the new code), the rest being the drops after it."""
    count = len(current)
    added: list[list[dict[str, Any]]] = []
    for step in steps:
        if len(step) <= count:
            break
        added.append(step)
        count = len(step)
    return added


def target_order_indexes(stage: str) -> list[dict[str, Any]]:
    return list(template(stage)["Resources"][ORDERS_TABLE]["Properties"]["GlobalSecondaryIndexes"])


def template_with_order_indexes(stage: str, indexes: list[dict[str, Any]]) -> dict[str, Any]:
    """The resources stack with the orders table carrying exactly `indexes` (and the attribute definitions they
    and the table key need: CloudFormation refuses a definition nothing uses)."""
    body = copy.deepcopy(template(stage))
    table = body["Resources"][ORDERS_TABLE]["Properties"]
    known = {d["AttributeName"]: d for d in table["AttributeDefinitions"]}
    for name in LEGACY_ATTRIBUTES:
        known.setdefault(name, {"AttributeName": name, "AttributeType": "S"})
    used = {k["AttributeName"] for k in table["KeySchema"]}
    used |= {k["AttributeName"] for index in indexes for k in index["KeySchema"]}
    table["AttributeDefinitions"] = [known[name] for name in sorted(used)]
    table["GlobalSecondaryIndexes"] = indexes
    return body
