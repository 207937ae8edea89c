"""The coalescing waiter's scheduling logic, driven by an in-memory fetch function.

The describe call is replaced by a function over a dict here to exercise timing and
coalescing precisely; tests/integration/test_cloud_client.py runs the same waiter against
the real reference service.
"""

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from cfs_cloud.client import FILE_SYSTEMS
from cfs_cloud.errors import CfsInternalError, CfsNotFound, FileSystemCreateFailed, WaitTimeout
from cfs_cloud.waiter import CoalescingWaiter


class FakeCloud:
    """File systems whose state changes at given times; records each fetch."""

    def __init__(self):
        self.lock = threading.Lock()
        self.states: dict[str, list[tuple[float, str]]] = {}
        self.fetches: list[tuple[float, frozenset]] = []
        self.fail_with = None

    def add(self, fs_id, *timeline):
        self.states[fs_id] = list(timeline)

    def fetch(self, _client, ids):
        now = time.monotonic()
        with self.lock:
            self.fetches.append((now, ids))
        if self.fail_with:
            raise self.fail_with
        found = {}
        for fs_id in ids & self.states.keys():
            state = [s for at, s in self.states[fs_id] if at <= now][-1]
            found[fs_id] = {"FileSystemId": fs_id, "LifeCycleState": state}
        return found


def make_waiter(cloud, min_interval=0.01, max_interval=0.1):
    kind = dataclasses.replace(FILE_SYSTEMS, fetch=cloud.fetch)
    return CoalescingWaiter(kind, min_interval, max_interval)


def test_many_waiters_share_each_poll():
    cloud, start = FakeCloud(), time.monotonic()
    ids = [f"cfs-{i:08x}" for i in range(16)]
    for i, fs_id in enumerate(ids):
        cloud.add(fs_id, (0, "creating"), (start + 0.3 + i * 0.01, "available"))
    waiter = make_waiter(cloud)
    with ThreadPoolExecutor(len(ids)) as pool:
        results = list(pool.map(lambda fs_id: waiter.wait(None, fs_id, timeout=5), ids))
    assert [r["FileSystemId"] for r in results] == ids
    assert all(r["LifeCycleState"] == "available" for r in results)
    # One fetch per interval for all 16, not 16 per interval: ~0.45 s at <= 0.1 s intervals.
    assert len(cloud.fetches) <= 15
    assert max(len(ids_) for _, ids_ in cloud.fetches) == 16
    gaps = [b[0] - a[0] for a, b in zip(cloud.fetches, cloud.fetches[1:])]
    assert min(gaps) >= 0.009                 # never faster than min_interval


def test_available_is_noticed_within_the_max_interval_for_an_idle_volume():
    cloud, start = FakeCloud(), time.monotonic()
    cloud.add("cfs-1", (0, "creating"), (start + 1.0, "available"))
    waiter = make_waiter(cloud, min_interval=0.05, max_interval=0.4)
    waiter.wait(None, "cfs-1", timeout=5)
    noticed = time.monotonic() - (start + 1.0)
    assert noticed < 0.4 + 0.1
    assert len(cloud.fetches) <= 8            # backed off: not polling every 50 ms for 1 s


def test_create_failed_fails_fast():
    cloud = FakeCloud()
    cloud.add("cfs-1", (0, "create_failed"))
    with pytest.raises(FileSystemCreateFailed, match="cfs-1 is create_failed"):
        make_waiter(cloud).wait(None, "cfs-1", timeout=5)
    assert len(cloud.fetches) == 1


def test_timeout():
    cloud = FakeCloud()
    cloud.add("cfs-1", (0, "creating"))
    with pytest.raises(WaitTimeout, match="file system cfs-1 did not become available within"):
        make_waiter(cloud).wait(None, "cfs-1", timeout=0.2)


def test_a_file_system_that_never_appears_is_not_found():
    cloud = FakeCloud()
    with pytest.raises(CfsNotFound) as info:
        make_waiter(cloud).wait(None, "cfs-gone", timeout=5)
    assert info.value.code == "ResourceNotFound.FileSystemNotFound"
    assert len(cloud.fetches) == 3


def test_poll_errors_reach_every_waiter():
    cloud = FakeCloud()
    cloud.add("cfs-1", (0, "creating"))
    cloud.add("cfs-2", (0, "creating"))
    cloud.fail_with = CfsInternalError("InternalError", "boom", "req-9")
    waiter = make_waiter(cloud)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(waiter.wait, None, i, 5) for i in ("cfs-1", "cfs-2")]
        for future in futures:
            with pytest.raises(CfsInternalError, match="boom"):
                future.result()


def test_state_is_released_after_waiting():
    cloud = FakeCloud()
    cloud.add("cfs-1", (0, "available"))
    waiter = make_waiter(cloud)
    waiter.wait(None, "cfs-1", timeout=5)
    assert waiter._watches == {} and waiter._results == {}
