"""The node plugin under test: a real gRPC server on a unix socket, in a private mount namespace.

This file has no tests of its own. Run as a program (by `running_node`), it serves the real
`NodeServicer` with the plugin's own `CsiServer` inside `unshare -m -n --propagation private`, so
its bind mounts never reach the host's mount table and its loopback addresses are its own. This
kernel has no NFS client, so `LocalNfsMounter` replaces the one step that needs it — the `mount -t
nfs` command — with a double that checks the exact command line, logs it, and bind-mounts a local
directory standing in for the export. It also reports such mounts the way the kernel reports NFS
mounts (source `server:/export`), and answers statvfs on a mount whose exported directory was
removed or replaced (`make_stale`) with ESTALE, as an NFS client does. Everything else (bind mounts,
read-only remounts, umount, statvfs, mountinfo, the TCP probe of port 2049) is real.

In the namespace the harness listens on port 2049 of every configured server address ("0.0.0.0"
for all of them), standing in for reachable servers; SIGUSR1 stops the listeners of the servers
named in the `down` file, and the harness removes that file once they are closed. The exports
map is re-read at every mount, so tests can add file systems created after the harness started.

Signals are blocked in every thread and taken synchronously by the main thread (sigwait). A
Python handler would be unreliable here: the kernel may hand a process signal to any gRPC
thread, and CPython then runs the handler only when the main thread next runs Python code,
which never happens while it sleeps in a wait (the cause of a take-down that sometimes never
happened).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from cfs_csi.config import Endpoint
from cfs_csi.contract import NFS_PORT
from cfs_csi.csipb import csi_pb2, csi_pb2_grpc
from cfs_csi.node.mounter import CommandFailed, MountEntry, Mounter
from cfs_csi.node.servicer import NodeServicer
from cfs_csi.server import CsiServer, Service

# The tests' staging and target paths are pytest temporary directories: the harness's kubelet
# root is the temp dir, so the path policy applies to them as to a kubelet's.
KUBELET_DIR = tempfile.gettempdir()

MOUNT_EXIT_FAILURE = 32  # mount(8): "mount failure"
# mountinfo shows the root of a mount whose directory was removed with this suffix (once the
# plugin re-reads the table).
DELETED_ROOT_SUFFIX = "//deleted"
CONTROL_SIGNALS = {signal.SIGUSR1, signal.SIGTERM}
# A mount helper that never returns, with a child of its own (the group kill must take both).
HANGING_HELPER = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen(['sleep', '3600'])\n"
    "open(sys.argv[1], 'w').write(f'{child.pid}')\n"
    "time.sleep(3600)\n"
)


class LocalNfsMounter(Mounter):
    """The kernel NFS client's stand-in: `server:/export` → a bind mount of a local directory."""

    def __init__(self, timeout: float, config: dict):
        super().__init__(timeout)
        self.exports_file = Path(config["exports"])
        self.hanging: list[str] = config.get("hanging", [])
        self.command_log = Path(config["command_log"])
        self.hung_helper_pids = Path(config["hung_helper_pids"])
        # (device, root) of each NFS mount → (server:/export, the local directory it stands for)
        self.mounted: dict[tuple[str, str], tuple[str, str]] = {}

    def run_nfs_mount(self, argv: list[str]) -> None:
        assert argv[:4] == ["mount", "-t", "nfs", "-o"] and len(argv) == 7, argv
        with self.command_log.open("a") as log:
            log.write(json.dumps(argv) + "\n")
        source, target = argv[5], argv[6]
        if source in self.hanging:
            self.run([sys.executable, "-c", HANGING_HELPER, str(self.hung_helper_pids)])
        local = json.loads(self.exports_file.read_text()).get(source)
        if local is None:
            raise CommandFailed(
                argv, MOUNT_EXIT_FAILURE, f"mount.nfs: access denied by server while mounting {source}"
            )
        if not os.path.isdir(local):
            raise CommandFailed(
                argv,
                MOUNT_EXIT_FAILURE,
                f"mount.nfs: mounting {source} failed, reason given by server: {os.strerror(errno.ENOENT)}",
            )
        self.run(["mount", "--bind", local, target])
        if "ro" in argv[4].split(","):
            self.run(["mount", "-o", "remount,bind,ro", target])
        entry = self.find_mount(target)
        self.mounted[(entry.device, entry.root)] = (source, local)

    def _exported(self, entry: MountEntry) -> tuple[str, str] | None:
        """(server:/export, local directory now at that place) of a mount of an export, or None."""
        entry_root = entry.root.removesuffix(DELETED_ROOT_SUFFIX)
        for (device, root), (source, local) in self.mounted.items():
            if device == entry.device and (entry_root == root or entry_root.startswith(root + "/")):
                return source, local + entry_root[len(root) :]
        return None

    def nfs_source(self, entry: MountEntry) -> str | None:
        exported = self._exported(entry)
        return exported[0] if exported else super().nfs_source(entry)

    def statvfs(self, path: str) -> os.statvfs_result:
        """ESTALE once the directory a mount shows is no longer the one the export has there."""
        entry = self.find_mount(path)
        exported = self._exported(entry) if entry is not None else None
        if exported is not None:
            mounted = os.stat(path)
            try:
                current = os.stat(exported[1])
            except FileNotFoundError:
                current = None
            if current is None or (current.st_dev, current.st_ino) != (mounted.st_dev, mounted.st_ino):
                raise OSError(errno.ESTALE, os.strerror(errno.ESTALE), path)
        return super().statvfs(path)


