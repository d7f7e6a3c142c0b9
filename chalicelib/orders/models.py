"""Schemas of the Orders API: validation, the integrator payload and the OpenAPI document all come from here."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from chalicelib.domain.identifiers import Identifier
from chalicelib.domain.order import TimelineEntry
from chalicelib.domain.order_status import OrderStatus

Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
# Leading and trailing whitespace is stripped first: a name must keep at least one other character.
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")]
Phone = Annotated[str, StringConstraints(max_length=32, pattern=r"^\+?[0-9 ()-]{3,31}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Party(_Strict):
    """The customer (`user`) or the shop (`seller`), as the seed's integrator payload has them."""

    id: Identifier
    name: Text200
    phone: Phone | None = None
    email: Email | None = None
    lat: Annotated[float, Field(ge=-90, le=90, strict=False)]
    lng: Annotated[float, Field(ge=-180, le=180, strict=False)]

    @field_validator("lat", "lng", mode="before")
    @classmethod
    def _numbers_only(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        return value


class Item(_Strict):
    id: Identifier
    name: Text200
    quantity: Annotated[int, Field(gt=0, le=10_000)]

    @field_validator("quantity", mode="before")
    @classmethod
    def _whole_numbers_only(cls, value: Any) -> Any:
        """JSON has one number type: 2.0 is the integer 2 (as JSON Schema says); "2", true and 2.5 are not."""
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number")
        return value


def _zone_names(schema: dict[str, Any]) -> None:
    """The document lists the zones the validator accepts (computed only when the document is built)."""
    schema["enum"] = sorted(available_timezones())


class OrderDetails(_Strict):
    datetime: AwareDatetime
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64), Field(json_schema_extra=_zone_names)]
    user_note: Annotated[str, StringConstraints(max_length=1000)] = ""
    items: Annotated[list[Item], Field(min_length=1, max_length=200)]

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name, e.g. Asia/Amman") from None
        return value


class CreateOrderRequest(_Strict):
    """Body of `POST /api/v1/orders`: the seed's payload without `order.id`, which the service assigns."""

    user: Party
    seller: Party
    order: OrderDetails


class PatchUser(_Strict):
    """What may change on the customer: everything but the id."""

    name: Any = None
    phone: Any = None
    email: Any = None
    lat: Any = None
    lng: Any = None


class PatchOrderDetails(_Strict):
    datetime: Any = None
    timezone: Any = None
    user_note: Any = None
    items: Any = None


class OrderPatch(_Strict):
    """Shape check of a JSON merge patch (RFC 7396): which keys may appear. Values are validated after merging."""

    user: PatchUser | None = None
    order: PatchOrderDetails | None = None


class DeliveryView(BaseModel):
    integrator: str
    status: str
    event: str
    attempts: int
    last_status_code: int | None = None
    last_error: str | None = None
    next_attempt_at: str | None = None
    external_id: str | None = None
    response: Any = None
    remote_status: str | None = None
    remote_status_at: str | None = None
    remote_message: str | None = None
    remote_eta: str | None = None
    raised_at: str | None = None
    deliver_by: str | None = Field(default=None, description="No attempt after this time (deliver_within_seconds)")
    expired_at: str | None = None
    ack: str | None = Field(default=None, description="pending, acknowledged, overdue, late or stopped")
    ack_due_at: str | None = None
    acked_at: str | None = None
    updated_at: str


class OrderDetailsOut(BaseModel):
    id: str
    datetime: datetime
    timezone: str
    user_note: str
    items: list[Item]


class OrderResource(BaseModel):
    """What every order route answers with."""

    id: str
    status: OrderStatus
    version: int
    created_at: str
    updated_at: str
    user: Party
    seller: Party
    order: OrderDetailsOut
    deliveries: list[DeliveryView] = []
    timeline: list[TimelineEntry] = []
    tracking_url: str | None = Field(
        default=None,
        description="The customer's live tracking page for this order (read-only capability link; "
        "create and read answer it, lists leave it out)",
    )


class OrderList(BaseModel):
    items: list[OrderResource]
    next_cursor: str | None


class ErrorDetail(BaseModel):
    field: str | None = None
    message: str
    type: str | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []
    correlation_id: str | None = Field(default=None, description="On unexpected faults: quote it to find the trace")


class ErrorResponse(BaseModel):
    error: ErrorBody
