"""Waiting for something to happen, never for a fixed time: a fixed sleep is either too short on a busy machine
(a flaky test) or longer than needed everywhere else (a slow suite)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy and return that, or fail with its last answer."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s; last value: {last!r}")
        pause.wait(every)