class FakeNfsPorts:
    """Listening sockets on port 2049 of each server address: what the node's probe connects to."""

    def __init__(self, servers: list[str]):
        self.listeners: dict[str, socket.socket] = {}
        for server in servers:
            listener = socket.create_server((server, NFS_PORT), backlog=128)
            self.listeners[server] = listener
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    @staticmethod
    def _accept(listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return  # closed by take_down
            connection.close()

    def take_down(self, servers: list[str]) -> None:
        for server in servers:
            listener = self.listeners.pop(server, None)
            if listener is not None:
                listener.shutdown(socket.SHUT_RDWR)
                listener.close()


def serve(config_path: str) -> None:
    # Before any thread exists, so that every thread inherits the blocked mask. (The mount
    # commands inherit it too; the mounter ends them with SIGKILL, which cannot be blocked.)
    signal.pthread_sigmask(signal.SIG_BLOCK, CONTROL_SIGNALS)
    config = json.loads(Path(config_path).read_text())
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    ports = FakeNfsPorts(config["servers"])
    servicer = NodeServicer(
        "node-1",
        "ap-shanghai-fsi-1",
        LocalNfsMounter(config["mount_timeout"], config),
        kubelet_dir=KUBELET_DIR,
        reachability_timeout=1.0,
    )
    server = CsiServer(
        Endpoint("unix", path=config["socket"]), [Service(servicer, csi_pb2_grpc.add_NodeServicer_to_server)]
    )
    down = Path(config["down"])
    while signal.sigwait(CONTROL_SIGNALS) != signal.SIGTERM:
        ports.take_down(down.read_text().split())
        down.unlink()  # tells the test the listeners are closed
    server.stop(0)


# --- used by the tests --------------------------------------------------------------------

RWX = csi_pb2.VolumeCapability.AccessMode.MULTI_NODE_MULTI_WRITER
ROX = csi_pb2.VolumeCapability.AccessMode.MULTI_NODE_READER_ONLY
RWOP = csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_SINGLE_WRITER


def capability(*mount_flags: str, mode: int = RWX) -> csi_pb2.VolumeCapability:
    """A filesystem (mount) capability as the kubelet sends it (ReadWriteMany PV by default)."""
    return csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(mount_flags=mount_flags),
        access_mode=csi_pb2.VolumeCapability.AccessMode(mode=mode),
    )


def stage_request(volume_id: str, staging: Path, context: dict, flags: tuple[str, ...] = (), mode: int = RWX):
    return csi_pb2.NodeStageVolumeRequest(
        volume_id=volume_id,
        staging_target_path=str(staging),
        volume_capability=capability(*flags, mode=mode),
        volume_context=context,
    )


