"""Delivery state (one row per order and integrator) and the attempt log, in one table keyed by order id:
one Query answers "where does this order stand with every integrator"."""

from __future__ import annotations

import json
import zlib
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.db.concurrency import StaleWrite, condition_failed
from chalicelib.db.records import AttemptRecord, DeliveryRecord, ensure_bound
from chalicelib.domain.delivery import DeliveryState, is_test, listing_bounds, listing_row, listing_sort
from chalicelib.observability import logger

STATE = "state#"
ATTEMPT = "attempt#"
# The `by_integrator_status` index holds only the states something looks up by integrator (replay of failed
# deliveries, the waiting backlog), spread over INDEX_SHARDS keys per integrator and status: a healthy
# integrator's deliveries never touch it, and 2,000 deliveries/s starting to wait put 250 writes/s on each key.
INDEXED_STATUSES = frozenset({"failed", "waiting"})
INDEX_SHARDS = 8


def index_key(integrator: str, status: str, order_id: str) -> str | None:
    if status not in INDEXED_STATUSES or is_test(order_id):  # nothing replays or resumes a test event
        return None
    return f"{integrator}#{status}#{zlib.crc32(order_id.encode()) % INDEX_SHARDS}"


# The `by_integrator` index holds every delivery row keyed `<integrator>#<shard>` and sorted by the order id's
# ULID (time-ordered, never changing), keys only: the integrator portal's list. A delivery writes it once, when its
# row is created, so 2,000 deliveries/s to one integrator put 2,000 writes/s on its keys; over 16 shards that is
# 125 per key (tests/functional/test_portal.py measures the writes and checks the spread).
PORTAL_SHARDS = 16


def portal_shard(integrator: str, order_id: str) -> str:
    return f"{integrator}#{zlib.crc32(order_id.encode()) % PORTAL_SHARDS}"


FIELDS = tuple(name for name in DeliveryState.model_fields if name not in ("order_id", "callback_answers"))


def pack_answers(answers: list[dict[str, Any]]) -> bytes | None:
    """The row's callback answers as one zlib-compressed JSON attribute. Kept as plain JSON they made a row that
    had seen two or three callbacks pass 1 KB, so each later write of it cost two write units instead of one
    (issue 22); the answers of one order repeat most of their text and compress to about a third."""
    if not answers:
        return None
    return zlib.compress(json.dumps(answers, separators=(",", ":"), ensure_ascii=False).encode(), 9)


def _answers(record: DeliveryRecord) -> list[Any]:
    if record.answers is not None:
        unpacked: list[Any] = json.loads(zlib.decompress(record.answers))
        return unpacked
    return list(record.callback_answers or [])  # a row written before the packed attribute


def _to_domain(record: DeliveryRecord) -> DeliveryState:
    fields = {n: getattr(record, n) for n in FIELDS}
    return DeliveryState.model_validate({"order_id": record.order_id, "callback_answers": _answers(record), **fields})


def get_state(order_id: str, integrator: str) -> DeliveryState | None:
    ensure_bound()
    try:
        return _to_domain(DeliveryRecord.get(order_id, STATE + integrator, consistent_read=True))
    except DeliveryRecord.DoesNotExist:
        return None


def list_states(order_id: str) -> list[DeliveryState]:
    """Every state row of the order. A row without its integrator or status (a partial row, which only a
    non-atomic emulator has produced so far) is logged and left out rather than failing the whole order."""
    ensure_bound()
    query = DeliveryRecord.query(order_id, DeliveryRecord.sk.startswith(STATE), consistent_read=True)
    states = []
    for record in query:
        if record.integrator is None or record.status is None:
            logger.warning("partial delivery row left out", extra={"order_id": order_id, "sk": record.sk})
            continue
        states.append(_to_domain(record))
    return states


