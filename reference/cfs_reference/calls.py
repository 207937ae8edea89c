"""The call log behind GET /_admin/calls: per action, when each call came and how it ended."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

MAX_CALLS_PER_ACTION = 100_000  # older entries are dropped; `count` still counts them
SUCCESS = "OK"


class CallLog:
    def __init__(self) -> None:
        self._calls: dict[str, deque[tuple[float, str]]] = {}
        self._counts: dict[str, int] = {}

    def record(self, action: str, code: str) -> None:
        self._calls.setdefault(action, deque(maxlen=MAX_CALLS_PER_ACTION)).append((time.time(), code))
        self._counts[action] = self._counts.get(action, 0) + 1

    def reset(self) -> None:
        self._calls.clear()
        self._counts.clear()

    def as_json(self) -> dict[str, Any]:
        return {
            action: {"count": self._counts[action], "calls": [list(call) for call in calls]}
            for action, calls in self._calls.items()
        }
