"""pynamodb table models. They never leave `chalicelib.db`: the repository turns them into domain objects.

Table names come from settings, so the classes are bound at first use (`bind_tables`) rather than
at import, when a Lambda's stage variables may not be set yet. Every model sends through the process's one DynamoDB
client (chalicelib/aws.py), where pynamodb would build a client per model: five on a dispatcher's cold start.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.connection.table import TableConnection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.aws import client
from chalicelib.settings import Settings

UNBOUND = "unbound-table"


class Record(Model):
    """Base of every table model: sends through the shared DynamoDB client. Each model keeps its own pynamodb
    connection (it holds the table's schema); only the botocore client under it is shared, and it is thread-safe."""

    @classmethod
    def _get_connection(cls) -> TableConnection:
        table = super()._get_connection()
        table.connection._client = client("dynamodb")
        return table


class _OrderIndex(GlobalSecondaryIndex["OrderRecord"]):
    """Base for the list indexes: every one sorts by `sort_key` (created_at#id), newest last."""

    sort_key = UnicodeAttribute(range_key=True)


# Write-sharding of the keys every order would otherwise share (the listing of all orders, the outbox, the overdue
# list): at 10,000 orders/s a shard of 16 takes 625 writes/s, under a partition's 1,000. A list page merges the
# shards newest first (db/orders.py).
ORDER_SHARDS = 16


class ByShardIndex(_OrderIndex):
    """Every order, spread over ORDER_SHARDS keys (`shard` = `o#<n>`). Keys and the parties only: those never
    change, so a status move writes nothing here (the page's orders are read with one BatchGetItem)."""

    class Meta:
        index_name = "by_shard"
        projection = IncludeProjection(["seller_id", "user_id"])

    shard = UnicodeAttribute(hash_key=True)


class BySellerKeysIndex(_OrderIndex):
    """A seller's orders, keys and customer only (never changed by a status move)."""

    class Meta:
        index_name = "by_seller_keys"
        projection = IncludeProjection(["user_id"])

    seller_id = UnicodeAttribute(hash_key=True)


class ByUserKeysIndex(_OrderIndex):
    """A customer's orders, keys and seller only."""

    class Meta:
        index_name = "by_user_keys"
        projection = IncludeProjection(["seller_id"])

    user_id = UnicodeAttribute(hash_key=True)


class OverdueIndex(_OrderIndex):
    """Sparse: only orders with an overdue acknowledgement carry `overdue` (`overdue#<shard>`; admin list)."""

    class Meta:
        index_name = "overdue"
        projection = AllProjection()

    overdue = UnicodeAttribute(hash_key=True)


class BySellerOverdueIndex(_OrderIndex):
    """Sparse: the same orders keyed by seller, so a seller's overdue list reads only its own rows."""

    class Meta:
        index_name = "by_seller_overdue"
        projection = AllProjection()

    seller_overdue = UnicodeAttribute(hash_key=True)


class OutboxIndex(GlobalSecondaryIndex["OrderRecord"]):
    """Sparse: only orders whose last event has not reached the queue carry `outbox_pk` (`pending#<shard>`)."""

    class Meta:
        index_name = "outbox"
        projection = KeysOnlyProjection()

    outbox_pk = UnicodeAttribute(hash_key=True)
    outbox_at = UnicodeAttribute(range_key=True)


class OrderRecord(Record):
    class Meta:
        table_name = UNBOUND

    id = UnicodeAttribute(hash_key=True)
    shard = UnicodeAttribute(null=True)  # null only on rows written before the sharded layout (make migrate)
    status = UnicodeAttribute()
    version = NumberAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    sort_key = UnicodeAttribute()
    seller_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    doc = BinaryAttribute(null=True, legacy_encoding=False)  # user, seller, details, timeline (db/orders.py)
    # Rows written before the compressed document keep these until they are rewritten.
    user = JSONAttribute(null=True)
    seller = JSONAttribute(null=True)
    details = JSONAttribute(null=True)
    timeline = JSONAttribute(null=True)
    outbox = JSONAttribute(null=True)
    outbox_pk = UnicodeAttribute(null=True)
    outbox_at = UnicodeAttribute(null=True)
    outbox_event_id = UnicodeAttribute(null=True)
    overdue_integrators = JSONAttribute(null=True)
    overdue = UnicodeAttribute(null=True)
    seller_overdue = UnicodeAttribute(null=True)

    by_shard = ByShardIndex()
    by_seller = BySellerKeysIndex()
    by_user = ByUserKeysIndex()
    outbox_index = OutboxIndex()
    overdue_index = OverdueIndex()
    by_seller_overdue = BySellerOverdueIndex()


class TokenRecord(Record):
    """An API token: the public id is the key, only the SHA-256 of the secret part is stored."""

    class Meta:
        table_name = UNBOUND

    token_id = UnicodeAttribute(hash_key=True)
    secret_sha256 = UnicodeAttribute()
    role = UnicodeAttribute()
    seller_id = UnicodeAttribute(null=True)
    label = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    revoked_at = UnicodeAttribute(null=True)
    expires_at = UnicodeAttribute(null=True)
    integrator = UnicodeAttribute(null=True)  # portal links and sessions: the one integrator they open
    scopes = JSONAttribute(null=True)


class IntegratorRecord(Record):
    """Integrator configuration without secrets; those live in Secrets Manager under `secret_name`."""

    class Meta:
        table_name = UNBOUND

    name = UnicodeAttribute(hash_key=True)
    url = UnicodeAttribute()
    auth_type = UnicodeAttribute()
    auth_params = JSONAttribute(default=dict)
    events = JSONAttribute()
    seller_ids = JSONAttribute(null=True)
    enabled = BooleanAttribute(default=True)
    timeout_seconds = NumberAttribute()
    deliver_within_seconds = NumberAttribute(null=True)
    ack_within_seconds = NumberAttribute(null=True)
    max_requests_per_second = NumberAttribute(null=True)
    secret_name = UnicodeAttribute()
    version = NumberAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    payload_template = UnicodeAttribute(null=True)
    payload_template_version = NumberAttribute(null=True)
    registration_id = UnicodeAttribute(null=True)  # None: registered before registrations had ids


class ByIntegratorStatusIndex(GlobalSecondaryIndex["DeliveryRecord"]):
    """Deliveries of one integrator in one state by time: what an operator replays after an outage."""

    class Meta:
        index_name = "by_integrator_status"
        projection = AllProjection()

    integrator_status = UnicodeAttribute(hash_key=True)
    updated_at = UnicodeAttribute(range_key=True)


class ByIntegratorIndex(GlobalSecondaryIndex["DeliveryRecord"]):
    """Every delivery of one integrator, newest order first (the integrator portal's list), spread over shard
    keys `<integrator>#<shard>` so that one busy integrator is no hot partition. Keys only, and a sort key that
    never changes (the order id's ULID, time-ordered): a delivery writes this index once, when its row is created;
    the page's rows are read by their keys."""

    class Meta:
        index_name = "by_integrator"
        projection = KeysOnlyProjection()

    integrator_shard = UnicodeAttribute(hash_key=True)
    integrator_sort = UnicodeAttribute(range_key=True)  # <ULID of the order id>#<order id>


class DeliveryRecord(Record):
    """Where one order stands with one integrator (`sk = state#<integrator>`)."""

    class Meta:
        table_name = UNBOUND

    order_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    integrator = UnicodeAttribute()
    status = UnicodeAttribute()
    event = UnicodeAttribute()
    webhook_id = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    has_order = BooleanAttribute(default=False)
    delivered_webhook_ids = JSONAttribute(default=list)
    last_status_code = NumberAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    next_attempt_at = UnicodeAttribute(null=True)
    response = JSONAttribute(null=True)
    external_id = UnicodeAttribute(null=True)
    remote_status = UnicodeAttribute(null=True)
    remote_progress = UnicodeAttribute(null=True)
    remote_status_at = UnicodeAttribute(null=True)
    remote_message = UnicodeAttribute(null=True)
    remote_eta = UnicodeAttribute(null=True)
    remote_details = JSONAttribute(null=True)
    raised_at = UnicodeAttribute(null=True)
    deliver_by = UnicodeAttribute(null=True)
    expired_at = UnicodeAttribute(null=True)
    ack = UnicodeAttribute(null=True)
    ack_due_at = UnicodeAttribute(null=True)
    acked_at = UnicodeAttribute(null=True)
    waiting_job = JSONAttribute(null=True)
    waiting_rank = NumberAttribute(null=True)  # attempt * 1000 + resume of waiting_job: a park never goes back
    run = JSONAttribute(null=True)
    claimed_until = UnicodeAttribute(null=True)
    callback_answers = JSONAttribute(null=True)  # as rows written before `answers` keep them (plain JSON)
    answers = BinaryAttribute(null=True, legacy_encoding=False)  # the integrator's last callbacks (db/deliveries.py)
    registration_id = UnicodeAttribute(null=True)  # the integrator registration the row belongs to
    updated_at = UnicodeAttribute()
    revision = NumberAttribute(default=0)
    integrator_status = UnicodeAttribute(null=True)
    integrator_shard = UnicodeAttribute(null=True)
    integrator_sort = UnicodeAttribute(null=True)

    by_integrator_status = ByIntegratorStatusIndex()
    by_integrator = ByIntegratorIndex()


class AttemptRecord(Record):
    """One HTTP attempt (`sk = attempt#<time>#<integrator>#<n>`), expired by TTL after the retention period."""

    class Meta:
        table_name = UNBOUND

    order_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    integrator = UnicodeAttribute()
    event = UnicodeAttribute()
    webhook_id = UnicodeAttribute()
    attempt = NumberAttribute()
    at = UnicodeAttribute()
    outcome = UnicodeAttribute()
    status_code = NumberAttribute(null=True)
    latency_ms = NumberAttribute()
    error_class = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)  # a payload template's reason: admins only
    response_body = UnicodeAttribute(null=True)
    retry_in_seconds = NumberAttribute(null=True)
    payload_template_version = NumberAttribute(null=True)  # None: the seed's shape was sent
    request_headers = JSONAttribute(null=True)  # as sent, secrets masked (shown to the integrator's portal)
    request_body = UnicodeAttribute(null=True)  # as sent (after the template), cut at REQUEST_BODY_KEPT
    test = BooleanAttribute(null=True)  # a portal test event, never an order
    expires_at = TTLAttribute(null=True)


