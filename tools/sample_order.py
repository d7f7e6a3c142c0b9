"""The one sample order (the seed's shape, without `order.id`), kept in `chalicelib.domain.sample_order` where the
service tries payload templates on it: the tests, the benchmarks and the local stack's demo all start from it."""

from __future__ import annotations

import copy
from typing import Any

from chalicelib.domain.sample_order import SAMPLE_ORDER

__all__ = ["SAMPLE_ORDER", "order_body"]


def order_body(seller_id: str = "s-1", user_id: str = "u-1", **order: Any) -> dict[str, Any]:
    """A fresh copy of the sample create body, with the given seller, user and `order` fields."""
    body = copy.deepcopy(SAMPLE_ORDER)
    body["seller"]["id"] = seller_id
    body["user"]["id"] = user_id
    body["order"].update(order)
    return body
