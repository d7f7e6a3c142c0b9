"""API token storage: looked up by public id, the secret part only ever stored as SHA-256."""

from __future__ import annotations

from dataclasses import asdict

from pynamodb.exceptions import UpdateError

from chalicelib.db.concurrency import condition_failed
from chalicelib.db.records import TokenRecord, ensure_bound
from chalicelib.domain.token import StoredToken


def _to_domain(record: TokenRecord) -> StoredToken:
    return StoredToken(
        token_id=record.token_id,
        secret_sha256=record.secret_sha256,
        role=record.role,
        seller_id=record.seller_id,
        label=record.label,
        created_at=record.created_at,
        revoked_at=record.revoked_at,
    )


def put(token: StoredToken) -> None:
    ensure_bound()
    TokenRecord(**asdict(token)).save(condition=TokenRecord.token_id.does_not_exist())


def get(token_id: str) -> StoredToken | None:
    ensure_bound()
    try:
        return _to_domain(TokenRecord.get(token_id))
    except TokenRecord.DoesNotExist:
        return None


def revoke(token_id: str, at: str) -> bool:
    """Mark the token revoked; False when there is no such token (one conditional UpdateItem, no read)."""
    ensure_bound()
    try:
        TokenRecord(token_id=token_id).update(
            actions=[TokenRecord.revoked_at.set(at)], condition=TokenRecord.token_id.exists()
        )
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def list_all(limit: int = 100) -> list[StoredToken]:
    """Admin listing; the tokens table is small (one row per issued token), a bounded Scan is fine here."""
    ensure_bound()
    return [_to_domain(record) for record in TokenRecord.scan(limit=limit)]