MODELS: dict[str, type[Model]] = {
    "orders_table": OrderRecord,
    "tokens_table": TokenRecord,
    "integrators_table": IntegratorRecord,
    "deliveries_table": DeliveryRecord,
}
# Attempts share the deliveries table: one Query by order id returns states and the attempt log.
SHARED: dict[type[Model], str] = {AttemptRecord: "deliveries_table"}

_bound_to: tuple[str, ...] | None = None


def bind_tables(settings: Settings) -> None:
    """Point every model at its table; cheap to call on every use, rebinds only when names change."""
    global _bound_to
    wanted = tuple(getattr(settings, field) for field in MODELS) + (settings.region,)
    if wanted == _bound_to:
        return
    pairs: list[tuple[type[Model], str]] = [(model, field) for field, model in MODELS.items()] + list(SHARED.items())
    for model, field in pairs:
        meta: Any = model.Meta
        meta.table_name = getattr(settings, field)
        meta.region = settings.region
        model._connection = None
    _bound_to = wanted


def unbind_tables() -> None:
    global _bound_to
    _bound_to = None


def ensure_bound() -> None:
    """Bind the models to the configured tables; every storage function calls this first."""
    from chalicelib.settings import get_settings

    bind_tables(get_settings())


def warm_connections(*models: type[Model]) -> None:
    """Build the shared DynamoDB client and the models' connections on this thread before fanning out, so the
    worker threads of a cold container find them made."""
    ensure_bound()
    for model in models:
        model._get_connection()
