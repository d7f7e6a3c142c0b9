"""Delivery state (one row per order and integrator) and the attempt log, in one table keyed by order id:
one Query answers "where does this order stand with every integrator"."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.db.records import AttemptRecord, DeliveryRecord, condition_failed, ensure_bound

STATE = "state#"
ATTEMPT = "attempt#"


class StateConflict(Exception):
    """A delivery row kept changing under a read-modify-write; the caller's retry will succeed."""


FIELDS = (
    "integrator",
    "status",
    "event",
    "webhook_id",
    "attempts",
    "has_order",
    "delivered_webhook_ids",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "response",
    "external_id",
    "remote_status",
    "remote_progress",
    "remote_status_at",
    "remote_message",
    "remote_eta",
    "remote_details",
    "updated_at",
    "revision",
)


def _as_dict(record: DeliveryRecord) -> dict[str, Any]:
    data = {name: getattr(record, name) for name in FIELDS}
    data["order_id"] = record.order_id
    for name in ("attempts", "revision", "last_status_code"):
        if data[name] is not None:
            data[name] = int(data[name])
    return data


def get_state(order_id: str, integrator: str) -> dict[str, Any] | None:
    ensure_bound()
    try:
        return _as_dict(DeliveryRecord.get(order_id, STATE + integrator, consistent_read=True))
    except DeliveryRecord.DoesNotExist:
        return None


def list_states(order_id: str) -> list[dict[str, Any]]:
    ensure_bound()
    query = DeliveryRecord.query(order_id, DeliveryRecord.sk.startswith(STATE), consistent_read=True)
    return [_as_dict(record) for record in query]


def put_state(state: dict[str, Any], expected_revision: int | None) -> bool:
    """Write the whole state row if its revision is still `expected_revision` (None: the row must not exist)."""
    ensure_bound()
    values: dict[str, Any] = {name: state.get(name) for name in FIELDS}
    values["revision"] = (expected_revision or 0) + 1
    values["integrator_status"] = f"{state['integrator']}#{state['status']}"
    record = DeliveryRecord(state["order_id"], STATE + state["integrator"], **values)
    condition = (
        DeliveryRecord.sk.does_not_exist()
        if expected_revision is None
        else DeliveryRecord.revision == expected_revision
    )
    try:
        record.save(condition=condition)
    except Exception as exc:
        if condition_failed(exc):
            return False
        raise
    state["revision"] = values["revision"]
    return True


def set_fields(order_id: str, integrator: str, expected_revision: int, **fields: Any) -> bool:
    ensure_bound()
    record = DeliveryRecord(order_id, STATE + integrator)
    if fields.get("status"):
        fields["integrator_status"] = f"{integrator}#{fields['status']}"
    actions = [getattr(DeliveryRecord, name).set(value) for name, value in fields.items() if value is not None]
    actions.append(DeliveryRecord.revision.set(expected_revision + 1))
    try:
        record.update(actions=actions, condition=DeliveryRecord.revision == expected_revision)
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def add_attempt(order_id: str, moment: datetime, retention_days: int, **fields: Any) -> None:
    ensure_bound()
    sk = f"{ATTEMPT}{moment.isoformat()}#{fields['integrator']}#{fields['attempt']}"
    AttemptRecord(order_id, sk, expires_at=moment + timedelta(days=retention_days), **fields).save()


def list_attempts(order_id: str) -> list[dict[str, Any]]:
    ensure_bound()
    rows = []
    for record in AttemptRecord.query(order_id, AttemptRecord.sk.startswith(ATTEMPT)):
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
                "response_body": record.response_body,
                "retry_in_seconds": record.retry_in_seconds,
            }
        )
    return rows


def find(integrator: str, status: str, since: str, until: str, limit: int = 500) -> list[dict[str, Any]]:
    """Deliveries of `integrator` in `status` last changed between `since` and `until` (one index Query)."""
    ensure_bound()
    query = DeliveryRecord.by_integrator_status.query(
        f"{integrator}#{status}", DeliveryRecord.updated_at.between(since, until), limit=limit
    )
    return [_as_dict(record) for record in query]
