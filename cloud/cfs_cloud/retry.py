"""Which failures are retried, and how long to wait between attempts.

Retried: `RequestLimitExceeded*` and `InternalError*` replies (the server answered with an
error, so the call did not take effect) and network errors. Never retried: everything else,
in particular `InvalidParameter*`, `MissingParameter`, `ResourceNotFound*`, `AuthFailure*`,
`UnauthorizedOperation*` — repeating them cannot change the answer.

Non-idempotent actions (`Create*`, `Copy*`) are retried after a network error only when the
request provably never left this machine (connection refused / connect timeout). When it may
have been sent, the error is raised with `maybe_sent=True`: the caller owns recovery. The CSI
controller and the operator look a resource up by its name before creating it, so repeating
their whole operation is safe where repeating a single HTTP request would not be.
"""

from __future__ import annotations

import random

from cfs_cloud.errors import CfsError, CfsInternalError, CfsNetworkError, CfsThrottled

NON_IDEMPOTENT_PREFIXES = ("Create", "Copy")


def is_idempotent(action: str) -> bool:
    return not action.startswith(NON_IDEMPOTENT_PREFIXES)


def is_retryable(action: str, err: CfsError) -> bool:
    if isinstance(err, (CfsThrottled, CfsInternalError)):
        return True
    if isinstance(err, CfsNetworkError):
        return is_idempotent(action) or not err.maybe_sent
    return False


class Backoff:
    """Jittered exponential backoff ("full jitter"): attempt n waits U(0, min(cap, base*2^n))."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None):
        self.base = base
        self.cap = cap
        self._rng = rng or random.Random()

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0 = first retry)."""
        ceiling = min(self.cap, self.base * (2 ** min(attempt, 32)))
        return self._rng.uniform(0, ceiling)
