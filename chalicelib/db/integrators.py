"""Integrator configuration rows (secrets are never here), in and out as `IntegratorConfig`."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict

from pynamodb.exceptions import PutError
from pynamodb.expressions.condition import Condition

from chalicelib.db.concurrency import StaleWrite, condition_failed
from chalicelib.db.records import IntegratorRecord, ensure_bound
from chalicelib.domain.integrator import IntegratorConfig


def _to_domain(record: IntegratorRecord) -> IntegratorConfig:
    return IntegratorConfig(
        name=record.name,
        url=record.url,
        auth_type=record.auth_type,
        auth_params=dict(record.auth_params or {}),
        events=list(record.events),
        seller_ids=list(record.seller_ids) if record.seller_ids is not None else None,
        enabled=bool(record.enabled),
        timeout_seconds=float(record.timeout_seconds),
        max_requests_per_second=(
            int(record.max_requests_per_second) if record.max_requests_per_second is not None else None
        ),
        secret_name=record.secret_name,
        version=int(record.version),
        created_at=record.created_at,
        updated_at=record.updated_at,
        payload_template=record.payload_template,
        payload_template_version=int(record.payload_template_version or 0),
        deliver_within_seconds=_seconds(record.deliver_within_seconds),
        ack_within_seconds=_seconds(record.ack_within_seconds),
        registration_id=record.registration_id,
    )


def _seconds(value: float | None) -> int | None:
    return int(value) if value is not None else None


def _save(config: IntegratorConfig, condition: Condition) -> None:
    ensure_bound()
    try:
        IntegratorRecord(**asdict(config)).save(condition=condition)
    except PutError as exc:
        if condition_failed(exc):
            raise StaleWrite(f"integrator {config.name}") from exc
        raise


def insert(config: IntegratorConfig) -> None:
    """Raises StaleWrite when the name is taken."""
    _save(config, IntegratorRecord.name.does_not_exist())


def replace(config: IntegratorConfig, expected_version: int) -> None:
    """Raises StaleWrite when the stored row is no longer at `expected_version`."""
    _save(config, IntegratorRecord.version == expected_version)


def disable(name: str, *, updated_at: str) -> bool:
    """Disable an enabled integrator unless it changed meanwhile (the dispatcher's step after a long outage, which
    needs none of the registry's secrets or schemas). True if this call did it."""
    current = get(name)
    if current is None or not current.enabled:
        return False
    changed = dataclasses.replace(current, enabled=False, version=current.version + 1, updated_at=updated_at)
    try:
        replace(changed, current.version)
    except StaleWrite:
        return False
    return True


def get(name: str) -> IntegratorConfig | None:
    ensure_bound()
    try:
        return _to_domain(IntegratorRecord.get(name))
    except IntegratorRecord.DoesNotExist:
        return None


def list_all() -> list[IntegratorConfig]:
    """A handful of rows (one per partner platform): a Scan of this small table is the right tool."""
    ensure_bound()
    return [_to_domain(record) for record in IntegratorRecord.scan()]


def delete(name: str) -> None:
    ensure_bound()
    IntegratorRecord(name=name).delete()
