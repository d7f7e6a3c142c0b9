"""Bearer tokens: random, shown once, stored as SHA-256, checked in constant time.

Format `orl_<id>_<secret>`: the public id finds the row with one GetItem, the secret is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from pydantic import BaseModel, ConfigDict, model_validator

from chalicelib.db import tokens as store
from chalicelib.db.records import TokenRecord
from chalicelib.orders.domain import Principal, Role, iso
from chalicelib.orders.models import Identifier
from chalicelib.settings import get_settings

_TOKEN = re.compile(r"^orl_([0-9a-f]{16})_([A-Za-z0-9_-]{20,128})$")
BOOTSTRAP_ID = "bootstrap-admin"


class CreateTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    seller_id: Identifier | None = None
    label: str | None = None

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


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _view(record: TokenRecord) -> TokenView:
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
    record = TokenRecord(
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


def token_id_hint(raw: str) -> str:
    """What may be logged about a presented token: its public id, never the secret."""
    match = _TOKEN.match(raw)
    return match.group(1) if match else "malformed"


def authenticate(raw: str) -> Principal | None:
    """Map a presented bearer token to a principal, or None. Timing does not reveal how much matched."""
    bootstrap = get_settings().admin_token_sha256
    if bootstrap and hmac.compare_digest(_digest(raw), bootstrap):
        return Principal(token_id=BOOTSTRAP_ID, role=Role.ADMIN)
    match = _TOKEN.match(raw)
    if match is None:
        return None
    record = store.get(match.group(1))
    if record is None or record.revoked_at is not None:
        return None
    if not hmac.compare_digest(_digest(match.group(2)), record.secret_sha256):
        return None
    return Principal(token_id=record.token_id, role=Role(record.role), seller_id=record.seller_id)
