"""Newest-first pages over write-sharded partitions: the orders' list and an integrator's deliveries in the portal.

Each partition is read with one Query, newest first, with `Limit` = the page size, and the answers are merged
here. A partition that stopped early (its Limit, or a filter) still holds unseen rows older than where it stopped,
so the merge is complete only down to the newest such stop: the page is cut there, and the next one resumes below
the last row taken or, where fewer rows were complete than the page holds, below that cut. One sort key is then
the cursor for every partition: nothing newer than it is left unread anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def newest_first(
    rows: Iterable[tuple[str, T]], stops: Iterable[str], limit: int
) -> tuple[list[tuple[str, T]], str | None]:
    """Up to `limit` of `rows` ((sort key, item) from every partition's Query; sort keys unique) newest first, and
    the sort key the next page reads below, or None once every partition is exhausted. `stops`: the sort key of
    the LastEvaluatedKey of each partition that stopped early."""
    cut = max(stops, default=None)
    complete = sorted((row for row in rows if cut is None or row[0] >= cut), key=lambda row: row[0], reverse=True)
    taken = complete[:limit]
    return taken, taken[-1][0] if len(complete) > limit else cut
