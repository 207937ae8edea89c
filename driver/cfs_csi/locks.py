"""Per-key try-locks: a second operation on a busy volume is refused at once, never queued.

The CSI spec lets a plugin answer ABORTED when an operation for the same volume is already in
flight; the CO retries later with backoff. Refusing instead of blocking keeps the gRPC worker
pool free when a CO (or a restarted sidecar) fires duplicate calls. Controller and node use one
`KeyLocks` per process, keyed by volume name, volume id or snapshot id.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import grpc


class KeyBusy(Exception):
    """Raised by `KeyLocks.hold` when the key is already held by another operation."""

    def __init__(self, key: str):
        super().__init__(f"an operation for {key!r} is already in progress")
        self.key = key


class KeyLocks:
    """A set of held keys; `try_acquire` either takes a free key or returns False immediately."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: set[str] = set()

    def try_acquire(self, key: str) -> bool:
        with self._guard:
            if key in self._held:
                return False
            self._held.add(key)
            return True

    def release(self, key: str) -> None:
        with self._guard:
            if key not in self._held:
                raise RuntimeError(f"release of a key that is not held: {key!r}")
            self._held.remove(key)

    def is_held(self, key: str) -> bool:
        with self._guard:
            return key in self._held

    @contextmanager
    def hold(self, *keys: str) -> Iterator[None]:
        """Hold every key for the block, or none of them: raises KeyBusy on the first busy key.

        Several keys serve operations that touch two objects (e.g. a clone locks the new
        volume's name and the source volume's id).
        """
        taken: list[str] = []
        try:
            for key in dict.fromkeys(keys):  # drop duplicates, keep order
                if not self.try_acquire(key):
                    raise KeyBusy(key)
                taken.append(key)
            yield
        finally:
            for key in reversed(taken):
                self.release(key)

    @contextmanager
    def hold_or_abort(self, context: grpc.ServicerContext, *keys: str) -> Iterator[None]:
        """`hold` for servicers: a busy key ends the RPC with ABORTED naming the key."""
        try:
            with self.hold(*keys):
                yield
        except KeyBusy as busy:
            context.abort(grpc.StatusCode.ABORTED, str(busy))
