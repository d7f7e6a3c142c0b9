"""Issue 20, finding 8: `make run`'s stack stops on Ctrl-C and SIGTERM whatever its parent did (a background job of
a non-interactive shell starts it with SIGINT ignored), and its moto server never outlives it, even killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tools.stack_process import ROOT, free_port

pytestmark = pytest.mark.e2e


def ignore_sigint() -> None:
    """What a non-interactive shell does to a background job: the stack inherits SIGINT as ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def within(seconds: float, check: Callable[[], bool]) -> bool:
    pause = threading.Event()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        pause.wait(0.1)
    return check()


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone: it no longer serves anything)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


@contextmanager
def stack_ignoring_sigint(state: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any]]]:
    env = {
        **os.environ,
        "ORDER_RELAY_PORT": str(free_port()),
        "ORDER_RELAY_AWS_PORT": str(free_port()),
        "ORDER_RELAY_STATE_DIR": str(state),
        "ORDER_RELAY_DEMO": "0",
        "NO_COLOR": "1",
    }
    for name in ("AWS_ENDPOINT_URL", "ORDER_RELAY_ADMIN_TOKEN"):
        env.pop(name, None)
    log = (state / "stack.log").open("w")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "tools.localstack"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=ignore_sigint,  # noqa: PLW1509 - the test needs exactly this inheritance
    )
    moto_pid = None
    try:
        started = within(90, lambda: (state / "stack.json").exists() or process.poll() is not None)
        assert started and process.poll() is None, (state / "stack.log").read_text()[-3000:]
        stack = json.loads((state / "stack.json").read_text())
        moto_pid = int(stack["moto_pid"])
        yield process, stack
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if moto_pid is not None and alive(moto_pid):
            os.kill(moto_pid, signal.SIGKILL)
        log.close()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_stack_stops_on_a_signal_even_when_its_parent_ignores_sigint(tmp_path: Path, stop: signal.Signals) -> None:
    with stack_ignoring_sigint(tmp_path) as (process, stack):
        aws_port = int(stack["aws_endpoint_url"].rsplit(":", 1)[1])
        assert listening(aws_port)
        process.send_signal(stop)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the stack did not stop within 15 s of {stop.name}")
        assert within(5, lambda: not listening(aws_port)), "the moto server still answers"
        assert not alive(int(stack["moto_pid"]))
        assert not (tmp_path / "stack.json").exists() and not (tmp_path / "stack.pid").exists()


def test_a_killed_stack_takes_its_moto_server_with_it(tmp_path: Path) -> None:
    with stack_ignoring_sigint(tmp_path) as (process, stack):
        aws_port = int(stack["aws_endpoint_url"].rsplit(":", 1)[1])
        process.kill()  # SIGKILL: no clean-up code runs in the stack
        process.wait(10)
        assert within(5, lambda: not listening(aws_port)), "the moto server outlived its stack"
        assert within(5, lambda: not alive(int(stack["moto_pid"])))