@dataclass
class NodePlugin:
    stub: csi_pb2_grpc.NodeStub
    pid: int
    config: dict

    def inside(self, *argv: str) -> subprocess.CompletedProcess:
        """Run a command in the plugin's mount namespace (where its mounts are visible)."""
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "--", *argv], capture_output=True, text=True, timeout=30
        )

    def mounted(self, path: str) -> bool:
        return self.inside("findmnt", "--mountpoint", str(path)).returncode == 0

    def mount_commands(self) -> list[list[str]]:
        log = Path(self.config["command_log"])
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def add_export(self, source: str, path: Path) -> None:
        """Serve another `server:/export` from now on (e.g. a file system created later)."""
        exports_file = Path(self.config["exports"])
        exports = json.loads(exports_file.read_text())
        exports[source] = str(path)
        exports_file.write_text(json.dumps(exports))

    @staticmethod
    def make_stale(export: Path) -> None:
        """The server side replaces the exported directory: mounts of the old one go stale."""
        shutil.rmtree(export)
        export.mkdir()

    def take_down(self, server: str) -> None:
        """Stop answering on port 2049 of `server`; returns once the listener is closed."""
        down = Path(self.config["down"])
        down.write_text(server + "\n")
        os.kill(self.pid, signal.SIGUSR1)
        assert wait_until(lambda: not down.exists()), f"the harness never took {server} down"

    def stage(
        self, volume_id: str, staging: Path, context: dict, flags: tuple[str, ...] = (), mode: int = RWX
    ):
        return self.stub.NodeStageVolume(stage_request(volume_id, staging, context, flags, mode), timeout=30)

    def publish(
        self,
        volume_id: str,
        staging: Path | None,
        target: Path,
        context: dict | None = None,
        readonly: bool = False,
        flags: tuple[str, ...] = (),
        mode: int = RWX,
    ):
        return self.stub.NodePublishVolume(
            csi_pb2.NodePublishVolumeRequest(
                volume_id=volume_id,
                staging_target_path=str(staging or ""),
                target_path=str(target),
                volume_capability=capability(*flags, mode=mode),
                readonly=readonly,
                volume_context=context or {},
            ),
            timeout=30,
        )

    def unpublish(self, volume_id: str, target: Path):
        return self.stub.NodeUnpublishVolume(
            csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=str(target)), timeout=30
        )

    def unstage(self, volume_id: str, staging: Path):
        return self.stub.NodeUnstageVolume(
            csi_pb2.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=str(staging)),
            timeout=30,
        )

    def stats(self, volume_id: str, path: Path):
        return self.stub.NodeGetVolumeStats(
            csi_pb2.NodeGetVolumeStatsRequest(volume_id=volume_id, volume_path=str(path)), timeout=30
        )


@contextmanager
def running_node(
    workdir: Path,
    exports: dict[str, str],
    servers: list[str],
    hanging: list[str] = (),
    mount_timeout: float = 5.0,
):
    """Start the harness; `exports` maps `server:/export` to the local directory standing in."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "socket": str(workdir / "csi.sock"),
        "exports": str(workdir / "exports.json"),
        "servers": list(servers),
        "hanging": list(hanging),
        "mount_timeout": mount_timeout,
        "command_log": str(workdir / "mount-commands.jsonl"),
        "down": str(workdir / "down"),
        "hung_helper_pids": str(workdir / "hung-helper.pid"),
    }
    exports_map = {source: str(path) for source, path in exports.items()}
    Path(config["exports"]).write_text(json.dumps(exports_map))
    config_path = workdir / "harness.json"
    config_path.write_text(json.dumps(config))
    with open(workdir / "harness.log", "w") as log:
        process = subprocess.Popen(
            ["unshare", "-m", "-n", "--propagation", "private", sys.executable, __file__, str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    channel = grpc.insecure_channel(f"unix://{config['socket']}")
    try:
        grpc.channel_ready_future(channel).result(timeout=20)
        yield NodePlugin(csi_pb2_grpc.NodeStub(channel), process.pid, config)
    finally:
        channel.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


if __name__ == "__main__":
    serve(sys.argv[1])
