"""Coalesced waiting: N threads waiting for N resources share one describe call per interval.

Leader-waiter scheme, no background thread: every waiter registers its resource id; whenever a
poll is due and none is running, one waiter (the leader) fetches *all* registered ids in one
describe call, publishes the results and wakes everybody. Each id has its own adaptive interval
(start at `min_interval` right after registration, double up to `max_interval`); a poll happens
when the earliest id is due, and serves every id. While several ids are watched, consecutive
polls are at least `min_gap` apart: as creates keep arriving, each new id asks for an early
poll, and without the gap the listing (one call per page of *all* resources) would run as often
as ids arrive. A lone id is described on its own (one call), so it keeps its prompt schedule.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from cfs_cloud.api_types import ApiObject
from cfs_cloud.errors import (
    CallTimeout,
    CfsError,
    CfsInternalError,
    CfsNetworkError,
    CfsNotFound,
    CfsThrottled,
    WaitTimeout,
)

if TYPE_CHECKING:  # the client builds waiters; only its type is needed here
    from cfs_cloud.client import CfsClient

PENDING, DONE, FAILED = "pending", "done", "failed"

# Poll failures that say nothing about the resources: they end the leader's wait only.
TRANSIENT_ERRORS = (CallTimeout, CfsInternalError, CfsNetworkError, CfsThrottled)

# A list call may lag a create briefly; an id absent from this many polls in a row is gone.
MISSING_POLLS_BEFORE_NOT_FOUND = 3


@dataclasses.dataclass
class _Watch:
    waiters: int
    interval: float
    next_due: float
    missing_polls: int = 0


@dataclasses.dataclass
class _Result:
    polled_at: float
    item: ApiObject | None = None
    error: CfsError | None = None


@dataclasses.dataclass(frozen=True)
class ResourceKind:
    """What a waiter needs to know about one kind of resource (file systems, snapshots)."""

    name: str  # "file system", for messages
    id_key: str  # "FileSystemId": the id field, also the describe filter
    state_key: str  # "LifeCycleState"
    done_state: str  # "available"
    failed_states: frozenset[str]  # states it can never leave towards `done_state`
    not_found_code: str  # "ResourceNotFound.FileSystemNotFound"
    failure: type[CfsError]  # raised (with a message) for a failed state
    # (client, timeout=..., **filters) -> every matching item, all pages, within the timeout
    # (e.g. CfsClient.iter_file_systems)
    list_items: Callable[..., Iterable[ApiObject]]

    def fetch(self, client: CfsClient, ids: frozenset[str], timeout: float) -> dict[str, ApiObject]:
        """{id: item} for the ids that exist. One id: describe just it; several: list all
        (one call per page) and pick ours."""
        if len(ids) == 1:
            (only,) = ids
            try:
                found = [
                    item
                    for item in self.list_items(client, timeout=timeout, **{self.id_key: only})
                    if item.get(self.id_key) == only
                ]
                return {only: found[-1]} if found else {}
            except CfsNotFound:
                return {}
        return {
            item[self.id_key]: item
            for item in self.list_items(client, timeout=timeout)
            if item.get(self.id_key) in ids
        }

    def classify(self, item: ApiObject) -> str:
        state = item.get(self.state_key)
        return DONE if state == self.done_state else FAILED if state in self.failed_states else PENDING


class CoalescingWaiter:
    """Waiters for one resource kind under one account; share one instance per process."""

    def __init__(
        self,
        kind: ResourceKind,
        min_interval: float,
        max_interval: float,
        min_gap: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        pause: Callable[[threading.Condition, float], object] = threading.Condition.wait,
    ):
        """`clock` and `pause` (wait on the condition for up to N seconds) are replaceable
        together so the schedule can be checked on a simulated clock."""
        self.kind = kind
        self._min = min_interval
        self._max = max_interval
        self._min_gap = min_gap
        self._clock = clock
        self._pause = pause
        self._cond = threading.Condition()
        self._watches: dict[str, _Watch] = {}
        self._results: dict[str, _Result] = {}
        self._polling = False
        self._last_poll_end = float("-inf")

    def wait(self, client: CfsClient, resource_id: str, timeout: float) -> ApiObject:
        """Block until `resource_id` is DONE (return its item) or raise.

        Raises the kind's failure error, `CfsNotFound`, the poll's `CfsError`, or `WaitTimeout`.
        `client` is used for the describe call when this waiter happens to lead a poll.
        """
        registered_at = self._clock()
        self._register(resource_id, registered_at)
        try:
            return self._wait_registered(client, resource_id, registered_at, timeout)
        finally:
            self._unregister(resource_id)

    def _register(self, resource_id: str, now: float) -> None:
        with self._cond:
            watch = self._watches.get(resource_id)
            if watch is None:
                self._watches[resource_id] = _Watch(1, self._min, now + self._min)
            else:
                watch.waiters += 1
                # A new waiter is a sign something just changed: look again soon.
                watch.interval = self._min
                watch.next_due = min(watch.next_due, now + self._min)
            self._cond.notify_all()

    def _unregister(self, resource_id: str) -> None:
        with self._cond:
            watch = self._watches[resource_id]
            watch.waiters -= 1
            if watch.waiters == 0:
                del self._watches[resource_id]
                self._results.pop(resource_id, None)

    def _wait_registered(
        self, client: CfsClient, resource_id: str, last_seen: float, timeout: float
    ) -> ApiObject:
        deadline = last_seen + timeout
        while True:
            with self._cond:
                result = self._results.get(resource_id)
                if result is not None and result.polled_at >= last_seen:
                    last_seen = result.polled_at + 1e-9
                    outcome = self._judge(resource_id, result)
                    if outcome is not None:
                        return outcome
                now = self._clock()
                if now >= deadline:
                    raise WaitTimeout(
                        f"{self.kind.name} {resource_id} did not become available within {timeout:g}s"
                    )
                due = min(w.next_due for w in self._watches.values())
                if len(self._watches) > 1:
                    due = max(due, self._last_poll_end + self._min_gap)
                if self._polling or now < due:
                    wake = deadline if self._polling else min(deadline, due)
                    self._pause(self._cond, max(0.0, wake - now))
                    continue
                self._polling = True
                ids = frozenset(self._watches)
                polled_at = now
            self._lead_poll(client, ids, polled_at, deadline - polled_at)

    def _judge(self, resource_id: str, result: _Result) -> ApiObject | None:
        """Return the item when done, raise on failure, None to keep waiting."""
        if result.error is not None:
            raise copy.copy(result.error)  # one instance per raising thread
        if result.item is None:
            if self._watches[resource_id].missing_polls >= MISSING_POLLS_BEFORE_NOT_FOUND:
                raise CfsNotFound(self.kind.not_found_code, f"{self.kind.name} {resource_id} does not exist")
            return None
        state = self.kind.classify(result.item)
        if state == DONE:
            return result.item
        if state == FAILED:
            raise self.kind.failure(
                f"{self.kind.name} {resource_id} is {result.item.get(self.kind.state_key)}"
            )
        return None

    def _lead_poll(self, client: CfsClient, ids: frozenset[str], polled_at: float, timeout: float) -> None:
        """Poll for everyone within the leader's own time left. A transient failure (after the
        client's retries, or cut short by that time) is the leader's alone: the others keep
        their own deadlines and lead the next poll. Any other error reaches every waiter."""
        items: dict[str, ApiObject] = {}
        error: CfsError | None = None
        try:
            items = self.kind.fetch(client, ids, timeout)
        except CfsError as exc:
            error = exc
        finally:
            with self._cond:
                self._polling = False
                if isinstance(error, TRANSIENT_ERRORS):
                    self._last_poll_end = self._clock()
                else:
                    self._publish(ids, items, error, polled_at)
                self._cond.notify_all()
        if isinstance(error, TRANSIENT_ERRORS):
            raise error

    def _publish(
        self,
        ids: frozenset[str],
        items: dict[str, ApiObject],
        error: CfsError | None,
        polled_at: float,
    ) -> None:
        finished = self._clock()
        self._last_poll_end = finished
        for resource_id in ids:
            watch = self._watches.get(resource_id)
            if watch is None:
                continue
            item = items.get(resource_id)
            watch.missing_polls = 0 if item is not None or error else watch.missing_polls + 1
            self._results[resource_id] = _Result(polled_at, item, error)
            watch.interval = min(self._max, watch.interval * 2)
            watch.next_due = finished + watch.interval