def _state_write(state: DeliveryState, expected_revision: int | None) -> tuple[DeliveryState, DeliveryRecord, Any]:
    """The row `state` becomes (next revision) and the condition that it is still at `expected_revision`."""
    stored = state.model_copy(update={"revision": (expected_revision or 0) + 1})
    values: dict[str, Any] = stored.model_dump(mode="json", exclude={"order_id", "callback_answers"})
    values["answers"] = pack_answers([a.model_dump(mode="json") for a in stored.callback_answers])
    values["integrator_status"] = index_key(stored.integrator, stored.status, stored.order_id)
    values["integrator_shard"] = portal_shard(stored.integrator, stored.order_id)
    values["integrator_sort"] = listing_sort(stored.order_id)
    record = DeliveryRecord(stored.order_id, STATE + stored.integrator, **values)
    condition = (
        DeliveryRecord.sk.does_not_exist()
        if expected_revision is None
        else DeliveryRecord.revision == expected_revision
    )
    return stored, record, condition


def put_state(state: DeliveryState, expected_revision: int | None) -> DeliveryState:
    """Write the whole row if its revision is still `expected_revision` (None: the row must not exist yet).
    Returns the state as stored (next revision); raises StaleWrite otherwise."""
    ensure_bound()
    stored, record, condition = _state_write(state, expected_revision)
    try:
        record.save(condition=condition)
    except PutError as exc:
        if condition_failed(exc):
            raise StaleWrite(f"delivery {stored.order_id}/{stored.integrator}") from exc
        raise
    return stored


def put_state_with_attempt(
    state: DeliveryState,
    expected_revision: int,
    moment: datetime,
    retention_days: int,
    *,
    line_key: str,
    **attempt: Any,
) -> DeliveryState:
    """An attempt's line in the log, then its outcome on the row (`put_state`, StaleWrite if the row moved).

    Two plain writes, not a transaction (which bills every item twice): the line goes first and is keyed by the
    job's run (`line_key`), so writing it again (a retry after a conflict, or the job run again after a crash
    between the two writes, which sends again with the same webhook-id) replaces it: the log never holds a line
    twice, and never misses the line of an outcome the row recorded."""
    _attempt_record(state.order_id, moment, retention_days, line_key=line_key, **attempt).save()
    return put_state(state, expected_revision)


def set_fields(state: DeliveryState, **fields: Any) -> None:
    """Change a few fields of `state`'s row, conditional on its revision; raises StaleWrite if it moved.
    Fields given as None are left as they are."""
    ensure_bound()
    record = DeliveryRecord(state.order_id, STATE + state.integrator)
    actions: list[Action] = []
    if fields.get("status"):
        indexed = index_key(state.integrator, fields["status"], state.order_id)
        actions.append(
            DeliveryRecord.integrator_status.set(indexed) if indexed else DeliveryRecord.integrator_status.remove()
        )
    if (answers := fields.pop("callback_answers", None)) is not None:
        packed = pack_answers(answers)
        actions.append(DeliveryRecord.answers.set(packed) if packed else DeliveryRecord.answers.remove())
        actions.append(DeliveryRecord.callback_answers.remove())  # a legacy plain copy would be read no more
    actions += [getattr(DeliveryRecord, name).set(value) for name, value in fields.items() if value is not None]
    actions.append(DeliveryRecord.revision.set(state.revision + 1))
    try:
        record.update(actions=actions, condition=DeliveryRecord.revision == state.revision)
    except UpdateError as exc:
        if condition_failed(exc):
            raise StaleWrite(f"delivery {state.order_id}/{state.integrator}") from exc
        raise


def _attempt_record(
    order_id: str, moment: datetime, retention_days: int, *, line_key: str | None = None, **fields: Any
) -> AttemptRecord:
    ensure_bound()
    sk = ATTEMPT + (line_key or f"{moment.isoformat()}#{fields['integrator']}#{fields['attempt']}")
    return AttemptRecord(order_id, sk, expires_at=moment + timedelta(days=retention_days), **fields)


