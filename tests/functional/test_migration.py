"""`make migrate` on orders written under the first data model (issue 22): counted by a dry run, fixed in place,
resumable after a stop, idempotent, safe beside the new code's writes, and afterwards every order is listed once,
newest first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from chalicelib.db.orders import LEGACY_OUTBOX, LEGACY_OVERDUE
from tests.support.api import Api
from tools.migrate import migrate
from tools.sample_order import SAMPLE_ORDER, order_body

ORDERS = "/api/v1/orders"


def legacy_order(n: int, *, outbox: bool = False, overdue: bool = False) -> dict[str, Any]:
    """An order row exactly as the first model wrote it: `kind` and `seller_status` for its indexes, no shard,
    outbox and overdue marks under their single keys."""
    order_id = f"ord_00LEGACY{n:04d}"
    at = f"2026-11-{1 + n % 28:02d}T10:00:00.000Z"
    item: dict[str, Any] = {
        "id": {"S": order_id},
        "kind": {"S": "order"},
        "status": {"S": "delivered"},
        "version": {"N": "7"},
        "created_at": {"S": at},
        "updated_at": {"S": at},
        "sort_key": {"S": f"{at}#{order_id}"},
        "seller_id": {"S": "s-1"},
        "user_id": {"S": "u-1"},
        "seller_status": {"S": "s-1#delivered"},
        "user": {"S": json.dumps(SAMPLE_ORDER["user"])},
        "seller": {"S": json.dumps(SAMPLE_ORDER["seller"])},
        "details": {"S": json.dumps(SAMPLE_ORDER["order"])},
        "timeline": {"S": "[]"},
    }
    if outbox:
        item |= {"outbox_pk": {"S": LEGACY_OUTBOX}, "outbox_at": {"S": at}, "outbox_event_id": {"S": "e-1"}}
        item["outbox"] = {
            "S": json.dumps(
                {
                    "kind": "order_event",
                    "event_id": "e-1",
                    "type": "order.updated",
                    "order_id": order_id,
                    "version": 7,
                    "occurred_at": at,
                }
            )
        }
    if overdue:
        item |= {"overdue": {"S": LEGACY_OVERDUE}, "seller_overdue": {"S": "s-1"}}
        item["overdue_integrators"] = {"S": json.dumps(["delivery"])}
    return item


def all_listed(api: Api, limit: int = 7) -> list[str]:
    seen: list[str] = []
    cursor = ""
    while True:
        page = api.get(f"{ORDERS}?limit={limit}{cursor}").json_body
        seen += [order["id"] for order in page["items"]]
        if not page["next_cursor"]:
            return seen
        cursor = f"&cursor={page['next_cursor']}"


def test_orders_of_the_first_model_are_migrated_in_place_resumably_and_listed_once(
    api: Api, aws: dict[str, str], tmp_path: Path
) -> None:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    table = aws["ORDERS_TABLE"]
    legacy = [legacy_order(n, outbox=n == 3, overdue=n == 5) for n in range(25)]
    for item in legacy:
        dynamodb.put_item(TableName=table, Item=item)
    fresh = [api.post(ORDERS, order_body()).json_body["id"] for _ in range(3)]
    assert sorted(all_listed(api)) == sorted(fresh), "before the migration only new orders are in by_shard"

    dry = migrate(dynamodb, table, dry_run=True)
    assert (dry.scanned, dry.sharded, dry.outbox_moved, dry.overdue_moved) == (28, 25, 1, 1)
    assert sorted(all_listed(api)) == sorted(fresh), "a dry run writes nothing"

    checkpoint = tmp_path / "migrate.json"
    first = migrate(dynamodb, table, checkpoint=checkpoint, max_items=10, page_size=5)
    assert not first.done and first.scanned == 10, "stopped part way, its place saved"
    resumed = migrate(dynamodb, table, checkpoint=checkpoint, page_size=5)
    assert resumed.done and resumed.scanned == 28, "the resumed run went on from its place"
    assert (resumed.sharded, resumed.outbox_moved, resumed.overdue_moved) == (25, 1, 1)

    listed = all_listed(api)
    assert len(listed) == len(set(listed)) == 28, "every order once"
    created = {o["id"]: o["created_at"] for o in (api.get(f"{ORDERS}/{i}").json_body for i in listed)}
    assert [created[i] for i in listed] == sorted(created.values(), reverse=True), "newest first"
    stored = dynamodb.get_item(TableName=table, Key={"id": {"S": "ord_00LEGACY0003"}})["Item"]
    assert stored["outbox_pk"]["S"].startswith("pending#") and "kind" not in stored and "seller_status" not in stored
    overdue = api.get(f"{ORDERS}?delivery=overdue").json_body["items"]
    assert [o["id"] for o in overdue] == ["ord_00LEGACY0005"]

    again = migrate(dynamodb, table, checkpoint=checkpoint)
    assert again.done and again.changes == 0, "idempotent: a second run changes nothing"


def test_a_fix_the_new_code_already_made_is_not_redone(api: Api, aws: dict[str, str]) -> None:
    """An old order the new code rewrote between the scan and the fix keeps what the new code wrote."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    table = aws["ORDERS_TABLE"]
    dynamodb.put_item(TableName=table, Item=legacy_order(1))
    scanned = dynamodb.scan(TableName=table)["Items"]
    from chalicelib.db.repository import repo

    order = repo().orders.get("ord_00LEGACY0001")
    assert order is not None
    repo().orders.replace(order.model_copy(update={"version": 8}), 7)  # the new code's whole-row write
    from tools.migrate import _update

    assert [item["id"]["S"] for item in scanned] == ["ord_00LEGACY0001"]
    assert not _update(dynamodb, table, "ord_00LEGACY0001", "shard"), "already sharded: the condition refuses"
    assert api.get(f"{ORDERS}?limit=5").json_body["items"][0]["version"] == 8
