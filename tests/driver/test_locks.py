"""Per-key try-locks: refuse at once when busy, release on every exit path."""

import threading

import grpc
import pytest

from cfs_csi.locks import KeyBusy, KeyLocks


def test_second_acquire_of_a_held_key_fails_immediately_and_other_keys_stay_free():
    locks = KeyLocks()
    assert locks.try_acquire("pvc-1")
    assert not locks.try_acquire("pvc-1")
    assert locks.try_acquire("pvc-2")
    locks.release("pvc-1")
    assert locks.try_acquire("pvc-1")


def test_release_of_a_free_key_is_a_bug_and_says_so():
    with pytest.raises(RuntimeError, match="not held: 'pvc-1'"):
        KeyLocks().release("pvc-1")


def test_hold_releases_on_exception():
    locks = KeyLocks()
    with pytest.raises(ValueError):
        with locks.hold("fs:cfs-1"):
            assert locks.is_held("fs:cfs-1")
            raise ValueError("boom")
    assert not locks.is_held("fs:cfs-1")


def test_hold_of_several_keys_is_all_or_nothing():
    locks = KeyLocks()
    assert locks.try_acquire("b")
    with pytest.raises(KeyBusy) as busy:
        with locks.hold("a", "b", "c"):
            pytest.fail("body must not run while a key is busy")
    assert busy.value.key == "b"
    assert not locks.is_held("a") and not locks.is_held("c")
    assert locks.is_held("b")  # the other holder keeps its key


def test_hold_tolerates_the_same_key_twice():
    locks = KeyLocks()
    with locks.hold("x", "x"):
        assert locks.is_held("x")
    assert not locks.is_held("x")


def test_concurrent_callers_get_exactly_one_winner():
    locks = KeyLocks()
    start = threading.Barrier(16)
    won = []

    def contend():
        start.wait()
        if locks.try_acquire("same-name"):
            won.append(threading.get_ident())

    threads = [threading.Thread(target=contend) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1


class _AbortingContext:
    """The one ServicerContext method hold_or_abort uses; grpc's abort raises, so do we."""

    def __init__(self):
        self.aborted = None

    def abort(self, code, details):
        self.aborted = (code, details)
        raise RuntimeError("aborted")


def test_hold_or_abort_answers_aborted_naming_the_key():
    locks = KeyLocks()
    context = _AbortingContext()
    with locks.hold("pvc-9"):
        with pytest.raises(RuntimeError, match="aborted"):
            with locks.hold_or_abort(context, "pvc-9"):
                pytest.fail("body must not run")
    assert context.aborted == (grpc.StatusCode.ABORTED, "an operation for 'pvc-9' is already in progress")
    with locks.hold_or_abort(context, "pvc-9"):
        assert locks.is_held("pvc-9")
