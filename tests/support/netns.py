"""NFS clients with distinct source addresses, for testing export rules on one machine.

`private_network()` moves the *calling thread* into a fresh network namespace (network
namespaces are per thread on Linux, and every process the thread starts inherits it), so
ganesha started by the code under test and the libnfs clients share a private loopback where
port 2049, rpcbind's port 111 and the 127.x addresses cannot collide with anything else.

How a client gets its own source address: libnfs cannot bind one, and the kernel picks the
source from the route. Each client runs as its own unprivileged uid (its NFS credentials still
come from the URL's uid/gid), and a uid-range policy rule sends that uid's traffic through a
routing table whose loopback route carries the client's address as preferred source.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.local import stop_process

CLONE_NEWNET = 0x40000000
FIRST_CLIENT_UID = 42000
FIRST_CLIENT_TABLE = 420
# ganesha binds one IPv4 address only through a v4-mapped IPv6 socket, which needs a
# non-loopback IPv6 address to exist in the namespace (see cfs_reference.nfs.ganesha_server).
NAMESPACE_IPV6_ADDRESS = "fd00::42/128"
COMMAND_TIMEOUT = 30


def _libc_call(name: str, *args: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=COMMAND_TIMEOUT)


def nfs_url(server: str, path: str, version: int = 4, uid: int = 0, gid: int = 0) -> str:
    """A libnfs URL. For NFSv4 a file at the export root is "//name" (export "/" + "/name")."""
    return f"nfs://{server}/{path}?version={version}&uid={uid}&gid={gid}"


@dataclass(frozen=True)
class NfsClient:
    """One client host: its source address and the unprivileged uid that selects it."""

    address: str
    os_uid: int
    scratch: Path

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess:
        command = [
            "setpriv", f"--reuid={self.os_uid}", f"--regid={self.os_uid}", "--clear-groups",
            "--", *argv,
        ]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)

    def write(self, url: str, data: str) -> subprocess.CompletedProcess:
        """nfs-cp a file with this content to url."""
        source = self.scratch / f"upload-{self.os_uid}"
        source.write_text(data)
        source.chmod(0o644)  # readable by the client's uid
        return self.run(["nfs-cp", str(source), url])

    def read(self, url: str) -> subprocess.CompletedProcess:
        return self.run(["nfs-cat", url])

    def list(self, url: str) -> subprocess.CompletedProcess:
        return self.run(["nfs-ls", url])


@contextmanager
def private_network(client_addresses: Sequence[str]) -> Iterator[dict[str, NfsClient]]:
    """Run the calling thread in a new network namespace with one NfsClient per address."""
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    scratch = Path(tempfile.mkdtemp(prefix="nfs-clients-"))
    scratch.chmod(0o755)  # traversable by the clients' uids
    try:
        _libc_call("unshare", CLONE_NEWNET)
        try:
            yield _configure(client_addresses, scratch)
        finally:
            _libc_call("setns", original, CLONE_NEWNET)
    finally:
        os.close(original)
        shutil.rmtree(scratch, ignore_errors=True)


def _configure(client_addresses: Sequence[str], scratch: Path) -> dict[str, NfsClient]:
    _ip("link", "set", "lo", "up")
    _ip("-6", "addr", "add", NAMESPACE_IPV6_ADDRESS, "dev", "lo", "nodad")
    clients = {}
    for index, address in enumerate(client_addresses):
        uid, table = FIRST_CLIENT_UID + index, str(FIRST_CLIENT_TABLE + index)
        _ip("addr", "add", f"{address}/32", "dev", "lo")
        _ip("rule", "add", "pref", str(10 + index), "uidrange", f"{uid}-{uid}", "lookup", table)
        _ip("route", "add", "local", "127.0.0.0/8", "dev", "lo", "src", address, "table", table)
        clients[address] = NfsClient(address, uid, scratch)
    # The per-client rules must be consulted before the local table (normally preference 0).
    _ip("rule", "add", "pref", "1000", "lookup", "local")
    _ip("rule", "del", "pref", "0")
    return clients


@contextmanager
def private_rpcbind(timeout: float = 10.0) -> Iterator[None]:
    """rpcbind for the calling thread's network namespace, with a /run of its own.

    rpcbind binds 0.0.0.0:111 (harmless inside a private network namespace), but its unix
    socket and lock file live in /run, which network namespaces do not separate: two tests'
    rpcbinds would share them, and a ganesha could register with the other test's. Here rpcbind
    runs in a private mount namespace with a tmpfs /run, so services register over 127.0.0.1:111.
    """
    argv = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount -t tmpfs tmpfs /run && exec rpcbind -f",
    ]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", 111), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"rpcbind did not start: {process.stderr.read() if process.stderr else ''}"
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        stop_process(process, 10)
