"""The coalescing waiter's logic, driven by an in-memory listing instead of the describe call.

Timing is checked on a simulated clock (no wall-clock assertions); the same waiter runs
against the real reference service in tests/cloud/test_cloud_resilience.py.
"""

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest

from cfs_cloud.client import FILE_SYSTEMS
from cfs_cloud.errors import (
    CfsAuthError,
    CfsInternalError,
    CfsNotFound,
    FileSystemCreateFailed,
    WaitTimeout,
)
from cfs_cloud.waiter import CoalescingWaiter


class FakeCloud:
    """File systems that become available after a given number of describe calls."""

    def __init__(self, clock=None):
        self.lock = threading.Lock()
        self.ready_after: dict[str, tuple[int, str]] = {}
        self.fetches: list[tuple[float | None, str | None]] = []
        self.clock = clock
        self.fail_with = None
        self.failures_left = float("inf")  # how many fetches raise `fail_with`
        self.timeouts: list[float] = []

    def add(self, fs_id, polls=0, final="available"):
        """`fs_id` is creating until `polls` describe calls were made, then `final`."""
        self.ready_after[fs_id] = (polls, final)

    def list_items(self, _client, timeout, FileSystemId=None):
        assert timeout > 0  # the leader's time left bounds its poll
        self.timeouts.append(timeout)
        with self.lock:
            self.fetches.append((self.clock() if self.clock else None, FileSystemId))
            made = len(self.fetches)
        if self.fail_with and self.failures_left > 0:
            self.failures_left -= 1
            raise self.fail_with
        if FileSystemId is not None and FileSystemId not in self.ready_after:
            raise CfsNotFound("ResourceNotFound.FileSystemNotFound", FileSystemId)
        return [
            {"FileSystemId": fs_id, "LifeCycleState": final if made > polls else "creating"}
            for fs_id, (polls, final) in self.ready_after.items()
            if FileSystemId in (None, fs_id)
        ]


