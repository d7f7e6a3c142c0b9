"""Counting the partition heat of a real run (bench/heat.py has the billing model, the tally and its tables): every
item write moto makes, seen where moto keeps a table's stream shard, billed on the table and each global secondary
index it changes; and the run itself, 200 orders walked to `delivered` through the public routes against moto in
process.

    python -m bench.heat                    # the run and its tables (bench/heat.py `main`)
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.heat import (
    CUSTOMERS,
    ORDERS,
    SELLERS,
    Heat,
    Item,
    Target,
    Write,
    item_size,
    key_text,
    targets,
    write_units,
    writes_of,
)

# --- counting on moto ---------------------------------------------------------------------------------------------


class _Shard:
    """Stands where moto keeps a table's stream shard: moto calls `add(old, new)` for every item write of the table
    (PutItem, UpdateItem, DeleteItem, BatchWriteItem and each item of TransactWriteItems), inside the write."""

    def __init__(self, recorder: Recorder, table: str) -> None:
        self.recorder, self.table = recorder, table

    def __deepcopy__(self, memo: dict[int, Any]) -> _Shard:
        return self  # moto deep-copies a table to roll a transaction back; the copy records to the same tally

    def add(self, old: Any, new: Any) -> None:
        self.recorder.seen(self.table, _image(old), _image(new))


def _image(item: Any) -> dict[str, Any] | None:
    """A snapshot (moto updates items in place, later, maybe in another thread)."""
    return None if item is None else copy.deepcopy(item.to_json()["Attributes"])


def item_kind(old: Item | None, new: Item | None) -> str:
    """What a written item is, from its keys: an order row, a delivery row (created or changed), an attempt line,
    or one of the counters the deliveries table also holds."""
    item = new if new is not None else old
    if item is None:
        return ""
    if "order_id" not in item:
        return "order row" if "status" in item else "item"
    partition, sort = key_text(item["order_id"]), key_text(item.get("sk", {"S": ""}))
    for prefix, kind in (("quota#", "create quota counter"), ("health#", "health counter")):
        if partition.startswith(prefix):
            return kind
    if sort.startswith("attempt#"):
        return "attempt line"
    if sort.startswith("state#"):
        return "delivery row, created" if old is None else "delivery row"
    return "item"


class Recorder:
    """Counts the writes of one run into a `Heat`. moto creates an item an UpdateItem names in two steps (a put of
    its key, then the update): one DynamoDB write, so an update's steps are kept per thread and counted once; a
    transaction's writes are counted when it commits, at twice the table's units. `step` names the part of the
    run the writes belong to (create, dispatch, callbacks)."""

    step = ""

    def __init__(self, tables: dict[str, list[Target]]) -> None:
        self.tables = tables
        self.heat = Heat(0, [t for found in tables.values() for t in found])
        self._lock = threading.Lock()
        self._local = threading.local()

    def seen(self, table: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        updating = getattr(self._local, "update", None)
        if updating is not None:
            first = updating[0] if updating else (table, old, new)
            updating[:] = [(table, first[1], new)]
            return
        self._count(table, old, new)

    def _count(self, table: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        transaction = getattr(self._local, "transaction", None)
        if transaction is not None:
            transaction.append((table, old, new))
            return
        self._tally(table, old, new, transactional=False)

    def _tally(
        self, table: str, old: dict[str, Any] | None, new: dict[str, Any] | None, *, transactional: bool
    ) -> None:
        kind = item_kind(old, new)
        with self._lock:
            for target in self.tables.get(table, []):
                for write in writes_of(target, old, new, transactional=transactional):
                    self.heat.add(write, step=self.step, kind=kind)

    def result(self, order_ids: list[str], mix: str = "") -> Heat:
        """The tally, per order of the run that made these orders."""
        self.heat.orders, self.heat.order_ids, self.heat.mix = len(order_ids), frozenset(order_ids), mix
        return self.heat

    def refused(self, backend: Any, table: str, key: dict[str, Any]) -> None:
        """A conditional write that failed: DynamoDB bills the existing item's size (at least one unit)."""
        found = self.tables.get(table)
        if not found:
            return
        main = found[0]
        key = {k: v for k, v in key.items() if k in main.table_keys}
        existing = backend.get_item(table, key)
        size = item_size(existing.to_json()["Attributes"]) if existing is not None else 0
        with self._lock:
            self.heat.add(Write(main.name, key_text(key[main.hash_key]), write_units(size)))
            self.heat.refused += 1

    @contextmanager
    def _held(self, name: str) -> Iterator[list[tuple[str, Any, Any]]]:
        """This thread's writes held under `name` for the block; the block's caller counts them after it."""
        held: list[tuple[str, Any, Any]] = []
        setattr(self._local, name, held)
        try:
            yield held
        finally:
            setattr(self._local, name, None)

    @contextmanager
    def updating(self) -> Iterator[None]:
        with self._held("update") as steps:
            yield
        for table, old, new in steps:
            self._count(table, old, new)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._held("transaction") as writes:
            yield
        for table, old, new in writes:
            self._tally(table, old, new, transactional=True)


