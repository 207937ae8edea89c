"""Helpers for tests that run processes on this machine: a free loopback port, polling until a
condition holds, and stopping a child process."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def eventually(
    check: Callable[[], T], what: str | Callable[[], str] = "the condition", timeout: float = 10.0,
    interval: float = 0.05,
) -> T:  # fmt: skip
    """check()'s first truthy result. On timeout an AssertionError says what was awaited;
    `what` may be a callable, so a costly message (e.g. with logs) is built only then."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            awaited = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g}s waiting for {awaited}")
        time.sleep(interval)
    return result


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL when it has not exited within `timeout`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
