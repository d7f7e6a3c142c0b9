"""Who is calling: the roles a bearer token can carry and the principal the authorizer establishes.

Plain dataclasses, no pydantic: every function imports this through the route tables, and the authorizer's
cold start should not pay for pydantic (measured in bench/coldstart.py)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    SELLER = "seller"


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the authorizer established it."""

    token_id: str
    role: Role
    seller_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))  # a role given as text is checked, as before

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def may_see(self, seller_id: str) -> bool:
        return self.is_admin or self.seller_id == seller_id
