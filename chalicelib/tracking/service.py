"""Tracking use cases: issue and revoke links, read the public view, accept or refuse a WebSocket watcher.

A bad link of any kind (malformed, forged, expired, revoked, of an order that no longer exists) gets one answer,
LinkNotValid, whatever the reason: the page cannot tell a missing order from a forged token. Only the log says why.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from chalicelib.domain import clock
from chalicelib.errors import DomainError
from chalicelib.observability import count, logger
from chalicelib.settings import get_settings
from chalicelib.tracking import links, store
from chalicelib.tracking.view import LinkIssued, Live, TrackingDocument, ended_at, latest_eta, tracking_view


class LinkNotValid(DomainError):
    status_code = 404
    code = "link_not_valid"

    def __init__(self) -> None:
        super().__init__("This tracking link is not valid. Ask the shop for a new one.")


def link_for(order_id: str, base_url: str | None = None) -> str | None:
    """The order's tracking URL, or None when tracking is not configured (the order itself is unaffected)."""
    if not get_settings().tracking_link_secret:
        return None
    token, _ = links.issue(order_id)
    url = links.tracking_url(token)
    return url if get_settings().public_base_url or not base_url else f"{base_url.rstrip('/')}{url}"


def _valid(token: str | None) -> tuple[links.Link, Any]:
    """The link and its order, or LinkNotValid. The signature is checked first: a forged token costs no read."""
    from chalicelib.db.repository import repo

    try:
        link = links.verify(token)
    except links.InvalidLink as invalid:
        logger.info("tracking link refused", extra={"reason": str(invalid)})
        count("TrackingLinkRefused")
        raise LinkNotValid() from None
    order = repo().orders.get(link.order_id)
    reason = None
    if order is None:
        reason = "no such order"
    elif link.issued_ms <= store.revoked_before(link.order_id):
        reason = "revoked"
    elif (end := ended_at(order)) is not None and _seconds(end) + get_settings().tracking_link_ttl_seconds < (
        clock.utcnow().timestamp()
    ):
        reason = "order ended too long ago"
    if reason is not None:
        logger.info("tracking link refused", extra={"reason": reason, "order_id": link.order_id})
        count("TrackingLinkRefused")
        raise LinkNotValid()
    return link, order


def _seconds(iso_time: str) -> float:
    return datetime.fromisoformat(iso_time).timestamp()


def read_tracking(token: str | None) -> dict[str, Any]:
    """`GET /api/v1/track`: the public view, where to follow it live, and until when the link lives."""
    from chalicelib.db.repository import repo

    link, order = _valid(token)
    view = tracking_view(order, eta=latest_eta(repo().deliveries.list_states(order.id)))
    document = TrackingDocument(
        order=view, live=Live(url=get_settings().tracking_websocket_url), link_expires_at=link.expires_at
    )
    return document.model_dump(mode="json")


def connect(token: str | None, connection_id: str) -> bool:
    """`$connect`: True to accept the WebSocket (and the watcher row is written), False to refuse it (403)."""
    try:
        link, _ = _valid(token)
    except LinkNotValid:
        return False
    store.add_watcher(link.order_id, connection_id, link_issued_ms=link.issued_ms, until=link.expires_at)
    count("TrackingWatcherConnected")
    return True


def disconnect(connection_id: str) -> None:
    store.remove_connection(connection_id)


def revoke_links(order_id: str, principal: Any, base_url: str | None) -> dict[str, Any]:
    """Refuse every link of the order issued so far (open pages are dropped at their next update) and answer a
    new one. A seller may do this for its own orders only; another seller's order is a 404."""
    from chalicelib.orders.service import _visible

    _visible(order_id, principal)
    settings = get_settings()
    now_ms = int(time.time() * 1000)
    store.revoke(order_id, at_ms=now_ms, keep_seconds=settings.tracking_link_max_age_seconds + 60)
    token, expires = links.issue(order_id, now=(now_ms + 1) / 1000)
    url = links.tracking_url(token)
    if not settings.public_base_url and base_url:
        url = base_url.rstrip("/") + url
    logger.info("tracking links revoked", extra={"order_id": order_id})
    count("TrackingLinksRevoked")
    return LinkIssued(order_id=order_id, tracking_url=url, link_expires_at=expires).model_dump(mode="json")
