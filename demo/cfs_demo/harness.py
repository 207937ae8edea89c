"""The demo's harness: child processes with their logs, stopped on exit; waiting for them to
answer; and the numbered step report the demo prints."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import grpc

STOP_TIMEOUT = 15.0
START_TIMEOUT = 30.0


class StepFailed(Exception):
    """A step did not do what Kubernetes would need; the demo stops there."""


class Report:
    """Numbered step lines, `[n] title: ok|skipped, summary`, with details indented below."""

    def __init__(self) -> None:
        self.counts = {"ok": 0, "skipped": 0}

    def step(self, title: str, status: str, summary: str, *details: str) -> None:
        self.counts[status] += 1
        separator = ": " if status == "skipped" else ", "
        print(f"[{sum(self.counts.values()):2d}] {title}: {status}{separator}{summary}", flush=True)
        for line in details:
            print(f"       {line}", flush=True)


class Processes:
    """Children started in their own sessions and stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, stack: ExitStack, log_dir: Path):
        self.stack = stack
        self.log_dir = log_dir

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "wb") as log:
            try:
                process = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as err:
                raise StepFailed(f"cannot start {name} ({argv[0]}): {err.strerror}") from None
        self.stack.callback(self._stop, process)
        return process

    @staticmethod
    def _stop(process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def channel_ready(channel: grpc.Channel) -> bool:
    try:
        grpc.channel_ready_future(channel).result(timeout=0.2)
        return True
    except grpc.FutureTimeoutError:
        return False


def wait_for(
    predicate: Callable[[], bool], what: str, process: subprocess.Popen, timeout: float = START_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None:
            raise StepFailed(f"{what} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise StepFailed(f"{what} did not start within {timeout:g}s")
        time.sleep(0.05)
