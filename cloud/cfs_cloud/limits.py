"""Client-side rate limiting per action at the documented limits.

The server answers `RequestLimitExceeded` beyond "N次/秒" per action. We space calls evenly
(GCRA, burst of one) at `limit * (1 - margin)` calls per second. Against a server that allows a
one-second burst (a token bucket of N, as the reference service does) that can never be refused,
however the calls bunch up on the way. Against a server that counts one-second windows, calls
T = 1 / ((1 - m) N) apart that arrive with up to d seconds of relative delivery jitter put at most
floor((1 + d)(1 - m) N) + 1 calls in a window, which stays <= N while d < 1 / (1 - m) - 1: about
53 ms at m = 5 % for every N (176 ms at 15 %). Loopback and in-region jitter is far below that;
a rare refusal beyond it is retried like any throttle. The margin is small on purpose: it is
pure lost throughput (provisioning N volumes takes N / rate s).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

# "默认接口请求频率限制" of every action in cfs-docs.txt (API 2019-07-19), calls per second.
DOCUMENTED_RATE_LIMITS: Mapping[str, float] = {
    "BindAutoSnapshotPolicy": 20,
    "CopyFileSystemSnapshotCrossRegion": 20,
    "CreateAutoSnapshotPolicy": 20,
    "CreateCfsFileSystem": 10,
    "CreateCfsPGroup": 20,
    "CreateCfsRule": 20,
    "DeleteAutoSnapshotPolicy": 20,
    "DeleteCfsFileSystem": 20,
    "DeleteCfsPGroup": 20,
    "DeleteCfsRule": 20,
    "DescribeAutoSnapshotPolicies": 20,
    "DescribeAvailableZoneInfo": 20,
    "DescribeCfsFileSystemClients": 20,
    "DescribeCfsFileSystems": 20,
    "DescribeCfsFileSystemsByVpc": 20,
    "DescribeCfsPGroups": 20,
    "DescribeCfsRules": 20,
    "DescribeCfsServiceStatus": 20,
    "DescribeCfsTags": 20,
    "DescribeMountTargets": 20,
    "SignUpCfsService": 20,
    "UnbindAutoSnapshotPolicy": 20,
    "UpdateAutoSnapshotPolicy": 20,
    "UpdateCfsFileSystemName": 20,
    "UpdateCfsFileSystemPGroup": 20,
    "UpdateCfsFileSystemSizeLimit": 20,
    "UpdateCfsPGroup": 20,
    "UpdateCfsRule": 20,
}
# Actions the docs describe without a rate line (the snapshot actions of the product pages):
# every documented action other than CreateCfsFileSystem allows 20/s, so assume the same.
PRODUCT_PAGE_ACTIONS = (
    "CreateCfsSnapshot",
    "DeleteCfsSnapshot",
    "DescribeCfsSnapshots",
    "UpdateCfsSnapshotAttribute",
)
UNDOCUMENTED_ACTION_RATE_LIMIT = 20
KNOWN_ACTIONS = frozenset(DOCUMENTED_RATE_LIMITS) | frozenset(PRODUCT_PAGE_ACTIONS)
DEFAULT_MARGIN = 0.05


def rate_limit_problem(action: str, limit: float) -> str | None:
    """Why `action=limit` is not a usable override, or None."""
    if action not in KNOWN_ACTIONS:
        return f"unknown action {action!r} (one of {', '.join(sorted(KNOWN_ACTIONS))})"
    if not math.isfinite(limit) or limit < 0:
        return f"{action}: calls per second must be a number >= 0 (0 = off), got {limit}"
    return None


class RateLimiter:
    """Even spacing of calls (GCRA with a burst of one), shared by every thread that holds it.

    `acquire()` reserves the next free slot under a lock and then sleeps outside it, so
    concurrent callers queue in order without waking each other.
    """

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if per_second <= 0:
            raise ValueError(f"per_second must be > 0, got {per_second}")
        self.interval = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free = 0.0

    def reserve(self, deadline: float | None = None) -> float | None:
        """Claim the next slot; return how long to wait before using it. None (and nothing
        claimed) when the slot is later than `deadline` (a time on this limiter's clock)."""
        with self._lock:
            now = self._clock()
            slot = max(self._next_free, now)
            if deadline is not None and slot > deadline:
                return None
            self._next_free = slot + self.interval
            return slot - now

    def acquire(self, deadline: float | None = None) -> float | None:
        """Block until this caller may send; return the time waited (None: not before
        `deadline`, returned at once)."""
        wait = self.reserve(deadline)
        if wait:
            self._sleep(wait)
        return wait


class ActionRateLimits:
    """One `RateLimiter` per action, created on first use, at documented or configured rates."""

    def __init__(self, overrides: Mapping[str, float] | None = None, margin: float = DEFAULT_MARGIN):
        self._overrides = dict(overrides or {})
        self._margin = margin
        self._lock = threading.Lock()
        self._limiters: dict[str, RateLimiter | None] = {}

    def limit_for(self, action: str) -> float:
        """Configured calls/second for an action (0 means not limited client-side)."""
        if action in self._overrides:
            return self._overrides[action]
        return DOCUMENTED_RATE_LIMITS.get(action, UNDOCUMENTED_ACTION_RATE_LIMIT)

    def limiter(self, action: str) -> RateLimiter | None:
        with self._lock:
            if action not in self._limiters:
                limit = self.limit_for(action)
                self._limiters[action] = RateLimiter(limit * (1 - self._margin)) if limit > 0 else None
            return self._limiters[action]

    def acquire(self, action: str, deadline: float | None = None) -> float | None:
        limiter = self.limiter(action)
        return limiter.acquire(deadline) if limiter else 0.0
