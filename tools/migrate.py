"""`make migrate STAGE=<stage> [DRY_RUN=1]`: give orders written under the first data model what the sharded
layout reads (issue 22), in place, while traffic flows.

Per order, at most one conditional `UpdateItem` per fix, each conditional on the fix still being needed, so a
write the new code makes meanwhile is never overwritten and the command can run any number of times:
- `shard` (`o#<n>`, the by_shard index's key) where it is missing (`attribute_not_exists(shard)`); the first
  model's `kind` and `seller_status`, which only its indexes read, are removed in the same write;
- an outbox mark or an overdue mark still under its single pre-shard key (`pending`, `overdue`) moves to its
  shard (conditional on the old value: a mark the dispatcher cleared meanwhile stays cleared).

Resumable: the scan's position is saved after every page (`--checkpoint`, default `.local/migrate-<stage>.json`),
and a stopped run goes on from there; `--dry-run` counts what would change and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.db.orders import LEGACY_OUTBOX, LEGACY_OVERDUE, outbox_key, overdue_key, shard_key  # noqa: E402
from infra.resources import ResourceNames  # noqa: E402


@dataclass
class Progress:
    scanned: int = 0
    sharded: int = 0
    outbox_moved: int = 0
    overdue_moved: int = 0
    changed_meanwhile: int = 0  # a fix the new code had already made (its condition did not hold)
    done: bool = False
    position: dict[str, Any] | None = field(default=None)

    @property
    def changes(self) -> int:
        return self.sharded + self.outbox_moved + self.overdue_moved


def fixes(item: dict[str, Any]) -> list[str]:
    """What this order lacks under the sharded layout."""
    needed = []
    if "shard" not in item:
        needed.append("shard")
    if item.get("outbox_pk", {}).get("S") == LEGACY_OUTBOX:
        needed.append("outbox")
    if item.get("overdue", {}).get("S") == LEGACY_OVERDUE:
        needed.append("overdue")
    return needed


def _update(dynamodb: Any, table: str, order_id: str, fix: str) -> bool:
    """One conditional fix; False when its condition no longer holds (the new code wrote the order meanwhile)."""
    key = {"id": {"S": order_id}}
    if fix == "shard":
        args: dict[str, Any] = {
            "UpdateExpression": "SET #shard = :shard REMOVE #kind, seller_status",
            "ConditionExpression": "attribute_exists(id) AND attribute_not_exists(#shard)",
            "ExpressionAttributeNames": {"#shard": "shard", "#kind": "kind"},  # both reserved words
            "ExpressionAttributeValues": {":shard": {"S": shard_key(order_id)}},
        }
    elif fix == "outbox":
        args = {
            "UpdateExpression": "SET outbox_pk = :new",
            "ConditionExpression": "outbox_pk = :old",
            "ExpressionAttributeValues": {":new": {"S": outbox_key(order_id)}, ":old": {"S": LEGACY_OUTBOX}},
        }
    else:
        args = {
            "UpdateExpression": "SET overdue = :new",
            "ConditionExpression": "overdue = :old",
            "ExpressionAttributeValues": {":new": {"S": overdue_key(order_id)}, ":old": {"S": LEGACY_OVERDUE}},
        }
    try:
        dynamodb.update_item(TableName=table, Key=key, **args)
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True


COUNTERS = {"shard": "sharded", "outbox": "outbox_moved", "overdue": "overdue_moved"}


def migrate(
    dynamodb: Any,
    table: str,
    *,
    checkpoint: Path | None = None,
    dry_run: bool = False,
    max_items: int | None = None,
    page_size: int = 100,
) -> Progress:
    """Scan the orders table from the checkpoint (if any) and fix what each order lacks; stops after `max_items`
    orders (the checkpoint keeps the place). A dry run starts from the beginning and saves nothing."""
    saved = json.loads(checkpoint.read_text()) if checkpoint and checkpoint.exists() and not dry_run else None
    progress = Progress(**saved) if saved else Progress()
    if progress.done:
        progress = Progress()  # a finished run starts over: new rows written by old code since are fixed too
    while True:
        kwargs: dict[str, Any] = {"TableName": table, "Limit": page_size, "ConsistentRead": True}
        if progress.position:
            kwargs["ExclusiveStartKey"] = progress.position
        page = dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            progress.scanned += 1
            for fix in fixes(item):
                if dry_run or _update(dynamodb, table, item["id"]["S"], fix):
                    setattr(progress, COUNTERS[fix], getattr(progress, COUNTERS[fix]) + 1)
                else:
                    progress.changed_meanwhile += 1
        progress.position = page.get("LastEvaluatedKey")
        progress.done = progress.position is None
        if checkpoint and not dry_run:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            checkpoint.write_text(json.dumps(asdict(progress)))
        if progress.done or (max_items is not None and progress.scanned >= max_items):
            return progress


def main() -> None:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--checkpoint", type=Path)
    args = parser.parse_args()
    table = ResourceNames(args.stage).table("orders")
    checkpoint = args.checkpoint or ROOT / ".local" / f"migrate-{args.stage}.json"
    progress = migrate(boto3.client("dynamodb"), table, checkpoint=checkpoint, dry_run=args.dry_run)
    verb = "would change" if args.dry_run else "changed"
    print(
        f"{table}: {progress.scanned} orders scanned; {verb}: {progress.sharded} given a shard, "
        f"{progress.outbox_moved} outbox and {progress.overdue_moved} overdue marks moved to their shard; "
        f"{progress.changed_meanwhile} already written by the new code"
    )


if __name__ == "__main__":
    main()