def add_attempt(
    order_id: str, moment: datetime, retention_days: int, *, line_key: str | None = None, **fields: Any
) -> None:
    """One line of the attempt log; with `line_key` (the job's run), writing it again replaces it."""
    _attempt_record(order_id, moment, retention_days, line_key=line_key, **fields).save()


def list_attempts(order_id: str) -> list[dict[str, Any]]:
    ensure_bound()
    rows = []
    for record in AttemptRecord.query(order_id, AttemptRecord.sk.startswith(ATTEMPT)):  # one Query, then by time
        rows.append(
            {
                "integrator": record.integrator,
                "event": record.event,
                "webhook_id": record.webhook_id,
                "attempt": int(record.attempt),
                "at": record.at,
                "outcome": record.outcome,
                "status_code": int(record.status_code) if record.status_code is not None else None,
                "latency_ms": float(record.latency_ms),
                "error_class": record.error_class,
                "error": record.error,
                "detail": record.detail,
                "response_body": record.response_body,
                "retry_in_seconds": record.retry_in_seconds,
                "payload_template_version": (
                    int(record.payload_template_version) if record.payload_template_version is not None else None
                ),
                "request_headers": record.request_headers,
                "request_body": record.request_body,
                "test": bool(record.test),
            }
        )
    return sorted(rows, key=lambda row: str(row["at"]))


def find(integrator: str, status: str, since: str, until: str, limit: int = 500) -> list[DeliveryState]:
    """The `limit` oldest deliveries of `integrator` in `status` (failed or waiting) last changed between `since`
    and `until`: one index Query per shard, merged by time."""
    ensure_bound()
    found: list[DeliveryState] = []
    for shard in range(INDEX_SHARDS):
        query = DeliveryRecord.by_integrator_status.query(
            f"{integrator}#{status}#{shard}", DeliveryRecord.updated_at.between(since, until), limit=limit
        )
        found += [_to_domain(record) for record in query]
    return sorted(found, key=lambda state: state.updated_at)[:limit]


RANK_STEP = 1000  # resumptions of one attempt (failed probes) stay below the next attempt


def park(order_id: str, integrator: str, job: dict[str, Any], *, until: str | None, reason: str, now: str) -> bool:
    """Hold a delivery back without spending an attempt: the row becomes `waiting` and keeps the job to resume.

    One UpdateItem, no read: it creates the row for a first event, or points it at this job, unless this webhook
    was already delivered, or the row already recorded this attempt (a late duplicate of a job that ran), or the
    row belongs to another registration of the integrator's name. False when so.
    """
    ensure_bound()
    webhook = str(job["webhook_id"])
    attempt = int(job["attempt"])
    rank = attempt * RANK_STEP + int(job.get("resume", 0))
    actions: list[Action] = [
        DeliveryRecord.integrator.set(integrator),
        DeliveryRecord.event.set(str(job["event"])),
        DeliveryRecord.webhook_id.set(webhook),
        DeliveryRecord.status.set("waiting"),
        DeliveryRecord.integrator_status.set(f"{integrator}#waiting#{zlib.crc32(order_id.encode()) % INDEX_SHARDS}"),
        DeliveryRecord.waiting_job.set(job),
        DeliveryRecord.waiting_rank.set(rank),
        DeliveryRecord.last_error.set(reason),
        DeliveryRecord.updated_at.set(now),
        DeliveryRecord.integrator_shard.set(portal_shard(integrator, order_id)),
        DeliveryRecord.integrator_sort.set(listing_sort(order_id)),
        DeliveryRecord.attempts.set(DeliveryRecord.attempts | 0),
        DeliveryRecord.has_order.set(DeliveryRecord.has_order | False),
        DeliveryRecord.delivered_webhook_ids.set(DeliveryRecord.delivered_webhook_ids | []),
        DeliveryRecord.revision.add(1),
    ]
    actions.append(DeliveryRecord.next_attempt_at.set(until) if until else DeliveryRecord.next_attempt_at.remove())
    registration = job.get("registration_id")
    if registration:
        actions.append(DeliveryRecord.registration_id.set(str(registration)))
    same_registration = (
        DeliveryRecord.registration_id == str(registration)
        if registration
        else DeliveryRecord.registration_id.does_not_exist()
    )
    # A late duplicate of a job must never replace the later job already parked (or claimed) for this webhook:
    # resumed, it would replay an attempt that ran, and a replayed probe would hold the circuit half-open.
    not_run_yet = (
        (DeliveryRecord.webhook_id != webhook)
        | (DeliveryRecord.attempts < attempt)
        | ((DeliveryRecord.status == "pending") & (DeliveryRecord.attempts <= attempt))
        | (
            (DeliveryRecord.status == "waiting")
            & (DeliveryRecord.waiting_rank.does_not_exist() | (DeliveryRecord.waiting_rank <= rank))
        )
    )
    condition = DeliveryRecord.sk.does_not_exist() | (
        same_registration & ~DeliveryRecord.delivered_webhook_ids.contains(webhook) & not_run_yet
    )
    try:
        DeliveryRecord(order_id, STATE + integrator).update(actions=actions, condition=condition)
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def oldest_waiting(integrator: str, limit: int, *, after: str | None = None) -> list[DeliveryState]:
    """The integrator's waiting deliveries, longest waiting first (after the `updated_at` given, if any)."""
    return [
        s for s in find(integrator, "waiting", after or "0", "~", limit=limit) if after is None or s.updated_at > after
    ]


