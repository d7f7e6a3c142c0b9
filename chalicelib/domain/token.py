"""An issued API token as stored: its public id, role and the SHA-256 of its secret part (never the secret)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoredToken:
    token_id: str
    secret_sha256: str
    role: str
    seller_id: str | None
    label: str | None
    created_at: str
    revoked_at: str | None = None
    expires_at: str | None = None

    def usable(self, now: str) -> bool:
        """Neither revoked nor expired at `now` (ISO text as `clock.iso` writes it, which sorts like time)."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)
