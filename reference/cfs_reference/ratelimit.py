"""Per-action request rate limits ("默认接口请求频率限制 : N次/秒"), answered with RequestLimitExceeded."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping


class RateLimiter:
    """One token bucket per action: refills at N tokens/s and holds at most N (a one-second burst)."""

    def __init__(
        self,
        documented: Mapping[str, int],
        overrides: Mapping[str, int] | None = None,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.documented = dict(documented)
        self.overrides: dict[str, int] = dict(overrides or {})
        self.enabled = enabled
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # action -> (tokens, last refill)

    def limit(self, action: str) -> int:
        """Requests per second for `action`; 0 means unlimited."""
        return self.overrides.get(action, self.documented.get(action, 0))

    def set_limits(self, limits: Mapping[str, int]) -> None:
        self.overrides.update(limits)
        for action in limits:
            self._buckets.pop(action, None)

    def allow(self, action: str) -> bool:
        rate = self.limit(action)
        if not self.enabled or rate <= 0:
            return True
        now = self.clock()
        tokens, last = self._buckets.get(action, (float(rate), now))
        tokens = min(float(rate), tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[action] = (tokens, now)
            return False
        self._buckets[action] = (tokens - 1.0, now)
        return True