def count_waiting(integrator: str) -> int:
    """How many deliveries wait for `integrator` (an index count: reads the waiting rows, never the attempts)."""
    ensure_bound()
    return sum(
        int(DeliveryRecord.by_integrator_status.count(f"{integrator}#waiting#{shard}")) for shard in range(INDEX_SHARDS)
    )


def list_for_integrator(
    integrator: str, *, status: str | None, since: str, until: str, before: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `integrator`'s deliveries, newest order first, of orders created in [since, until] (ISO times,
    or "0" and "~" for no bound), optionally in one status, and the sort key to continue from (`before`), or None
    at the end.

    One Query per shard for the page's keys, then one BatchGetItem for their rows: what a page reads grows with the
    page, not with the integrator's history. A status filter is applied to the rows read, so a page may come back
    short (still with a cursor). The cursor is one sort key for every shard: nothing newer than it is left unread
    in any shard, because a shard that stopped early sets how far the page may go."""
    from chalicelib.aws import client
    from chalicelib.db.sharded import newest_first

    ensure_bound()
    low, high = listing_bounds(since, until, before)
    keys: list[tuple[str, str]] = []
    stops: list[str] = []  # where each shard that stopped early stopped reading: the page cannot go past them
    for shard in range(PORTAL_SHARDS):
        page = client("dynamodb").query(
            TableName=DeliveryRecord.Meta.table_name,
            IndexName="by_integrator",
            KeyConditionExpression="integrator_shard = :pk AND integrator_sort BETWEEN :low AND :high",
            ExpressionAttributeValues={":pk": {"S": f"{integrator}#{shard}"}, ":low": {"S": low}, ":high": {"S": high}},
            ScanIndexForward=False,
            Limit=limit,
        )
        keys += [(item["integrator_sort"]["S"], item["order_id"]["S"]) for item in page.get("Items", [])]
        if "LastEvaluatedKey" in page:
            stops.append(page["LastEvaluatedKey"]["integrator_sort"]["S"])
    taken, position = newest_first(keys, stops, limit)
    states = {
        record.order_id: _to_domain(record)
        for record in DeliveryRecord.batch_get([(order_id, STATE + integrator) for _, order_id in taken])
    }
    rows = []
    for sort, order_id in taken:
        state = states.get(order_id)
        if state is not None and (status is None or state.status == status):
            rows.append(listing_row(sort, state))
    return rows, position
