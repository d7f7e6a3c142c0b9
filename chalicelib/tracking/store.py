"""The tracking table: who watches which order, and when an order's links were revoked.

Rows (key `pk`, `sk`):
- a watcher: `order#<id>#<shard>` / `conn#<connection id>`, with a TTL. The shard comes from the connection id,
  so the watchers of one order spread over SHARDS partition keys: an order followed by a thousand browsers
  writes (connects) and reads (one Query per shard per change) across several partitions, never one hot key.
  The sparse index `by_connection` finds the row from the connection id alone, which is all `$disconnect` gets.
- revocation: `order#<id>` / `links`, `revoked_before` (ms): links issued before it are refused.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection

from chalicelib.db.records import UNBOUND, Record
from chalicelib.settings import ConfigurationError, get_settings

SHARDS = 4
# API Gateway closes a WebSocket after 2 hours; a row outlives its connection by a margin, then TTL removes it.
CONNECTION_TTL_SECONDS = 2 * 3600 + 600


class ByConnectionIndex(GlobalSecondaryIndex["TrackingRecord"]):
    class Meta:
        index_name = "by_connection"
        projection = KeysOnlyProjection()

    connection_id = UnicodeAttribute(hash_key=True)


class TrackingRecord(Record):
    class Meta:
        table_name = UNBOUND

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    connection_id = UnicodeAttribute(null=True)
    connected_at = NumberAttribute(null=True)
    link_issued_ms = NumberAttribute(null=True)  # the link it connected with: a later revocation drops it
    revoked_before = NumberAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    by_connection = ByConnectionIndex()


@dataclass(frozen=True)
class Watcher:
    pk: str
    connection_id: str
    link_issued_ms: int = 0


def _bound() -> type[TrackingRecord]:
    settings = get_settings()
    if not settings.tracking_table:
        raise ConfigurationError("order-relay is misconfigured: TRACKING_TABLE is not set")
    meta: Any = TrackingRecord.Meta
    if meta.table_name != settings.tracking_table or getattr(meta, "region", None) != settings.region:
        meta.table_name = settings.tracking_table
        meta.region = settings.region
        TrackingRecord._connection = None
    return TrackingRecord


def shard_of(connection_id: str) -> int:
    return hashlib.sha256(connection_id.encode()).digest()[0] % SHARDS


def watcher_key(order_id: str, connection_id: str) -> str:
    return f"order#{order_id}#{shard_of(connection_id)}"


def add_watcher(order_id: str, connection_id: str, *, link_issued_ms: int, until: int) -> None:
    now = int(time.time())
    _bound()(
        pk=watcher_key(order_id, connection_id),
        sk=f"conn#{connection_id}",
        connection_id=connection_id,
        connected_at=now,
        link_issued_ms=link_issued_ms,
        expires_at=timedelta(seconds=max(1, min(until - now, CONNECTION_TTL_SECONDS))),
    ).save()


def watchers(order_id: str) -> Iterator[Watcher]:
    """Every live watcher of the order: one Query per shard (a row past its TTL that DynamoDB has not removed
    yet is skipped)."""
    model, now = _bound(), time.time()
    for shard in range(SHARDS):
        for row in model.query(f"order#{order_id}#{shard}", model.sk.startswith("conn#")):
            if row.connection_id and (row.expires_at is None or row.expires_at.timestamp() > now):
                yield Watcher(row.pk, row.connection_id, int(row.link_issued_ms or 0))


def remove_watcher(watcher: Watcher) -> None:
    _bound()(pk=watcher.pk, sk=f"conn#{watcher.connection_id}").delete()


def remove_connection(connection_id: str) -> int:
    """`$disconnect`: the row found through the index (eventually consistent: a row it misses expires by TTL)."""
    model = _bound()
    removed = 0
    for row in model.by_connection.query(connection_id):
        model(pk=row.pk, sk=row.sk).delete()
        removed += 1
    return removed


def revoked_before(order_id: str) -> int:
    """Links of this order issued before this time (ms) are revoked; 0 when none ever were."""
    try:
        row = _bound().get(f"order#{order_id}", "links")
    except DoesNotExist:
        return 0
    return int(row.revoked_before or 0)


def revoke(order_id: str, *, at_ms: int, keep_seconds: int) -> None:
    """Refuse every link issued up to `at_ms`. The row lives as long as any link it revokes could."""
    _bound()(
        pk=f"order#{order_id}",
        sk="links",
        revoked_before=at_ms,
        expires_at=timedelta(seconds=keep_seconds),
    ).save()
