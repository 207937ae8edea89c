"""The mounter's bounded file-system queries against a file system that stops answering.

On a hard-mounted NFS volume whose server hangs, statvfs blocks in the kernel and cannot be
interrupted; the kubelet still asks for the volume's stats every minute. This kernel has no NFS
client, so only `os.statvfs` itself is replaced, by a call that blocks for one chosen path until
released (or fails like a broken NFS mount); threads, timeouts and joins are the real ones.
"""

import errno
import os
import sys
import threading

import pytest
from test_node_harness import wait_until

from cfs_csi.node.mounter import CommandTimeout, Mounter

TIMEOUT = 0.2


@pytest.fixture
def hung_statvfs(monkeypatch, tmp_path):
    """statvfs of tmp_path/hung blocks until `release` is set; every call is recorded."""
    hung = tmp_path / "hung"
    hung.mkdir()
    release = threading.Event()
    calls: list[str] = []
    real_statvfs = os.statvfs

    def statvfs(path):
        calls.append(str(path))
        if str(path) == str(hung):
            release.wait(60)
        return real_statvfs(path)

    monkeypatch.setattr(os, "statvfs", statvfs)
    yield str(hung), release, calls
    release.set()


def test_a_hung_query_strands_one_thread_not_one_per_call(hung_statvfs, tmp_path):
    hung, release, calls = hung_statvfs
    mounter = Mounter(timeout=TIMEOUT)
    for _ in range(3):
        with pytest.raises(CommandTimeout, match=f"statvfs {hung} did not finish within"):
            mounter.statvfs(hung)
    assert calls == [hung]  # the later calls waited on the first, still blocked, query
    assert not mounter.is_corrupted(hung)  # hung is not broken: mounting again would hang too

    # other paths are not held up by the stuck one
    assert mounter.statvfs(str(tmp_path)).f_blocks == os.statvfs(tmp_path).f_blocks

    release.set()
    assert mounter.statvfs(hung).f_blocks > 0  # once it answers, queries work again


def waiting_on_a_query(thread: threading.Thread) -> bool:
    """Whether `thread` is blocked in Mounter._bounded's wait for a query's result."""
    frame = sys._current_frames().get(thread.ident or -1)
    names = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    if "wait" not in names or "_bounded" not in names:
        return False
    return names.index("wait") < names.index("_bounded")  # innermost first: the wait is inside


def test_concurrent_queries_of_one_path_share_one_call(hung_statvfs):
    hung, release, calls = hung_statvfs
    mounter = Mounter(timeout=30)
    results = []
    waiters = [threading.Thread(target=lambda: results.append(mounter.statvfs(hung))) for _ in range(4)]
    for waiter in waiters:
        waiter.start()
    # Release only once every caller waits on the running query: a caller that arrived after
    # it finished would rightly start a new one (under load, threads start late).
    assert wait_until(lambda: calls == [hung] and all(waiting_on_a_query(w) for w in waiters), timeout=30)
    release.set()
    for waiter in waiters:
        waiter.join(30)
    assert len(results) == 4 and calls == [hung]


@pytest.mark.parametrize(
    "code, corrupted",
    [
        (errno.ESTALE, True),
        (errno.ENOTCONN, True),
        (errno.EIO, True),
        (errno.EHOSTDOWN, True),
        (errno.ENOENT, False),
        (errno.EACCES, False),
    ],
)
def test_only_broken_mount_errors_count_as_corrupted(monkeypatch, tmp_path, code, corrupted):
    def failing(path):
        raise OSError(code, os.strerror(code), path)

    monkeypatch.setattr(os, "statvfs", failing)
    assert Mounter(timeout=TIMEOUT).is_corrupted(str(tmp_path)) is corrupted
