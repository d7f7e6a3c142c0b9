"""`make soak` at CI size: 200 orders from 20 clients through the local stack to three integrators (one failing
30% of calls, one answering in 1-2 s). Nothing lost, no webhook-id accepted twice, every failure where the flaky
integrator gave up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.soak import run

pytestmark = pytest.mark.e2e


def test_200_orders_from_20_clients_arrive_everywhere_once(tmp_path: Path) -> None:
    result = run(orders=200, clients=20, drain_timeout=600, state_dir=tmp_path / "stack")
    print("\nsoak:", {k: v for k, v in result.items() if k != "problems"})
    assert result["problems"] == [] and result["ok"]
    assert result["orders"] == 200 and result["lost"] == 0 and result["duplicates"] == 0
    assert result["accepted"]["steady"] == result["accepted"]["slow"] == 200
    assert result["accepted"]["flaky"] + result["failed_at_flaky"] == 200
