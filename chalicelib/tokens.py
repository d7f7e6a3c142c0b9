"""Bearer tokens: random, shown once, stored as SHA-256, checked in constant time.

Format `orl_<id>_<secret>`: the public id finds the row with one GetItem, the secret is never stored. Checking a
presented token is chalicelib/bearer.py (the authorizer's path, without pydantic).
"""

from __future__ import annotations

import secrets
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from chalicelib.bearer import digest as _digest
from chalicelib.db import tokens as store
from chalicelib.domain.clock import iso
from chalicelib.domain.identifiers import Identifier
from chalicelib.domain.identity import Role
from chalicelib.domain.token import StoredToken


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
    )


def issue_token(request: CreateTokenRequest) -> IssuedToken:
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    record = StoredToken(
        token_id=token_id,
        secret_sha256=_digest(secret),
        role=request.role.value,
        seller_id=request.seller_id,
        label=request.label,
        created_at=iso(),
    )
    store.put(record)
    return IssuedToken(token=f"orl_{token_id}_{secret}", **_view(record).model_dump())


def list_tokens() -> list[TokenView]:
    return [_view(record) for record in store.list_all()]


def revoke_token(token_id: str) -> bool:
    return store.revoke(token_id, iso())
