"""What an integrator sees and does in its portal. Every function takes the session's integrator and reads only
that integrator's rows: its delivery rows (found through its own index keys or by order id plus its name), the
lines of the attempt log it was sent, its own configuration and health. Nothing here reads an order's stored
data to show it: an integrator sees an order only as it was sent to it (its template's output).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from chalicelib.db import integrator_control as control
from chalicelib.db.repository import repo
from chalicelib.domain import clock
from chalicelib.domain.clock import iso
from chalicelib.domain.delivery import TEST_PREFIX, DeliveryState, DeliveryStatus, is_test
from chalicelib.domain.events import EventType
from chalicelib.domain.order import new_ulid
from chalicelib.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from chalicelib.integrators.models import Events, Timeout, Url
from chalicelib.settings import get_settings

TEST_HEADER = "X-Order-Relay-Test"
STATE_FIELDS = (
    "status",
    "event",
    "webhook_id",
    "attempts",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "raised_at",
    "deliver_by",
    "expired_at",
    "ack",
    "ack_due_at",
    "acked_at",
    "external_id",
    "response",
    "remote_status",
    "remote_status_at",
    "remote_message",
    "remote_eta",
    "updated_at",
)
ATTEMPT_FIELDS = (
    "event",
    "webhook_id",
    "attempt",
    "at",
    "outcome",
    "status_code",
    "latency_ms",
    "error_class",
    "error",
    "retry_in_seconds",
    "request_headers",
    "request_body",
    "response_body",
    "test",
)
STATUSES = frozenset(status.value for status in DeliveryStatus)


# --- deliveries --------------------------------------------------------------------------------------------------


def _cursor(sort_key: str | None) -> str | None:
    return base64.urlsafe_b64encode(sort_key.encode()).decode().rstrip("=") if sort_key else None


def _position(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if "#" not in text or len(text) > 200:
        raise InvalidInput("cursor is not one this API returned", [{"field": "cursor", "message": "unknown cursor"}])
    return text


def _time(params: dict[str, str], name: str) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        moment = clock.parse_iso(raw) if len(raw) <= 64 else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        detail = [{"field": name, "message": "expected an ISO 8601 date-time with a time zone"}]
        raise InvalidInput(f"{name} must be an ISO 8601 date-time with a time zone", detail)
    return iso(moment)


def list_deliveries(integrator: str, params: dict[str, str], limit: int) -> dict[str, Any]:
    """A page of the integrator's deliveries, newest change first; `status`, `since`, `until` filter it."""
    status = params.get("status")
    if status is not None and status not in STATUSES:
        detail = [{"field": "status", "message": f"expected one of {', '.join(sorted(STATUSES))}"}]
        raise InvalidInput("unknown delivery status", detail)
    since = _time(params, "since") or "0"
    until = _time(params, "until") or "~"
    rows, next_position = repo().deliveries.list_for_integrator(
        integrator, status=status, since=since, until=until, before=_position(params.get("cursor")), limit=limit
    )
    items = [
        {
            "order_id": row["order_id"],
            "status": row["status"],
            "event": row["event"],
            "attempts": row["attempts"],
            "last_status_code": row["last_status_code"],
            "last_error": row["last_error"],
            "updated_at": row["updated_at"],
            "test": is_test(str(row["order_id"])),
        }
        for row in rows
    ]
    return {"items": items, "next_cursor": _cursor(next_position)}


def _never_attempted(state: DeliveryState) -> str | None:
    """Why a delivery has no attempt yet, in the integrator's terms."""
    if state.status is DeliveryStatus.WAITING:
        until = f" until {state.next_attempt_at}" if state.next_attempt_at else ""
        return f"held back{until}: {state.last_error or 'your endpoint is paused'} (no attempt is spent while held)"
    if state.status is DeliveryStatus.EXPIRED and state.attempts == 0:
        return f"expired before any attempt: {state.last_error or 'its delivery deadline passed'}"
    return None


def get_delivery(integrator: str, order_id: str) -> dict[str, Any]:
    """One delivery with every attempt to this integrator: what was sent (headers masked, body as sent) and
    what came back. 404 for an order this integrator was never sent."""
    state = repo().deliveries.get_state(order_id, integrator)
    if state is None:
        raise NotFound(f"no delivery of order {order_id} to {integrator}")
    dumped = state.model_dump(mode="json")
    attempts = [
        {name: line.get(name) for name in ATTEMPT_FIELDS}
        for line in repo().deliveries.list_attempts(order_id)
        if line["integrator"] == integrator
    ]
    return {
        "order_id": order_id,
        "test": is_test(order_id),
        **{name: dumped.get(name) for name in STATE_FIELDS},
        "why_no_attempt": _never_attempted(state) if not attempts else None,
        "attempts": attempts,
    }


def retry(integrator: str, order_id: str, correlation_id: str | None) -> dict[str, Any]:
    from chalicelib.operations import redelivery

    if is_test(order_id):
        if repo().deliveries.get_state(order_id, integrator) is None:
            raise NotFound(f"no delivery of order {order_id} to {integrator}")
        raise Conflict("a test event is not sent again: send another test event")
    return redelivery.retry_failed(order_id, integrator, correlation_id)


