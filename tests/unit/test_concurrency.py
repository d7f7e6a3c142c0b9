"""The one read-decide-write loop every conditional write goes through."""

from __future__ import annotations

import pytest

from chalicelib.db.concurrency import MAX_TRIES, StaleWrite, retry_on_conflict


def test_a_conflict_is_retried_until_the_write_lands() -> None:
    tries: list[int] = []

    def step() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise StaleWrite("changed meanwhile")
        return "written"

    assert retry_on_conflict(step) == "written"
    assert len(tries) == 3


def test_an_item_that_keeps_changing_gives_up_with_the_same_error() -> None:
    tries: list[int] = []

    def step() -> None:
        tries.append(1)
        raise StaleWrite("changed meanwhile")

    with pytest.raises(StaleWrite):
        retry_on_conflict(step)
    assert len(tries) == MAX_TRIES


def test_other_errors_are_not_retried() -> None:
    tries: list[int] = []

    def step() -> None:
        tries.append(1)
        raise ConnectionError("DynamoDB unreachable")

    with pytest.raises(ConnectionError):
        retry_on_conflict(step)
    assert len(tries) == 1
