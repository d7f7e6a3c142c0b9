"""The order lifecycle rules, without AWS."""

from __future__ import annotations

import pytest

from chalicelib.domain.order_status import ENDS, RANKS, OrderStatus, can_move, transition_table

PROGRESS = sorted(RANKS, key=RANKS.__getitem__)


@pytest.mark.parametrize(("low", "high"), [(a, b) for i, a in enumerate(PROGRESS) for b in PROGRESS[i + 1 :]])
def test_progress_only_moves_forwards(low: OrderStatus, high: OrderStatus) -> None:
    if low in ENDS:
        assert not can_move(low, high)
        return
    assert can_move(low, high)
    assert not can_move(high, low)


@pytest.mark.parametrize("end", sorted(ENDS))
@pytest.mark.parametrize("target", list(OrderStatus))
def test_nothing_leaves_an_end_state(end: OrderStatus, target: OrderStatus) -> None:
    assert not can_move(end, target)


@pytest.mark.parametrize("end", [OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.FAILED])
@pytest.mark.parametrize("source", [s for s in OrderStatus if s not in ENDS])
def test_terminal_outcomes_are_reachable_from_any_open_state(end: OrderStatus, source: OrderStatus) -> None:
    assert can_move(source, end)


def test_unknown_and_same_statuses_never_move() -> None:
    assert not can_move("pending", "teleported")
    assert not can_move("teleported", "accepted")
    assert not can_move("accepted", "accepted")


def test_transition_table_matches_the_rules() -> None:
    table = {state: (rank, allowed) for state, rank, allowed in transition_table()}
    assert table["pending"][0] == 0 and "dispatched" in table["pending"][1]
    assert table["delivered"][1] == [] and table["cancelled"][0] is None
    assert table["picked_up"][1] == ["delivered", "rejected", "cancelled", "failed"]
