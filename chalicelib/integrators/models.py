"""Schemas of the integrator admin API: what may be registered or changed, and what a read shows."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from chalicelib.domain.events import EventType
from chalicelib.domain.identifiers import Identifier
from chalicelib.integrators.auth import Auth, OAuth2Auth
from chalicelib.integrators.payload import MAX_TEMPLATE_CHARS, check_template
from chalicelib.integrators.url_policy import MAX_URL_LENGTH, URL_PATTERN, check_url

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
# At least 0.1 s (a shorter timeout only manufactures failures) and finite: the value is a DynamoDB number.
Timeout = Annotated[float, Field(ge=0.1, le=30, allow_inf_nan=False)]
# Whole seconds, up to a day: an order older than that is no longer an order to deliver or to wait for.
DeliverWithin = Annotated[
    int, Field(ge=1, le=86_400, description="No delivery attempt later than this after the event was raised")
]
AckWithin = Annotated[
    int, Field(ge=1, le=86_400, description="A callback is expected this soon after order.created was accepted")
]
Url = Annotated[
    str, StringConstraints(max_length=MAX_URL_LENGTH, pattern=URL_PATTERN), Field(json_schema_extra={"format": "uri"})
]


def _unique(events: list[EventType]) -> list[EventType]:
    if len(set(events)) != len(events):
        raise ValueError("each event may be listed once")
    return events


Events = Annotated[
    list[EventType], Field(min_length=1, json_schema_extra={"uniqueItems": True}), AfterValidator(_unique)
]
RequestsPerSecond = Annotated[
    int,
    Field(ge=1, le=500, description="Most requests per second, across every dispatcher; over it deliveries wait"),
]
PayloadTemplate = Annotated[
    str,
    StringConstraints(max_length=MAX_TEMPLATE_CHARS),
    AfterValidator(check_template),
    Field(
        description="A JMESPath expression over {event, user, seller, order}; its result (a JSON object) is the "
        "body this integrator receives. Without one it receives the seed's shape.",
        examples=["{ref: order.id, customer: user.name, lines: order.items[].{sku: id, qty: quantity}}"],
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateIntegratorRequest(_Strict):
    name: Name
    url: Url
    auth: Auth
    events: Events = list(EventType)
    enabled: bool = True
    timeout_seconds: Timeout = 5.0
    seller_ids: list[Identifier] | None = None
    deliver_within_seconds: DeliverWithin | None = None
    ack_within_seconds: AckWithin | None = None
    max_requests_per_second: RequestsPerSecond | None = None
    payload_template: PayloadTemplate | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return check_url(url)

    @field_validator("auth")
    @classmethod
    def _token_url(cls, auth: Any) -> Any:
        if isinstance(auth, OAuth2Auth):
            check_url(auth.token_url)
        return auth


class UpdateIntegratorRequest(_Strict):
    """Every field optional; `auth` replaces the whole auth block. `rotate_callback_secret` issues a new
    callback secret and keeps the previous one valid for CALLBACK_SECRET_OVERLAP_SECONDS (24 h by default);
    `expire_previous_callback_secret` stops accepting the previous one at once (alone, or with a rotation for a
    leaked secret). `payload_template: null` goes back to the seed's shape; `null` removes a deadline."""

    url: Url | None = None
    auth: Auth | None = None
    events: Events | None = None
    enabled: bool | None = None
    timeout_seconds: Timeout | None = None
    seller_ids: list[Identifier] | None = None
    deliver_within_seconds: DeliverWithin | None = None
    ack_within_seconds: AckWithin | None = None
    max_requests_per_second: RequestsPerSecond | None = None
    payload_template: PayloadTemplate | None = None
    rotate_callback_secret: bool = Field(
        default=False,
        description="Issue a new callback secret (shown once); the previous one stays valid for the overlap "
        "(CALLBACK_SECRET_OVERLAP_SECONDS, 24 h by default)",
    )
    expire_previous_callback_secret: bool = Field(
        default=False,
        description="Stop accepting the previous callback secret now, instead of at the end of its overlap",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return None if url is None else check_url(url)

    @field_validator("auth")
    @classmethod
    def _token_url(cls, auth: Any) -> Any:
        if isinstance(auth, OAuth2Auth):
            check_url(auth.token_url)
        return auth


class IntegratorView(BaseModel):
    name: str
    url: str
    auth: dict[str, Any]
    events: list[str]
    enabled: bool
    timeout_seconds: float
    seller_ids: list[str] | None = None
    deliver_within_seconds: int | None = None
    ack_within_seconds: int | None = None
    max_requests_per_second: int | None = None
    callback_url: str
    payload_template: str | None = None
    payload_template_version: int | None = Field(
        default=None, description="Bumped on every template change; each attempt log entry names the one it used"
    )
    registration_id: str | None = Field(
        default=None,
        description="This registration's identity, new at every create: a name deleted and registered again "
        "does not inherit the deliveries or callbacks of the earlier registration",
    )
    version: int
    created_at: str
    updated_at: str
    callback_secret: str | None = Field(default=None, description="Shown once, at creation or rotation")


class PreviewRequest(_Strict):
    """What to preview: a stored order (or, without `order_id`, the sample order), for one event, through the
    saved template or a candidate one (`payload_template`; null previews the seed's shape)."""

    order_id: Identifier | None = None
    event: EventType = EventType.CREATED
    payload_template: PayloadTemplate | None = None


class PayloadPreview(BaseModel):
    """A delivery exactly as it would be sent, with credentials masked; nothing was sent."""

    event: str
    headers: dict[str, str]
    body: dict[str, Any]
