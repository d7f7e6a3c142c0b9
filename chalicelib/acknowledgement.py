"""Acknowledgement of an accepted order. A 2xx only says a platform took the request; its callback says someone
saw the order. The window opens when `order.created` is accepted, a queued check closes it (scheduled when it
opens: no scan ever looks for overdue deliveries), and a callback answers it, in time or late.

Every step is idempotent: the delivery row moves `pending -> overdue` under its revision, the timeline note and
the overdue marker are written only if absent, and the seller alert has a stable notification id, so a duplicate
or redelivered check publishes nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib import queue
from chalicelib.db.concurrency import retry_on_conflict
from chalicelib.db.repository import repo
from chalicelib.domain import clock, deadlines
from chalicelib.domain.delivery import AckStatus, DeliveryState
from chalicelib.domain.integrator import Integrator
from chalicelib.domain.order import Order, TimelineEntry
from chalicelib.domain.order_status import OrderStatus
from chalicelib.messages import AckCheck
from chalicelib.notifications import publisher
from chalicelib.observability import count, logger
from chalicelib.orders.progress import amend

UNACKNOWLEDGED = "delivery.unacknowledged"


def window(integrator: Integrator, state: DeliveryState, now: datetime) -> dict[str, Any]:
    """The fields that open the window when `order.created` reached an integrator that must acknowledge it
    (nothing when it need not, or when this order's window was already opened)."""
    if integrator.ack_within_seconds is None or state.ack is not None:
        return {}
    due = deadlines.ack_due(now, integrator.ack_within_seconds)
    return {"ack": AckStatus.PENDING, "ack_due_at": clock.iso(due)}


def schedule_check(order_id: str, integrator: str, due_at: str, correlation_id: str | None) -> None:
    """Queue the check for when the window closes (SQS delay, at most 15 minutes per hop)."""
    check = AckCheck(order_id=order_id, integrator=integrator, due_at=due_at, correlation_id=correlation_id)
    delay = deadlines.delay_until(clock.parse_iso(due_at), clock.utcnow()) or 0
    queue.send(check, delay_seconds=delay, correlation_id=correlation_id)


def handle_check(check: AckCheck) -> None:
    """The window of one delivery closes: overdue unless a callback came or the order was cancelled."""
    state = repo().deliveries.get_state(check.order_id, check.integrator)
    if state is None or state.ack_due_at != check.due_at:
        return  # another window (or none): this check is stale
    if state.ack is AckStatus.PENDING:
        delay = deadlines.delay_until(clock.parse_iso(check.due_at), clock.utcnow())
        if delay is not None:  # a long window, or an early message: look again later
            queue.send(check, delay_seconds=delay, correlation_id=check.correlation_id)
            return
        order = repo().orders.get(check.order_id)
        if order is None:
            return
        if order.status == OrderStatus.CANCELLED:
            _move(check, AckStatus.STOPPED)  # a cancelled order stops the clock: nothing to report
            return
        if not _move(check, AckStatus.OVERDUE):
            return  # a callback won the race
    elif state.ack is not AckStatus.OVERDUE:
        return
    # Overdue (now, or already by an earlier run of this check that may have stopped half-way): make sure the
    # order records it and the seller is told; both are no-ops when already done.
    _report_overdue(check)


def _move(check: AckCheck, to: AckStatus) -> bool:
    """`pending -> to` for this window, under the row's revision; False when something else answered first."""

    def step() -> bool:
        state = repo().deliveries.get_state(check.order_id, check.integrator)
        if state is None or state.ack is not AckStatus.PENDING or state.ack_due_at != check.due_at:
            return False
        repo().deliveries.set_fields(state, ack=to.value)
        return True

    return retry_on_conflict(step)


def _report_overdue(check: AckCheck) -> None:
    message = f"{check.integrator} did not acknowledge the order by {check.due_at}"

    def note(order: Order) -> dict[str, Any] | None:
        noted = any(e.event == UNACKNOWLEDGED and e.source == check.integrator for e in order.timeline)
        marked = check.integrator in order.overdue_integrators
        # A callback may have come meanwhile (now `late`): the note stays true, the overdue listing would not.
        current = repo().deliveries.get_state(check.order_id, check.integrator)
        listed = current is not None and current.ack is AckStatus.OVERDUE
        if noted and marked == listed:
            return None
        others = [name for name in order.overdue_integrators if name != check.integrator]
        fields: dict[str, Any] = {"overdue_integrators": sorted([*others, check.integrator] if listed else others)}
        if not noted:
            entry = TimelineEntry(status=order.status, source=check.integrator, message=message, event=UNACKNOWLEDGED)
            fields["timeline"] = [*order.timeline, entry]
        return fields

    order = amend(check.order_id, note)
    if order is None:
        return
    logger.info(
        "acknowledgement overdue",
        extra={"order_id": order.id, "integrator": check.integrator, "ack_due_at": check.due_at},
    )
    count("AcknowledgementOverdue")
    publisher.notify(
        order,
        UNACKNOWLEDGED,
        f"{check.integrator} accepted order {order.id} but has not confirmed it (due {check.due_at}). "
        "Check with the partner that the kitchen has it.",
        key=f"{check.integrator}:{check.due_at}",
        data={"integrator": check.integrator, "ack_due_at": check.due_at},
        audience="seller",
    )


def callback_fields(state: DeliveryState, now: datetime, *, early: bool = False) -> dict[str, Any]:
    """The fields a callback from the row's integrator sets to answer its window (acknowledged in time, or late),
    written by the callback's own conditional write of the row; nothing when there is no window to answer.
    `early`: the callback came while the order was still being sent, before the window opened: acknowledged, so
    that the window the 2xx would open is not opened (`window` opens none once `ack` is set)."""
    if early and state.ack is None:
        return {"ack": AckStatus.ACKNOWLEDGED.value, "acked_at": clock.iso(now)}
    answered = deadlines.ack_after_callback(state.ack, state.ack_due_at, now)
    return {} if answered is None else {"ack": answered.value, "acked_at": clock.iso(now)}


def after_callback(before: DeliveryState, fields: dict[str, Any]) -> None:
    """Once `callback_fields` are stored: an order listed as overdue for this integrator is listed no more (its
    timeline keeps that it was)."""
    if not fields:
        return
    if before.ack is AckStatus.OVERDUE:
        amend(before.order_id, lambda order: _unmark(order, before.integrator))
    logger.info(
        "acknowledgement", extra={"order_id": before.order_id, "integrator": before.integrator, "ack": fields["ack"]}
    )


def _unmark(order: Order, integrator: str) -> dict[str, Any] | None:
    if integrator not in order.overdue_integrators:
        return None
    return {"overdue_integrators": [name for name in order.overdue_integrators if name != integrator]}


def check_later(state: DeliveryState, correlation_id: str | None) -> None:
    """Queue the check of the window open on `state`, if any. Also called for a redelivered job, in case a crash
    came between opening the window and queueing its check: a duplicate check is harmless."""
    if state.ack is AckStatus.PENDING and state.ack_due_at is not None:
        schedule_check(state.order_id, state.integrator, state.ack_due_at, correlation_id)
