"""The real data plane: one nfs-ganesha per mount-target IP, each serving one file system.

apply() receives the full desired state and converges to it: new mount targets start a ganesha,
changed rules rewrite the export file and SIGHUP it (same process), a file system moved to
another directory restarts its ganesha, and mount targets no longer wanted are stopped.
A watchdog restarts a ganesha that died, since apply() is only called when something changes.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cfs_reference.nfs.clients import connected_clients
from cfs_reference.nfs.ganesha_config import InstancePaths, Listener, mount_ip_listener, render_exports
from cfs_reference.nfs.ganesha_server import GaneshaServer, reap_orphan
from cfs_reference.nfs.model import DataPlaneError, ExportSpec, validate_spec

log = logging.getLogger(__name__)


@dataclass
class ServedFileSystem:
    spec: ExportSpec
    exports_text: str
    server: GaneshaServer

    def serves_same_directory(self, spec: ExportSpec, listener: Listener) -> bool:
        """Rules can change under a running ganesha; the exported directory and the
        listening address cannot."""
        return (self.spec.file_system_id, Path(self.spec.data_dir), self.spec.fsid,
                self.server.listener) == (
            spec.file_system_id,
            Path(spec.data_dir),
            spec.fsid,
            listener,
        )  # fmt: skip


class GaneshaDataPlane:
    """Serves every ExportSpec with its own ganesha, at the Listener listener_for(spec) gives:
    by default <ip_address>:2049 (the local scheme).

    state_dir holds one instance directory per mount-target IP (configs, pid file, log,
    NFSv4 recovery state). nfsv3 adds the /<FSID> export and needs an rpcbind reachable in
    this network namespace (rpcbind binds 0.0.0.0:111, so only enable it where that is safe).
    """

    def __init__(
        self,
        state_dir: Path,
        binary: str,
        nfsv3: bool = False,
        timeout: float = 10.0,
        watch_interval: float = 1.0,
        listener_for: Callable[[ExportSpec], Listener] = mount_ip_listener,
    ):
        self._state_dir = Path(state_dir)
        self._binary = binary
        self._nfsv3 = nfsv3
        self._listener_for = listener_for
        self._timeout = timeout
        self._watch_interval = watch_interval
        self._served: dict[str, ServedFileSystem] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None

    def start(self) -> None:
        """Reap ganesha processes a crashed predecessor left behind, then watch ours."""
        with self._lock:
            self._state_dir.mkdir(parents=True, exist_ok=True)
            for instance_dir in sorted(self._state_dir.iterdir()):
                if instance_dir.is_dir() and instance_dir.name not in self._served:
                    reap_orphan(InstancePaths(instance_dir))
                    shutil.rmtree(instance_dir, ignore_errors=True)
            if self._watchdog is None:
                self._stopping.clear()
                self._watchdog = threading.Thread(target=self._watch, name="ganesha-watchdog", daemon=True)
                self._watchdog.start()

    def reserve_mount_target(self, file_system_id: str, ip_address: str) -> None:
        """Nothing to claim: every address of the pool is local (all of 127.0.0.0/8 is)."""

    def apply(self, specs: list[ExportSpec]) -> None:
        """Serve exactly these file systems. ValueError (before anything changes) for a spec
        that cannot be served; DataPlaneError naming each mount target ganesha failed on."""
        for spec in specs:
            validate_spec(spec)
        desired: dict[str, ExportSpec] = {}
        for spec in specs:
            other = desired.setdefault(spec.ip_address, spec)
            if other is not spec:
                raise ValueError(
                    f"file systems {other.file_system_id} and {spec.file_system_id} "
                    f"share ip_address {spec.ip_address}; each needs its own mount target"
                )
        with self._lock:
            for ip_address in sorted(set(self._served) - set(desired)):
                self._retire(ip_address)
            self._converge_all(desired.values())

    def stop(self) -> None:
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.join()
            self._watchdog = None
        with self._lock:
            for ip_address in sorted(self._served):
                self._retire(ip_address)

    def server_pid(self, ip_address: str) -> int | None:
        """The pid of the ganesha serving ip_address (None when not served)."""
        with self._lock:
            served = self._served.get(ip_address)
            return served.server.pid if served else None

    def clients(self, ip_address: str) -> list[str]:
        with self._lock:
            served = self._served.get(ip_address)
            listener = served.server.listener if served else None
        return connected_clients(listener) if listener else []

    def _watch(self) -> None:
        while not self._stopping.wait(self._watch_interval):
            with self._lock:
                dead = [s.spec for s in self._served.values() if not s.server.running()]
                if dead:
                    try:
                        self._converge_all(dead)
                    except DataPlaneError as error:
                        log.warning("restarting ganesha failed (retried in %gs): %s",
                                    self._watch_interval, error)  # fmt: skip

    def _converge_all(self, specs) -> None:
        failures = []
        for spec in specs:
            try:
                self._converge(spec)
            except DataPlaneError as error:
                failures.append(str(error))
        if failures:
            raise DataPlaneError("; ".join(failures))

    def _converge(self, spec: ExportSpec) -> None:
        exports_text = render_exports(spec, self._nfsv3)
        listener = self._listener_for(spec)
        served = self._served.get(spec.ip_address)
        if served and served.serves_same_directory(spec, listener) and served.server.running():
            if served.exports_text != exports_text:
                log.info("reloading exports of %s (%s)", spec.file_system_id, spec.ip_address)
                served.server.reload(exports_text)
            served.spec, served.exports_text = spec, exports_text
            return
        if served is not None:
            if served.server.pid is not None and not served.server.running():
                log.warning("ganesha for %s (%s) died; restarting", spec.file_system_id,
                            spec.ip_address)  # fmt: skip
            self._retire(spec.ip_address)
        server = GaneshaServer(
            self._binary,
            InstancePaths(self._state_dir / spec.ip_address),
            spec.ip_address,
            listener,
            self._nfsv3,
            self._timeout,
        )
        # recorded before it starts: one that fails to start is retried by the watchdog
        self._served[spec.ip_address] = ServedFileSystem(spec, exports_text, server)
        server.start(exports_text)

    def _retire(self, ip_address: str) -> None:
        served = self._served.pop(ip_address)
        served.server.stop(keep_rpcbind_registration=self._nfsv3 and bool(self._served))
        shutil.rmtree(served.server.paths.root, ignore_errors=True)