# --- endpoint and secret -------------------------------------------------------------------------------------------


class EndpointChange(BaseModel):
    """What an integrator may change about its own endpoint; the admin's rules apply to each field."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: Events | None = None
    timeout_seconds: Timeout | None = None

    @field_validator("url", "events", "timeout_seconds", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("leave the field out rather than sending null")
        return value


def endpoint(integrator: str, base_url: str) -> dict[str, Any]:
    from chalicelib.integrators import registry

    return _endpoint_view(registry.get_integrator_view(integrator, callback_base=base_url))


def _endpoint_view(view: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "url", "events", "timeout_seconds", "enabled", "max_requests_per_second", "callback_url")
    return {**{key: view.get(key) for key in keys}, "auth_type": (view.get("auth") or {}).get("type")}


def change_endpoint(integrator: str, change: EndpointChange, base_url: str) -> dict[str, Any]:
    from chalicelib.integrators import registry

    patch = change.model_dump(mode="json", exclude_unset=True)
    if not patch:
        raise InvalidInput("nothing to change: give url, events or timeout_seconds")
    return _endpoint_view(registry.update_integrator(integrator, patch, callback_base=base_url))


def rotate_callback_secret(integrator: str, base_url: str) -> dict[str, Any]:
    """A new callback secret, shown this once; the previous one stays valid until the next rotation."""
    from chalicelib.integrators import registry

    view = registry.update_integrator(integrator, {"rotate_callback_secret": True}, callback_base=base_url)
    return {
        "callback_secret": view["callback_secret"],
        "callback_url": view.get("callback_url"),
        "previous_secret": "valid until the next rotation",
    }


# --- health, catalog, test event -----------------------------------------------------------------------------------


def health(integrator: str) -> dict[str, Any]:
    from chalicelib.integrators import registry
    from chalicelib.operations.health_report import health as report

    config = registry.require(integrator)
    return {
        **report(integrator, 60),
        "enabled": config.enabled,
        "max_requests_per_second": config.max_requests_per_second,
    }


def catalog(integrator: str) -> dict[str, Any]:
    """The events the service sends, and this integrator's own body for the sample order (its template)."""
    from chalicelib.integrators.models import PreviewRequest
    from chalicelib.operations.preview import preview_delivery
    from chalicelib.portal.catalog import events

    return {"events": events(), "sample": preview_delivery(integrator, PreviewRequest())}


def send_test_event(integrator: str) -> dict[str, Any]:
    """A synthetic `order.created` for the sample order, sent now, signed and authenticated as a real one and
    marked with `X-Order-Relay-Test: true`. No order is stored; the attempt is listed with the deliveries as a
    test (it counts toward no health figure and opens no circuit)."""
    from chalicelib.dispatch import transport
    from chalicelib.domain.sample_order import sample_order
    from chalicelib.integrators import payload
    from chalicelib.integrators.cache import load_integrator

    config = load_integrator(integrator, fresh=True)
    if config is None:
        raise NotFound(f"integrator {integrator} not found")
    order_id = f"{TEST_PREFIX}{new_ulid()}"  # time-ordered like an order id: listed in its place
    order = sample_order().model_copy(update={"id": order_id})
    try:
        body = payload.render_body(order, EventType.CREATED, config.payload_template)
    except payload.PayloadTemplateError as exc:
        raise InvalidInput("your payload template fails for the sample order", [{"message": str(exc)}]) from None
    webhook = f"msg_test_{secrets.token_hex(12)}"
    send_by = None
    if config.max_requests_per_second:  # a test counts against the integrator's limit like any delivery
        slot = control.reserve_send_slot(integrator, config.max_requests_per_second, "portal-test")
        if slot.send_by is None:
            raise TooManyRequests("your endpoint's rate limit is in use; send the test again shortly", slot.wait)
        send_by = slot.send_by
    try:
        result = transport.post(
            config,
            event=EventType.CREATED.value,
            webhook_id=webhook,
            body=body,
            send_by=send_by,
            extra_headers={TEST_HEADER: "true"},
        )
    except transport.SendWindowMissed:
        raise TooManyRequests("your endpoint's rate limit is in use; send the test again shortly", 1.0) from None
    now = clock.utcnow()
    delivered = result.status_code is not None and 200 <= result.status_code < 300
    state = DeliveryState(
        order_id=order_id,
        integrator=integrator,
        status=DeliveryStatus.DELIVERED if delivered else DeliveryStatus.FAILED,
        event=EventType.CREATED,
        webhook_id=webhook,
        attempts=1,
        last_status_code=result.status_code,
        last_error=result.error,
        updated_at=iso(now),
    )
    repo().deliveries.put_state(state, None)
    repo().deliveries.add_attempt(
        order_id,
        now,
        get_settings().attempt_ttl_days,
        integrator=integrator,
        event=EventType.CREATED.value,
        webhook_id=webhook,
        attempt=1,
        at=iso(now),
        outcome="delivered" if delivered else "failed",
        status_code=result.status_code,
        latency_ms=round(result.latency_ms, 1),
        error_class=result.error_class,
        error=result.error,
        response_body=result.body_text,
        request_headers=result.request_headers,
        request_body=result.request_body,
        test=True,
    )
    return get_delivery(integrator, order_id)
