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
    deliver_within_seconds: int | None = None
    ack_within_seconds: int | None = None
    # This registration's identity, new at every create: deliveries, callbacks and later events belong to the
    # registration that made them, so a name deleted and registered again inherits nothing. None: registered
    # before registrations had ids (its rows carry none either).
    registration_id: str | None = None


def belongs(row_registration: str | None, registration_id: str | None) -> bool:
    """Whether something recorded under `row_registration` (a delivery row, a queued job) belongs to the
    registration `registration_id`. Rows and jobs written before registrations had ids carry None: they belong
    only to an integrator that has none either, i.e. one registered before then and never registered again."""
    return row_registration == registration_id


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
    callback_secrets: list[str] = field(default_factory=list)  # the current one first, then the previous one
    # Until when (unix seconds) the previous callback secret is still accepted after a rotation; None: none is.
    previous_callback_secret_until: float | None = None
    payload_template: str | None = None
    payload_template_version: int = 0
    deliver_within_seconds: int | None = None  # no attempt later than this after the event was raised
    ack_within_seconds: int | None = None  # a callback is expected this soon after order.created was accepted
    registration_id: str | None = None

    def callback_secrets_valid(self, now: float) -> list[str]:
        """The secrets a callback may be signed with at `now`: the current one, and the previous one during its
        overlap after a rotation."""
        current, previous = self.callback_secrets[:1], self.callback_secrets[1:2]
        until = self.previous_callback_secret_until
        return current + previous if until is not None and now <= until else current

    @property
    def template_version(self) -> int | None:
        """The template version a body is rendered with, for the attempt log; None: the seed's shape."""
        return self.payload_template_version if self.payload_template is not None else None

    def wants(self, event: str, seller_id: str) -> bool:
        return event in self.events and (self.seller_ids is None or seller_id in self.seller_ids)
