"""An integrator as stored (configuration, no secrets) and as the dispatcher uses it (with its secrets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class IntegratorConfig:
    """The configuration row: everything but the secrets, which live in Secrets Manager."""

    name: str
    url: str
    auth_type: str
    auth_params: dict[str, Any]
    events: list[str]
    seller_ids: list[str] | None
    enabled: bool
    timeout_seconds: float
    max_requests_per_second: int | None
    secret_name: str
    version: int
    created_at: str
    updated_at: str
    payload_template: str | None = None
    payload_template_version: int = 0  # bumped on every change of the template (0: never had one)


@dataclass(frozen=True)
class Integrator:
    """What the dispatcher needs: configuration plus secrets, never serialised anywhere."""

    name: str
    url: str
    auth_type: str
    auth: dict[str, Any]
    events: list[str]
    enabled: bool
    timeout_seconds: float
    seller_ids: list[str] | None
    max_requests_per_second: int | None = None
    callback_secrets: list[str] = field(default_factory=list)
    payload_template: str | None = None
    payload_template_version: int = 0

    @property
    def template_version(self) -> int | None:
        """The template version a body is rendered with, for the attempt log; None: the seed's shape."""
        return self.payload_template_version if self.payload_template is not None else None

    def wants(self, event: str, seller_id: str) -> bool:
        return event in self.events and (self.seller_ids is None or seller_id in self.seller_ids)
