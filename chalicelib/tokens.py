"""Bearer tokens: random, shown once, stored as SHA-256, checked in constant time.

Format `orl_<id>_<secret>`: the public id finds the row with one GetItem, the secret is never stored. Checking a
presented token is chalicelib/bearer.py (the authorizer's path, without pydantic).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from chalicelib.bearer import BOOTSTRAP_ID, bootstrap_configured
from chalicelib.bearer import digest as _digest
from chalicelib.db import tokens as store
from chalicelib.db.concurrency import retry_on_conflict
from chalicelib.domain.clock import iso, utcnow
from chalicelib.domain.identifiers import Identifier
from chalicelib.domain.identity import Role
from chalicelib.domain.token import StoredToken
from chalicelib.errors import Conflict

# At least the authorizer's cache time (an answer is reused for 60 s), at most a year: longer-lived access is a
# token without expiry, revoked when no longer needed.
ExpiresIn = Annotated[
    int,
    Field(
        ge=60,
        le=366 * 86_400,
        strict=True,
        description="The token stops working this many seconds after it is issued (up to 60 s later: the "
        "authorizer's answers are cached that long). Without it the token works until revoked.",
    ),
]


class CreateTokenRequest(BaseModel):
    # The rule the validator below enforces, stated for schema-driven clients.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"properties": {"role": {"const": "seller"}}, "required": ["role", "seller_id"]},
                {"properties": {"role": {"const": "admin"}, "seller_id": {"type": "null"}}, "required": ["role"]},
            ]
        },
    )

    role: Role
    seller_id: Identifier | None = None
    label: Annotated[str, StringConstraints(max_length=200)] | None = None
    expires_in_seconds: ExpiresIn | None = None

    @model_validator(mode="after")
    def _seller_tokens_name_a_seller(self) -> CreateTokenRequest:
        if self.role is Role.SELLER and not self.seller_id:
            raise ValueError("seller_id is required for a seller token")
        if self.role is Role.ADMIN and self.seller_id:
            raise ValueError("an admin token is not bound to a seller")
        return self


class TokenView(BaseModel):
    id: str
    role: Role
    seller_id: str | None
    label: str | None
    created_at: str
    revoked_at: str | None = None
    expires_at: str | None = None


class IssuedToken(TokenView):
    token: str


def _view(record: StoredToken) -> TokenView:
    return TokenView(
        id=record.token_id,
        role=Role(record.role),
        seller_id=record.seller_id,
        label=record.label,
        created_at=record.created_at,
        revoked_at=record.revoked_at,
        expires_at=record.expires_at,
    )


def issue_token(request: CreateTokenRequest) -> IssuedToken:
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    now = utcnow()
    expires = request.expires_in_seconds
    record = StoredToken(
        token_id=token_id,
        secret_sha256=_digest(secret),
        role=request.role.value,
        seller_id=request.seller_id,
        label=request.label,
        created_at=iso(now),
        expires_at=iso(now + timedelta(seconds=expires)) if expires else None,
    )
    store.put(record)
    return IssuedToken(token=f"orl_{token_id}_{secret}", **_view(record).model_dump())


def list_tokens() -> list[TokenView]:
    return [_view(record) for record in store.list_all()]


def revoke_token(token_id: str) -> bool:
    """Revoke a token (`bootstrap-admin`: disable the bootstrap admin token); False when there is no such token.
    Conflict when it is the last admin token that works and does not expire: nobody could administer the service
    any more (no route can issue an admin token without one)."""
    if token_id != BOOTSTRAP_ID:
        record = store.get(token_id)
        if record is None:
            return False
        if record.role != Role.ADMIN.value or not record.usable(iso()):
            return store.revoke(token_id, iso())

    def revoke_admin() -> bool:
        keeper = _another_admin(token_id)
        if keeper is None:
            raise Conflict(
                "this is the last admin token that does not expire; issue another admin token before revoking it",
                [{"field": "token_id", "message": "the only lasting admin token"}],
            )
        store.revoke_keeping(token_id, iso(), keeper, create=token_id == BOOTSTRAP_ID)
        return True

    return retry_on_conflict(revoke_admin)


def _another_admin(token_id: str) -> str | None:
    """The id of an admin token other than `token_id` that works now and never expires, else None."""
    now = iso()
    stored = {record.token_id: record for record in store.admins()}
    for record in stored.values():
        if record.token_id not in (token_id, BOOTSTRAP_ID) and record.expires_at is None and record.usable(now):
            return record.token_id
    bootstrap = stored.get(BOOTSTRAP_ID)
    if token_id != BOOTSTRAP_ID and (bootstrap is None or bootstrap.revoked_at is None) and bootstrap_configured():
        return BOOTSTRAP_ID
    return None
