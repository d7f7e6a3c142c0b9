"""`make run`'s stack started as a subprocess on free ports, as the end-to-end, browser, fuzzing and soak tests
use it (without the demo integrators unless asked: most bring their own traffic). Stopped with SIGINT, like a
user's Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def local_stack(
    state: Path, extra_env: dict[str, str] | None = None, startup_seconds: float = 60.0, *, demo: bool = False
) -> Iterator[dict[str, Any]]:
    """The stack's stack.json (api_url, tokens, queue URL, ...) plus `process` and `state`; its log is
    `state/stack.log`. Raises if the stack does not stop within 20 s of Ctrl-C."""
    state.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "ORDER_RELAY_PORT": str(free_port()),
        "ORDER_RELAY_AWS_PORT": str(free_port()),
        "ORDER_RELAY_STATE_DIR": str(state),
        "ORDER_RELAY_DEMO": "1" if demo else "0",
        "ORDER_RELAY_DEMO_ORDER": "0",  # tests count their own orders
        "ORDER_RELAY_WS_PORT": "0",
        "NO_COLOR": "1",
        **(extra_env or {}),
    }
    for name in ("AWS_ENDPOINT_URL", "ORDER_RELAY_ADMIN_TOKEN"):
        env.pop(name, None)
    stack_file = state / "stack.json"
    with (state / "stack.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tools.localstack"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            pause = threading.Event()
            deadline = time.monotonic() + startup_seconds
            while not stack_file.exists() and process.poll() is None and time.monotonic() < deadline:
                pause.wait(0.2)
            if not stack_file.exists():
                raise RuntimeError("the local stack did not start:\n" + (state / "stack.log").read_text()[-4000:])
            yield {**json.loads(stack_file.read_text()), "process": process, "state": state}
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
                raise
