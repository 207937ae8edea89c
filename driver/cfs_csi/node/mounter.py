"""Mount, bind, unmount and inspect mounts, each under a timeout that cannot block other volumes.

Every command is an argument list run in its own process group: when it overruns its timeout
the whole group is killed (a hung `mount.nfs` helper and anything it spawned) and the caller
gets `CommandTimeout`, so one unreachable NFS server never holds a gRPC worker for longer than
the timeout. The mount table is read from `/proc/self/mountinfo`, which never touches the
mounted file systems themselves (a `stat` on a dead NFS mount can hang).

`run_nfs_mount` (the `mount -t nfs` command) is the one step that needs the kernel's NFS client.
Tests on machines without one replace exactly that method (plus `nfs_source` and `statvfs` for
how NFS mounts look in the mount table and fail); everything else here runs for real.
The controller's subdir mode uses the same `mount_nfs` / `unmount` pair to mount shares.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

MOUNTINFO = "/proc/self/mountinfo"
NFS_FSTYPES = ("nfs", "nfs4")
# What a mount whose server lost the handle or the connection answers; such a mount never
# recovers by itself and must be mounted again.
CORRUPTED_ERRNOS = frozenset({errno.ESTALE, errno.ENOTCONN, errno.EIO, errno.EHOSTDOWN})
# After SIGKILL a process stuck in the kernel may linger; wait this long, then move on.
REAP_GRACE_SECONDS = 1.0


class CommandFailed(Exception):
    def __init__(self, argv: list[str], returncode: int, stderr: str):
        super().__init__(f"{' '.join(argv)} failed (exit {returncode}): {stderr.strip()}")
        self.argv, self.returncode, self.stderr = argv, returncode, stderr


class CommandTimeout(Exception):
    def __init__(self, argv: list[str], timeout: float):
        super().__init__(f"{' '.join(argv)} did not finish within {timeout:g}s and was killed")
        self.argv, self.timeout = argv, timeout


@dataclass(frozen=True)
class MountEntry:
    """One line of /proc/self/mountinfo (see proc(5))."""

    mount_id: int
    parent_id: int
    device: str  # major:minor
    root: str  # the directory of the source file system that is mounted here
    mount_point: str
    mount_options: tuple[str, ...]
    fstype: str
    source: str

    @property
    def read_only(self) -> bool:
        return "ro" in self.mount_options


# mountinfo writes these characters of paths as octal escapes.
_ESCAPES = (("\\", "\\134"), (" ", "\\040"), ("\t", "\\011"), ("\n", "\\012"))


def _escape(path: str) -> str:
    for char, escaped in _ESCAPES:
        path = path.replace(char, escaped)
    return path


def _unescape(field: str) -> str:
    for char, escaped in reversed(_ESCAPES):
        field = field.replace(escaped, char)
    return field


def parse_mountinfo(lines: Iterable[str]) -> list[MountEntry]:
    entries = []
    for line in lines:
        fields = line.split(" ")
        separator = fields.index("-")  # optional fields end at the lone "-"
        entries.append(
            MountEntry(
                mount_id=int(fields[0]),
                parent_id=int(fields[1]),
                device=fields[2],
                root=_unescape(fields[3]),
                mount_point=_unescape(fields[4]),
                mount_options=tuple(fields[5].split(",")),
                fstype=fields[separator + 1],
                source=_unescape(fields[separator + 2]),
            )
        )
    return entries


class MountTable:
    """The lines of mountinfo, re-read only when the kernel reports a change.

    Generating mountinfo costs the kernel ~2 ms per thousand mounts, and kubelet asks for stats
    of every volume every minute. poll() on an open mountinfo reports POLLPRI once the
    namespace's mount table changed since the last poll (proc(5)), so an unchanged table is
    served from memory; a change racing with the read only causes one extra read.
    """

    def __init__(self, path: str = MOUNTINFO):
        self.path = path
        self._lock = threading.Lock()
        self._file: int | None = None
        self._poller = select.poll()
        self._lines: list[str] = []

    def lines(self) -> list[str]:
        with self._lock:
            if self._file is None:
                self._file = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                self._poller.register(self._file, select.POLLPRI)
            elif not self._poller.poll(0):
                return self._lines
            os.lseek(self._file, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(self._file, 1 << 20):
                chunks.append(chunk)
            self._lines = b"".join(chunks).decode("utf-8", "surrogateescape").splitlines()
            return self._lines


class _Probe:
    """One file-system query running in its own thread; callers wait for `done`."""

    def __init__(self, name: str, call: Callable[[], Any]):
        self.done = threading.Event()
        self.result: Any = None
        self.error: OSError | None = None
        self.thread = threading.Thread(target=self._run, args=(call,), name=name, daemon=True)

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.result = call()
        except OSError as err:
            self.error = err
        finally:
            self.done.set()


class Mounter:
    def __init__(self, timeout: float, mount_table: MountTable | None = None):
        self.timeout = timeout
        self.mount_table = mount_table or MountTable()
        # Queries still running per (query, path): a caller joins the running one, so a dead
        # server strands at most one thread per path instead of one per kubelet poll.
        self._probes: dict[tuple[str, str], _Probe] = {}
        self._probes_lock = threading.Lock()

    # --- running commands --------------------------------------------------------------
    def run(self, argv: list[str]) -> str:
        """Run argv; return stdout. Raises CommandFailed or CommandTimeout (group killed)."""
        log.debug("running %s", argv)
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self._kill_group(process)
            raise CommandTimeout(argv, self.timeout) from None
        if process.returncode != 0:
            raise CommandFailed(argv, process.returncode, stderr)
        return stdout

    @staticmethod
    def _kill_group(process: subprocess.Popen) -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            process.communicate(timeout=REAP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("process %d is unkillable (stuck in the kernel); not waiting for it", process.pid)

    # --- mount table -------------------------------------------------------------------
    def find_mount(self, path: str) -> MountEntry | None:
        """The topmost mount at exactly `path` (not a parent's), or None."""
        path = os.path.normpath(os.path.abspath(path))
        # A node has thousands of mounts; parse only the lines that can be this mount point.
        needle = f" {_escape(path)} "
        candidates = parse_mountinfo(line for line in self.mount_table.lines() if needle in line)
        found = None
        for entry in candidates:
            if entry.mount_point == path:
                found = entry  # later lines are mounted on top of earlier ones
        return found

    def mount_points_of(self, device: str, root: str) -> list[str]:
        """Every mount point showing directory `root` of file system `device` (its binds)."""
        needle = f" {device} {_escape(root)} "
        return [
            entry.mount_point
            for entry in parse_mountinfo(line for line in self.mount_table.lines() if needle in line)
            if (entry.device, entry.root) == (device, root)
        ]

    def nfs_source(self, entry: MountEntry) -> str | None:
        """`server:/export` of an NFS mount (also of a bind mount of one), else None."""
        return entry.source if entry.fstype in NFS_FSTYPES else None

    # --- mounting ----------------------------------------------------------------------
    def mount_nfs(self, server: str, export_path: str, target: str, options: list[str]) -> None:
        """`mount -t nfs -o <options> <server>:<export_path> <target>` (target is created)."""
        os.makedirs(target, exist_ok=True)
        self.run_nfs_mount(nfs_mount_command(server, export_path, target, options))

    def run_nfs_mount(self, argv: list[str]) -> None:
        """The one step that needs the kernel's NFS client; tests without one replace it."""
        self.run(argv)

    def bind_mount(self, source: str, target: str, read_only: bool = False) -> None:
        self.run(["mount", "--bind", source, target])
        if read_only:
            # A bind mount ignores "ro" on creation; only a remount of the bind makes it read-only.
            try:
                self.run(["mount", "-o", "remount,bind,ro", target])
            except (CommandFailed, CommandTimeout):
                self.unmount(target)
                raise

    def unmount(self, target: str) -> bool:
        """Unmount everything stacked at `target`; False when nothing was mounted there.

        A plain umount that fails or hangs (server gone, stale handle, busy) is followed by a
        forced, lazy one, which detaches the mount at once; the kernel finishes it later. That
        one touches nothing that can hang on a dead server: no stat of the path
        (--no-canonicalize) and no umount.nfs helper, which tells an NFSv3 server (--internal-only).
        """
        unmounted = False
        while self.find_mount(target) is not None:
            try:
                self.run(["umount", target])
            except (CommandFailed, CommandTimeout) as err:
                log.warning("umount %s: %s; forcing a lazy unmount", target, err)
                self.run(["umount", "--force", "--lazy", "--no-canonicalize", "--internal-only", target])
            unmounted = True
        return unmounted

    # --- file-system queries -----------------------------------------------------------
    def statvfs(self, path: str) -> os.statvfs_result:
        return self._bounded("statvfs", os.statvfs, path)

    def is_directory(self, path: str) -> bool:
        return self._bounded("stat", os.path.isdir, path)

    def is_corrupted(self, path: str) -> bool:
        """True when the mount at `path` answers with a stale handle or a lost connection.

        A hung query is not "corrupted": mounting again would hang the same way.
        """
        try:
            self.statvfs(path)
        except CommandTimeout:
            return False
        except OSError as err:
            return err.errno in CORRUPTED_ERRNOS
        return False

    def _bounded(self, what: str, call: Callable[[str], T], path: str) -> T:
        """call(path) under the timeout: on a dead hard-mounted NFS server it blocks in the kernel.

        The call runs in a daemon thread; on timeout that thread is abandoned (a thread blocked
        in the kernel cannot be killed) and CommandTimeout is raised. While it stays blocked,
        later calls for the same path wait on it instead of starting another thread.
        OSError passes through.
        """
        key = (what, path)
        with self._probes_lock:
            probe = self._probes.get(key)
            if probe is None or probe.done.is_set():
                probe = _Probe(f"{what} {path}", lambda: call(path))
                self._probes[key] = probe
                probe.thread.start()
        finished = probe.done.wait(self.timeout)
        with self._probes_lock:
            if probe.done.is_set() and self._probes.get(key) is probe:
                del self._probes[key]
        if not finished:
            raise CommandTimeout([what, path], self.timeout)
        if probe.error is not None:
            raise probe.error
        return probe.result


def nfs_mount_command(server: str, export_path: str, target: str, options: list[str]) -> list[str]:
    return ["mount", "-t", "nfs", "-o", ",".join(options), f"{server}:{export_path}", target]


def is_stale(err: OSError) -> bool:
    return err.errno == errno.ESTALE