class SimulatedClock:
    """Time moves only when a waiter pauses (single-threaded tests)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def pause(self, _condition, seconds):
        self.now += seconds


def make_waiter(cloud, min_interval=0.01, max_interval=0.1, clock=None, min_gap=0.0):
    kind = dataclasses.replace(FILE_SYSTEMS, list_items=cloud.list_items)
    if clock is None:
        return CoalescingWaiter(kind, min_interval, max_interval, min_gap)
    return CoalescingWaiter(kind, min_interval, max_interval, min_gap, clock=clock, pause=clock.pause)


def test_schedule_polls_soon_then_backs_off_to_the_cap():
    clock = SimulatedClock()
    cloud = FakeCloud(clock)
    cloud.add("cfs-1", polls=7)
    waiter = make_waiter(cloud, min_interval=0.05, max_interval=0.5, clock=clock)
    info = waiter.wait(None, "cfs-1", timeout=60)
    assert info["LifeCycleState"] == "available"
    times = [t for t, _ in cloud.fetches]
    gaps = [round(b - a, 6) for a, b in pairwise(times)]
    assert times[0] == pytest.approx(0.05)
    assert gaps == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5, 0.5]
    # So `available` is seen at most max_interval after it happens, whenever that is.


def test_min_gap_leaves_a_lone_waiters_schedule_alone():
    """One id is described on its own (one call), so the gap meant for listings does not
    delay it: it is polled soon after registering, then backs off as usual."""
    clock = SimulatedClock()
    cloud = FakeCloud(clock)
    cloud.add("cfs-1", polls=4)
    waiter = make_waiter(cloud, min_interval=0.05, max_interval=0.5, clock=clock, min_gap=0.5)
    waiter.wait(None, "cfs-1", timeout=60)
    times = [t for t, _ in cloud.fetches]
    assert times[0] == pytest.approx(0.05)
    assert [round(b - a, 6) for a, b in pairwise(times)] == [0.1, 0.2, 0.4, 0.5]


def test_arriving_waiters_cannot_poll_closer_than_the_min_gap():
    """Creates keep arriving (one every 10 ms): each new id asks for a poll 10 ms later, but
    the polls stay min_gap apart and each serves every id registered by then."""
    cloud = FakeCloud(clock=time.monotonic)
    ids = [f"cfs-{i:08x}" for i in range(30)]
    for fs_id in ids:
        cloud.add(fs_id, polls=4)
    waiter = make_waiter(cloud, min_interval=0.01, max_interval=0.2, min_gap=0.1)

    def arrive_and_wait(index_and_id):
        index, fs_id = index_and_id
        time.sleep(index * 0.01)
        return waiter.wait(None, fs_id, timeout=30)["LifeCycleState"]

    with ThreadPoolExecutor(len(ids)) as pool:
        assert set(pool.map(arrive_and_wait, enumerate(ids))) == {"available"}
    starts = [t for t, _ in cloud.fetches]
    assert min(b - a for a, b in pairwise(starts)) >= 0.1
    # Without the gap every arrival would trigger its own poll 10 ms later (>= 30 polls).
    assert len(starts) < len(ids)


def test_many_waiters_share_each_poll():
    cloud = FakeCloud()
    ids = [f"cfs-{i:08x}" for i in range(16)]
    for i, fs_id in enumerate(ids):
        cloud.add(fs_id, polls=3 + i % 3)
    waiter = make_waiter(cloud)
    with ThreadPoolExecutor(len(ids)) as pool:
        results = list(pool.map(lambda fs_id: waiter.wait(None, fs_id, timeout=30), ids))
    assert [r["FileSystemId"] for r in results] == ids
    assert all(r["LifeCycleState"] == "available" for r in results)
    # Each id needs >= 4 polls, so 16 waiters polling alone would make >= 64 calls.
    assert len(cloud.fetches) <= 10
    # List calls serve everyone (a very early poll may still have seen a single waiter).
    assert sum(filter_ is None for _, filter_ in cloud.fetches) >= len(cloud.fetches) - 2


def test_create_failed_fails_fast():
    cloud = FakeCloud()
    cloud.add("cfs-1", final="create_failed")
    with pytest.raises(FileSystemCreateFailed, match="file system cfs-1 is create_failed"):
        make_waiter(cloud).wait(None, "cfs-1", timeout=30)
    assert len(cloud.fetches) == 1


def test_timeout():
    clock = SimulatedClock()
    cloud = FakeCloud(clock)
    cloud.add("cfs-1", polls=10_000)
    with pytest.raises(WaitTimeout, match="file system cfs-1 did not become available within 5s"):
        make_waiter(cloud, clock=clock).wait(None, "cfs-1", timeout=5)
    assert clock.now == pytest.approx(5)


def test_a_file_system_that_never_appears_is_not_found():
    cloud = FakeCloud()
    with pytest.raises(CfsNotFound) as info:
        make_waiter(cloud).wait(None, "cfs-gone", timeout=30)
    assert info.value.code == "ResourceNotFound.FileSystemNotFound"
    assert len(cloud.fetches) == 3


def test_poll_errors_reach_every_waiter():
    cloud = FakeCloud()
    cloud.add("cfs-1", polls=5)
    cloud.add("cfs-2", polls=5)
    cloud.fail_with = CfsAuthError("AuthFailure.SignatureFailure", "bad key", "req-9")
    waiter = make_waiter(cloud)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(waiter.wait, None, i, 30) for i in ("cfs-1", "cfs-2")]
        for future in futures:
            with pytest.raises(CfsAuthError, match="bad key"):
                future.result()


def test_a_transient_poll_failure_ends_only_the_leaders_wait():
    """The leader's poll runs within the leader's time left; its throttle / internal /
    network failure must not end waits that still have time of their own."""
    cloud = FakeCloud()
    for fs_id in ("cfs-1", "cfs-2", "cfs-3"):
        cloud.add(fs_id, polls=2)
    cloud.fail_with = CfsInternalError("InternalError", "boom", "req-9")
    cloud.failures_left = 1
    waiter = make_waiter(cloud)
    registered = threading.Barrier(3)

    def wait(fs_id):
        registered.wait()
        try:
            return waiter.wait(None, fs_id, 30)["LifeCycleState"]
        except CfsInternalError:
            return "boom"

    with ThreadPoolExecutor(3) as pool:
        outcomes = sorted(pool.map(wait, ("cfs-1", "cfs-2", "cfs-3")))
    assert outcomes == ["available", "available", "boom"]


def test_the_leaders_poll_is_bounded_by_its_time_left():
    clock = SimulatedClock()
    cloud = FakeCloud(clock)
    cloud.add("cfs-1", polls=10_000)
    with pytest.raises(WaitTimeout):
        make_waiter(cloud, min_interval=0.05, max_interval=0.5, clock=clock).wait(None, "cfs-1", timeout=2)
    assert cloud.timeouts == pytest.approx([2 - t for t, _ in cloud.fetches])


def test_state_is_released_after_waiting():
    cloud = FakeCloud()
    cloud.add("cfs-1")
    waiter = make_waiter(cloud)
    waiter.wait(None, "cfs-1", timeout=30)
    assert waiter._watches == {} and waiter._results == {}
