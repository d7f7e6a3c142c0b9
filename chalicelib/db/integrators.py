"""Integrator configuration rows (secrets are never here)."""

from __future__ import annotations

from pynamodb.exceptions import PutError

from chalicelib.db.records import IntegratorRecord, condition_failed, ensure_bound


def insert(record: IntegratorRecord) -> bool:
    ensure_bound()
    try:
        record.save(condition=IntegratorRecord.name.does_not_exist())
    except PutError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def replace(record: IntegratorRecord, expected_version: int) -> bool:
    ensure_bound()
    try:
        record.save(condition=IntegratorRecord.version == expected_version)
    except PutError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def get(name: str) -> IntegratorRecord | None:
    ensure_bound()
    try:
        return IntegratorRecord.get(name)
    except IntegratorRecord.DoesNotExist:
        return None


def list_all() -> list[IntegratorRecord]:
    """A handful of rows (one per partner platform): a Scan of this small table is the right tool."""
    ensure_bound()
    return list(IntegratorRecord.scan())


def delete(name: str) -> None:
    ensure_bound()
    IntegratorRecord(name=name).delete()
