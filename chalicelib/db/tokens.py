"""API token storage: looked up by public id, the secret part only ever stored as SHA-256."""

from __future__ import annotations

from chalicelib.db.records import TokenRecord, ensure_bound


def put(record: TokenRecord) -> None:
    ensure_bound()
    record.save(condition=TokenRecord.token_id.does_not_exist())


def get(token_id: str) -> TokenRecord | None:
    ensure_bound()
    try:
        return TokenRecord.get(token_id)
    except TokenRecord.DoesNotExist:
        return None


def revoke(token_id: str, at: str) -> bool:
    ensure_bound()
    record = get(token_id)
    if record is None:
        return False
    record.update(actions=[TokenRecord.revoked_at.set(at)])
    return True


def list_all(limit: int = 100) -> list[TokenRecord]:
    """Admin listing; the tokens table is small (one row per issued token), a bounded Scan is fine here."""
    ensure_bound()
    return list(TokenRecord.scan(limit=limit))
