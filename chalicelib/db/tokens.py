"""API token storage: looked up by public id, the secret part only ever stored as SHA-256."""

from __future__ import annotations

from dataclasses import asdict

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.db.concurrency import StaleWrite, condition_failed
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
        expires_at=record.expires_at,
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


def revoke_keeping(token_id: str, at: str, keeper: str, *, create: bool = False) -> None:
    """Revoke `token_id` only while `keeper` is still not revoked, in one transaction: two admins revoking each
    other's token at once cannot both succeed and leave no admin. `create` writes the row when there is none
    (the bootstrap token has no row until it is disabled). StaleWrite when the keeper was revoked meanwhile."""
    ensure_bound()
    record = TokenRecord(token_id=token_id)
    actions: list[Action] = [TokenRecord.revoked_at.set(at)]
    if create:
        actions += [
            TokenRecord.role.set("admin"),
            TokenRecord.label.set(TokenRecord.label | "bootstrap admin token"),
            TokenRecord.secret_sha256.set(TokenRecord.secret_sha256 | ""),
            TokenRecord.created_at.set(TokenRecord.created_at | at),
        ]
    try:
        with TransactWrite(connection=TokenRecord._get_connection().connection) as transaction:
            transaction.condition_check(TokenRecord, keeper, condition=TokenRecord.revoked_at.does_not_exist())
            transaction.update(record, actions=actions, condition=None if create else TokenRecord.token_id.exists())
    except TransactWriteError as exc:
        reasons = {reason.code for reason in exc.cancellation_reasons if reason is not None} - {"None"}
        if reasons and reasons <= {"ConditionalCheckFailed", "TransactionConflict"}:
            raise StaleWrite(f"token {token_id}") from exc
        raise


def list_all(limit: int = 100) -> list[StoredToken]:
    """Admin listing; the tokens table is small (one row per issued token), a bounded Scan is fine here. The
    integrator portal's links and sessions share the table and are not API tokens: left out."""
    ensure_bound()
    api_tokens = TokenRecord.role.is_in("admin", "seller")
    return [_to_domain(record) for record in TokenRecord.scan(filter_condition=api_tokens, limit=limit)]


def admins() -> list[StoredToken]:
    """Every admin token row, revoked or not (the whole table is read: it holds one small row per token)."""
    ensure_bound()
    return [_to_domain(record) for record in TokenRecord.scan(filter_condition=TokenRecord.role == "admin")]
