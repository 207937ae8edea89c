"""The in-cluster mount-target scheme (`--mount-target-mode kubernetes`).

A pod cannot own extra addresses, and a ClusterIP is virtual. So each file system's ganesha
listens on its own port on every pod address, and a Service per file system with
`spec.clusterIP` = the mount-target IP forwards <IP>:2049 to that port.

The port is derived from the mount-target IP (durable in the backend's state): port =
first port of --nfs-port-range + the IP's offset in --mount-ip-pool. A restart therefore reuses
every port, two file systems can never share one, and nothing else needs storing.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cfs_reference.nfs.ganesha_config import Listener
from cfs_reference.nfs.kube_api import SERVICE_ACCOUNT_DIR, KubeApi
from cfs_reference.nfs.kube_services import MountTarget, MountTargetServices
from cfs_reference.nfs.model import DataPlaneError, ExportSpec
from cfs_reference.nfs.plane import GaneshaDataPlane

DEFAULT_PORT_RANGE = "20000-20255"

log = logging.getLogger(__name__)


def parse_port_range(text: str) -> tuple[int, int]:
    """'FIRST-LAST' -> (first, last); ValueError naming --nfs-port-range."""
    first, sep, last = text.partition("-")
    try:
        ports = (int(first), int(last)) if sep else None
    except ValueError:
        ports = None
    if ports is None or not 1024 <= ports[0] <= ports[1] <= 65535:
        raise ValueError(
            f"--nfs-port-range must be FIRST-LAST with 1024 <= FIRST <= LAST <= 65535, not {text!r}"
        )
    return ports


def parse_selector(text: str) -> dict[str, str]:
    """'key=value,key2=value2' (the reference pod's labels) -> dict; ValueError when malformed."""
    selector = {}
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"--mount-target-selector must be KEY=VALUE[,KEY=VALUE...] (the reference "
                f"pod's labels), not {text!r}"
            )
        selector[key.strip()] = value.strip()
    return selector


@dataclass(frozen=True)
class PortPerMountTarget:
    """Which pod port serves which mount-target IP: a fixed offset mapping."""

    pool: ipaddress.IPv4Network
    first_port: int
    last_port: int

    def __post_init__(self) -> None:
        ports = self.last_port - self.first_port + 1
        if ports < self.pool.num_addresses:
            raise ValueError(
                f"--nfs-port-range {self.first_port}-{self.last_port} holds {ports} ports but "
                f"--mount-ip-pool {self.pool} has {self.pool.num_addresses} addresses; each "
                f"mount-target address needs its own port (narrow the pool or widen the range)"
            )

    def port_for(self, ip_address: str) -> int:
        address = ipaddress.IPv4Address(ip_address)
        if address not in self.pool:
            raise ValueError(f"mount-target IP {ip_address} is outside --mount-ip-pool {self.pool}")
        return self.first_port + int(address) - int(self.pool.network_address)

    def listener(self, spec: ExportSpec) -> Listener:
        return Listener(None, self.port_for(spec.ip_address))


@dataclass(frozen=True)
class InClusterSettings:
    """What `--mount-target-mode kubernetes` needs; ValueError (naming the flag) when invalid."""

    mount_ip_pool: str
    port_range: str = DEFAULT_PORT_RANGE
    selector: str = ""  # KEY=VALUE,... the reference pod's labels
    service_account_dir: Path = SERVICE_ACCOUNT_DIR
    ports: PortPerMountTarget = field(init=False)
    selector_labels: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        first, last = parse_port_range(self.port_range)
        try:
            pool = ipaddress.IPv4Network(self.mount_ip_pool)
        except ValueError:
            raise ValueError(f"--mount-ip-pool must be an IPv4 CIDR, not {self.mount_ip_pool!r}") from None
        object.__setattr__(self, "ports", PortPerMountTarget(pool, first, last))
        object.__setattr__(self, "selector_labels", parse_selector(self.selector))


class KubernetesDataPlane:
    """ganesha on a port per file system, plus the Services that route the mount-target IPs
    to those ports. Services outlive the process (the file systems do too): start() leaves
    them, and the first apply() reconciles them with the backend's state."""

    def __init__(self, ganesha: GaneshaDataPlane, services: MountTargetServices,
                 ports: PortPerMountTarget):  # fmt: skip
        self._ganesha = ganesha
        self._services = services
        self._ports = ports
        # file systems being created whose Service exists before they are served
        self._claimed: set[str] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        self._ganesha.start()

    def reserve_mount_target(self, file_system_id: str, ip_address: str) -> None:
        target = MountTarget(file_system_id, ip_address, self._ports.port_for(ip_address))
        with self._lock:
            self._services.ensure(target)
            self._claimed.add(file_system_id)

    def apply(self, specs: list[ExportSpec]) -> None:
        """Serve the specs with ganesha first (a Service must not route to a closed port),
        then make the Services match; DataPlaneError after both were attempted."""
        failures = []
        servable = []
        for spec in specs:
            try:
                servable.append(
                    MountTarget(spec.file_system_id, spec.ip_address, self._ports.port_for(spec.ip_address))
                )
            except ValueError as error:
                # a file system kept its address when --mount-ip-pool moved: it has no port
                # now, and its old Service could route to another file system's; it must not
                # stop the others from being served
                failures.append(f"file system {spec.file_system_id} cannot be served: {error}")
        served_ids = {target.file_system_id for target in servable}
        try:
            self._ganesha.apply([spec for spec in specs if spec.file_system_id in served_ids])
        except DataPlaneError as error:
            failures.append(str(error))
        with self._lock:
            self._claimed -= {spec.file_system_id for spec in specs}
            try:
                self._services.reconcile(servable, keep=self._claimed)
            except DataPlaneError as error:
                failures.append(str(error))
        if failures:
            raise DataPlaneError("; ".join(failures))

    def stop(self) -> None:
        self._ganesha.stop()

    def clients(self, ip_address: str) -> list[str]:
        """Connections reach the pod port through the Service: ganesha sees the nodes' IPs."""
        return self._ganesha.clients(ip_address)


def kubernetes_data_plane(state_dir: Path, binary: str, settings: InClusterSettings) -> KubernetesDataPlane:
    """Build the in-cluster data plane from the pod's service account (DataPlaneUnavailable
    when it has none)."""
    api = KubeApi.from_service_account(settings.service_account_dir)
    ganesha = GaneshaDataPlane(state_dir, binary=binary, listener_for=settings.ports.listener)
    return KubernetesDataPlane(ganesha, MountTargetServices(api, settings.selector_labels), settings.ports)
