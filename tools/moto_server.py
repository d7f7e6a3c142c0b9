"""The local stack's moto server, with two DynamoDB operations made proportional to what they touch, not to the
tables: as in DynamoDB, a table's size must not slow every request down.

- TransactWriteItems: moto 5 deep-copies every table a transaction names before running it, to roll back a
  failed one. Every delivery outcome here is one transaction (the state row and its attempt line), so a
  2,000-order `make soak` spent its drain deep-copying a table of ~10,000 items per delivery, the moto process at
  100% CPU and past 11 GB of memory (it would have been killed). Here the rollback keeps a copy of only the items
  the transaction names and puts those back; moto's own whole-table copies become no-ops.
- Query: moto sorts every item of the table first, to find one partition or to filter an index. Here a Query
  on the table's own key reads that partition only, and one on an index filters the items unsorted (moto then
  sorts what it keeps).
- ReceiveMessage: for each message it hands out, moto computes every attribute of the queue (counting all its
  messages) to read the retention period. Here the period is read from the queue.

And one for correctness: the server answers each request in its own thread, and moto checks a write's condition
and writes in two steps, so two requests could both pass one condition (two claims of one delivery); a read of a
missing item adds an empty partition to a dict another thread may be iterating. DynamoDB's item operations are
serialised here, as the tests' in-process moto is (tests/conftest.py).

Used only by the local stack's server process (`make run`, `make soak`, the benchmarks); the tests' in-process
moto is unchanged.

    python -m tools.moto_server -H 127.0.0.1 -p 5000     # the arguments of `python -m moto.server`
"""

from __future__ import annotations

import copy
import functools
import os
import sys
import threading
import types
from typing import Any

from moto.core.utils import unix_time
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.sqs.models import Message, SQSBackend

# Set by the local stack (tools.localstack.start_moto, same name), whose pipe is this process's stdin.
EXIT_WITH_PARENT = "ORDER_RELAY_MOTO_EXIT_WITH_PARENT"
_moto_transact = DynamoDBBackend.transact_write_items
_moto_query = Table.query
_moto_all_items = Table.all_items
_querying = threading.local()  # the partition this thread's Query on a table's own key reads


def _not_whole_tables(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """moto's module-level `copy.deepcopy`, except for a Table: returned as is (its rollback is ours, below)."""
    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _named_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(table, key) of every item the transaction writes or checks; entries moto will refuse are left to it."""
    named = []
    for entry in transact_items:
        for op in entry.values():
            table = backend.tables.get(op.get("TableName", ""))
            attrs = op.get("Key") or op.get("Item")
            if table is None or not isinstance(attrs, dict):
                continue
            key_names = [name for name in (table.hash_key_attr, table.range_key_attr) if name]
            if all(name in attrs for name in key_names):
                named.append((table.name, {name: attrs[name] for name in key_names}))
    return named


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems with a rollback of the named items only: on any error each is put back as it
    was before (or removed, if it did not exist), then the error is raised as moto raised it."""
    saved: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    for table_name, key in _named_items(self, transact_items):
        before = self.get_item(table_name, key)
        saved.append((table_name, key, before.to_json()["Attributes"] if before is not None else None))
    try:
        _moto_transact(self, transact_items)
    except Exception:
        for table_name, key, attributes in reversed(saved):
            if attributes is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, copy.deepcopy(attributes))
        raise


def query(self: Table, hash_key: DynamoType | None, *args: Any, **kwargs: Any) -> Any:
    """moto's Query, reading only what it needs: on the table's own key the asked partition, and on an index every
    item unsorted (moto sorts the ones it keeps; sorting them all first cost O(n log n) Python comparisons)."""
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")  # noqa: PLR2004 - moto's 8th parameter
    own_key = not index_name and hash_key is not None and self.range_key_attr
    _querying.scope = (self, hash_key if own_key else None)
    try:
        return _moto_query(self, hash_key, *args, **kwargs)
    finally:
        _querying.scope = None


def all_items(self: Table) -> list[Item]:
    """moto's sorted list of every item, except inside this thread's Query of this table (see `query`)."""
    scope = getattr(_querying, "scope", None)
    if scope is None or scope[0] is not self:
        return _moto_all_items(self)
    if scope[1] is not None:
        found = self.items.get(scope[1])  # .get: `items` is a defaultdict, a lookup must not add a partition
        return list(found.values()) if found else []
    if not self.range_key_attr:
        return list(self.items.values())  # type: ignore[arg-type]
    return [item for partition in self.items.values() for item in partition.values()]


def still_retained(self: SQSBackend, queue_name: str, message: Message) -> bool:
    """moto's retention check, reading the period from the queue rather than from all its attributes."""
    retention = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
    return retention + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]


_dynamodb_lock = threading.RLock()


def _serialised(operation: Any) -> Any:
    @functools.wraps(operation)
    def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
        with _dynamodb_lock:
            return operation(*args, **kwargs)

    return one_at_a_time


def install() -> None:
    """Patch moto in this process (the server's own)."""
    dynamodb_models.copy = types.SimpleNamespace(copy=copy.copy, deepcopy=_not_whole_tables)  # type: ignore[attr-defined,assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = still_retained  # type: ignore[method-assign]
    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "get_item", "query", "scan"):
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))


def exit_with_parent() -> None:
    """Exit as soon as stdin reaches its end: the parent holds the only write end, and the kernel closes it when
    the parent exits or is killed, so this server never outlives the stack that started it."""

    def watch() -> None:
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


if __name__ == "__main__":
    if os.environ.get(EXIT_WITH_PARENT) == "1":
        exit_with_parent()
    install()
    from moto import server

    sys.argv[0] = "moto.server"
    server.main()
