"""Client-side per-action rate limiting: documented defaults, even spacing, shared slots."""

import threading

import pytest

from cfs_cloud.limits import DOCUMENTED_RATE_LIMITS, ActionRateLimits, RateLimiter


class FrozenClock:
    """Time stands still, so every reservation's wait is its exact distance from now."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_documented_defaults():
    assert DOCUMENTED_RATE_LIMITS["CreateCfsFileSystem"] == 10
    assert DOCUMENTED_RATE_LIMITS["DescribeCfsFileSystems"] == 20
    assert DOCUMENTED_RATE_LIMITS["DescribeMountTargets"] == 20
    assert set(v for k, v in DOCUMENTED_RATE_LIMITS.items() if k != "CreateCfsFileSystem") == {20}
    limits = ActionRateLimits()
    assert limits.limit_for("CreateCfsSnapshot") == 20  # product pages give no rate


def test_overrides_and_zero_means_unlimited():
    limits = ActionRateLimits({"CreateCfsFileSystem": 2, "DescribeCfsFileSystems": 0}, margin=0)
    assert limits.limit_for("CreateCfsFileSystem") == 2
    assert limits.limiter("CreateCfsFileSystem").interval == pytest.approx(0.5)
    assert limits.limiter("DescribeCfsFileSystems") is None
    assert limits.acquire("DescribeCfsFileSystems") == 0.0


def test_margin_slows_the_spacing():
    assert ActionRateLimits().limiter("CreateCfsFileSystem").interval == pytest.approx(1 / 9.5)
    limits = ActionRateLimits(margin=0.1)
    assert limits.limiter("CreateCfsFileSystem").interval == pytest.approx(1 / 9)


def test_each_action_has_its_own_limiter_shared_by_all_callers():
    limits = ActionRateLimits()
    assert limits.limiter("CreateCfsRule") is limits.limiter("CreateCfsRule")
    assert limits.limiter("CreateCfsRule") is not limits.limiter("DeleteCfsRule")


def test_concurrent_callers_get_distinct_evenly_spaced_slots():
    clock = FrozenClock()
    limiter = RateLimiter(20, clock=clock, sleep=lambda s: None)
    waits, lock = [], threading.Lock()

    def worker():
        for _ in range(50):
            wait = limiter.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == pytest.approx([i * 0.05 for i in range(400)])


@pytest.mark.parametrize("limit", [10, 20])
def test_no_one_second_window_exceeds_the_limit(limit):
    clock = FrozenClock()
    limits = ActionRateLimits({"X": limit})
    limiter = limits.limiter("X")
    slots = [clock.now + limiter.reserve() for _ in range(5 * limit)]
    for start in slots:  # the worst 1-second windows begin at a call
        in_window = [s for s in slots if start <= s < start + 1.0]
        assert len(in_window) <= limit
        # ...and delivery jitter of 0.04 s stretching the window still stays within the limit.
        assert len([s for s in slots if start <= s < start + 1.04]) <= limit


def test_acquire_sleeps_for_the_reserved_wait():
    clock = FrozenClock()
    slept = []
    limiter = RateLimiter(4, clock=clock, sleep=slept.append)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.25, 0.5]
    assert slept == [0.25, 0.5]
    clock.now += 10  # idle time does not bank a burst
    assert limiter.acquire() == 0.0 and limiter.acquire() == 0.25


def test_rate_must_be_positive():
    with pytest.raises(ValueError, match="per_second must be > 0"):
        RateLimiter(0)


def test_a_slot_beyond_the_deadline_is_refused_without_being_claimed():
    clock = FrozenClock()
    limiter = RateLimiter(4, clock=clock, sleep=lambda s: None)
    assert limiter.reserve(deadline=clock.now) == 0.0  # free now: fits any deadline
    assert limiter.reserve(deadline=clock.now + 0.2) is None  # next slot is 0.25 away
    assert limiter.acquire(deadline=clock.now + 0.2) is None
    assert limiter.reserve(deadline=clock.now + 0.25) == 0.25  # the refused slot is still free
    assert ActionRateLimits({"X": 0}).acquire("X", deadline=clock.now - 1) == 0.0


@pytest.mark.parametrize("limit", [7, 10, 20])
def test_jitter_tolerance_of_the_margin_is_the_same_for_every_limit(limit):
    """limits.py: with margin m the spacing absorbs d < 1/(1-m) - 1 (~53 ms at 5 %) of delivery
    jitter in any one-second window, whatever the limit; a little more and a window overflows."""
    clock = FrozenClock()
    limiter = ActionRateLimits({"X": limit}).limiter("X")
    slots = [clock.now + limiter.reserve() for _ in range(3 * limit)]

    def busiest(window):
        return max(sum(1 for s in slots if start <= s < start + window) for start in slots)

    assert busiest(1 + 0.052) <= limit
    assert busiest(1 + 0.054) == limit + 1
