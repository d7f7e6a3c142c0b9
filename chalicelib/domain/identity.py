"""Who is calling: the roles a bearer token can carry and the principal the authorizer establishes."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class Role(StrEnum):
    ADMIN = "admin"
    SELLER = "seller"


class Principal(BaseModel):
    """Who is calling, as the authorizer established it."""

    token_id: str
    role: Role
    seller_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def may_see(self, seller_id: str) -> bool:
        return self.is_admin or self.seller_id == seller_id