@contextmanager
def counting(tables: dict[str, list[Target]], region: str = "us-east-1") -> Iterator[Recorder]:
    """Count every item write moto (in this process: `mock_aws` or a threaded server) makes on `tables` until the
    block ends; moto is left as it was."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.exceptions import ConditionalCheckFailed
    from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][region]
    recorder = Recorder(tables)
    originals = {name: getattr(DynamoDBBackend, name) for name in ("put_item", "update_item", "delete_item")}
    original_transact = DynamoDBBackend.transact_write_items

    def wrap(name: str) -> Any:
        operation = originals[name]

        def counted(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            context = recorder.updating() if name == "update_item" else contextlib.nullcontext()
            try:
                with context:
                    return operation(self, table_name, key, *args, **kwargs)
            except ConditionalCheckFailed:
                if getattr(recorder._local, "transaction", None) is None:  # a cancelled transaction writes nothing
                    recorder.refused(self, table_name, key)
                raise

        return counted

    def transact(self: Any, *args: Any, **kwargs: Any) -> Any:
        with recorder.transaction():
            return original_transact(self, *args, **kwargs)

    shards = {name: _Shard(recorder, name) for name in tables}
    saved = {name: backend.tables[name].stream_shard for name in tables if name in backend.tables}
    for name in saved:
        backend.tables[name].stream_shard = shards[name]  # type: ignore[assignment]
    for name in originals:
        setattr(DynamoDBBackend, name, wrap(name))
    DynamoDBBackend.transact_write_items = transact  # type: ignore[method-assign]
    try:
        yield recorder
    finally:
        for name, operation in originals.items():
            setattr(DynamoDBBackend, name, operation)
        DynamoDBBackend.transact_write_items = original_transact  # type: ignore[method-assign]
        for name, shard in saved.items():
            if name in backend.tables:  # a rolled-back transaction put a copy in its place
                backend.tables[name].stream_shard = shard


# --- the run --------------------------------------------------------------------------------------------------


def seller_tokens(client: Any, sellers: int) -> list[str]:
    """A token for each of sellers s-1 .. s-<sellers> (admin route)."""
    from bench.stack import call

    tokens = []
    for n in range(1, sellers + 1):
        made = call(client, "POST", "/api/v1/tokens", {"role": "seller", "seller_id": f"s-{n}"})
        assert made.status_code == 201, made.body
        tokens.append(made.json_body["token"])
    return tokens


def walk(
    client: Any,
    app: Any,
    queue_url: str,
    secrets: dict[str, str],
    tokens: list[str],
    *,
    orders: int,
    customers: int,
    recorder: Recorder | None = None,
) -> list[str]:
    """Create `orders` orders (seller i % len(tokens), with that seller's token; customer i % customers), dispatch
    them to the registered partners (`secrets`: each one's callback secret, from `bench.stack.register_partners`)
    and walk each to `delivered` with bench/life.py's six callbacks; returns the order ids. `recorder`, if given,
    is told which step the writes belong to."""
    import boto3

    from bench.life import CALLBACKS
    from bench.stack import REGION, call, signed
    from tools.poller import drain
    from tools.sample_order import order_body

    sqs = boto3.session.Session(region_name=REGION).client("sqs")

    def entering(name: str) -> None:
        if recorder is not None:
            recorder.step = name

    ids = []
    entering("create")
    for n in range(orders):
        body = order_body(seller_id=f"s-{n % len(tokens) + 1}", user_id=f"u-{n % customers + 1}")
        created = call(client, "POST", "/api/v1/orders", body, token=tokens[n % len(tokens)])
        assert created.status_code == 201, created.body
        ids.append(created.json_body["id"])
    entering("dispatch")
    batches = drain(app, sqs, queue_url, max_batches=orders + 10)
    assert not any(b.failed_ids for b in batches), "every dispatch succeeded"
    entering("callbacks")
    for step, (integrator, status) in enumerate(CALLBACKS, 1):
        for order_id in ids:
            body_bytes = json.dumps({"order_id": order_id, "status": status}).encode()
            headers = signed(secrets[integrator], f"heat_{step}_{order_id}", body_bytes)
            answer = call(client, "POST", f"/api/v1/callbacks/{integrator}", body_bytes, token=None, **headers)
            assert answer.status_code == 200, answer.body
    drain(app, sqs, queue_url, max_batches=orders + 10)
    return ids


@contextmanager
def moto_in_process(stage: str = "heat") -> Iterator[dict[str, str]]:
    """moto in this process (`mock_aws`), every resource provisioned and the service pointed at it; the process
    environment is put back afterwards. In process, so the writes can be counted inside moto (no timing is taken)."""
    import moto  # before the service's clients are built again (reset_all), so they are mocked
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend

    from bench.stack import REGION, service_environment
    from infra.resources import provision
    from tools import moto_server
    from tools.caches import reset_all

    saved = dict(os.environ)
    lock = threading.RLock()
    # As tests/conftest.py `atomic_moto_writes`: DynamoDB applies a conditional write atomically, moto in two steps.
    names = ("put_item", "update_item", "delete_item", "transact_write_items", "get_item", "query", "scan")
    originals = {name: getattr(DynamoDBBackend, name) for name in names}
    moto_copy = dynamodb_models.copy  # type: ignore[attr-defined]

    def serialised(operation: Any) -> Any:
        def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return operation(*args, **kwargs)

        return one_at_a_time

    try:
        os.environ.update({k: v for k, v in service_environment("").items() if k != "AWS_ENDPOINT_URL"})
        os.environ.pop("AWS_ENDPOINT_URL", None)
        os.environ.pop("AWS_PROFILE", None)
        # As the local stack's moto server (tools/moto_server.py): a transaction rolls back only the items it names,
        # not deep copies of whole tables (which made a 200-order run slow and 1.6 GB big).
        dynamodb_models.copy = types.SimpleNamespace(copy=copy.copy, deepcopy=moto_server._not_whole_tables)  # type: ignore[attr-defined,assignment]
        for name, operation in originals.items():
            cheaper = moto_server.transact_write_items if name == "transact_write_items" else operation
            setattr(DynamoDBBackend, name, serialised(cheaper))
        with moto.mock_aws():
            env = provision(stage, region=REGION)
            os.environ.update(env)
            reset_all()
            yield env
    finally:
        for name, operation in originals.items():
            setattr(DynamoDBBackend, name, operation)
        dynamodb_models.copy = moto_copy  # type: ignore[attr-defined]
        os.environ.clear()
        os.environ.update(saved)
        reset_all()


def run(
    client: Any,
    app: Any,
    env: dict[str, str],
    fake: Any,
    stage: str,
    *,
    orders: int = ORDERS,
    sellers: int = SELLERS,
    customers: int = CUSTOMERS,
) -> Heat:
    """Register the three demo partners and issue the sellers' tokens, then count the writes of `walk`."""
    from bench.life import CALLBACKS, INTEGRATORS
    from bench.stack import REGION, register_partners

    secrets = register_partners(client, fake, INTEGRATORS)
    tokens = seller_tokens(client, sellers)
    with counting(targets(stage), REGION) as recorder:
        ids = walk(
            client, app, env["ORDERS_QUEUE_URL"], secrets, tokens, orders=orders, customers=customers, recorder=recorder
        )
    return recorder.result(
        ids,
        f"{orders} orders from {sellers} sellers and {customers} customers, each sent to {len(INTEGRATORS)} "
        f"integrators and walked to `delivered` by {len(CALLBACKS)} callbacks",
    )


def measure(orders: int = ORDERS, sellers: int = SELLERS, customers: int = CUSTOMERS) -> Heat:
    """The benchmark: a fresh in-process moto, the run, its tally."""
    from bench.stack import api_client
    from tests.support.fake_integrator import FakeIntegrator

    stage = "heat"
    with moto_in_process(stage) as env, FakeIntegrator() as fake, tempfile.TemporaryDirectory() as tmp:
        import app as application

        with api_client(application.app, Path(tmp)) as client:
            return run(client, application.app, env, fake, stage, orders=orders, sellers=sellers, customers=customers)
