"""What the backend hands the data plane: one ExportSpec per file system, its rules, and the
DataPlane interface every implementation follows."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

ACCESS_MODES = ("RO", "RW")
SQUASH_MODES = ("all_squash", "no_all_squash", "root_squash", "no_root_squash")
FSID_PATTERN = re.compile(r"[A-Za-z0-9]{1,64}")


@dataclass(frozen=True)
class ExportRule:
    """One permission-group rule, as the API stores it."""

    client: str  # "*", an IP or a CIDR, exactly as in the permission-group rule
    access: str  # "RO" | "RW"
    squash: str  # "all_squash" | "no_all_squash" | "root_squash" | "no_root_squash"
    priority: int  # 1..100, 1 highest


@dataclass(frozen=True)
class ExportSpec:
    """One file system as it should be served."""

    file_system_id: str  # cfs-xxxxxxxx
    fsid: str  # the FSID used in NFSv3 paths
    ip_address: str  # the mount-target IP reported by DescribeMountTargets
    data_dir: Path  # <state-dir>/data/<FileSystemId> (the backend creates/copies/removes it)
    rules: tuple[ExportRule, ...]  # the permission-group rules (empty = everyone)


class DataPlaneError(RuntimeError):
    """The data plane could not serve what it was asked to (the message says why)."""


class DataPlaneUnavailable(DataPlaneError):
    """NFS was required (mode "on") but cannot be served on this machine."""


class MountTargetRefused(DataPlaneError):
    """A mount-target IP can never be served (in a cluster: the API server refused it as the
    ClusterIP, taken or outside the service CIDR); the file system must end create_failed."""


class DataPlane(Protocol):
    def start(self) -> None:
        """Prepare to serve (reaps servers left behind by a crashed predecessor)."""

    def reserve_mount_target(self, file_system_id: str, ip_address: str) -> None:
        """Claim the mount-target IP of a file system being created, before it is served.
        MountTargetRefused when the IP can never work; DataPlaneError when the claim could
        not be made now (apply() makes it later)."""

    def apply(self, specs: list[ExportSpec]) -> None:
        """Serve exactly these file systems; idempotent and cheap when nothing changed."""

    def stop(self) -> None:
        """Stop serving everything."""

    def clients(self, ip_address: str) -> list[str]:
        """The client IPs connected to the server of this mount-target IP now."""


class NullDataPlane:
    """Serves nothing: the data plane when NFS is off or ganesha is not installed."""

    def start(self) -> None:
        pass

    def reserve_mount_target(self, file_system_id: str, ip_address: str) -> None:
        pass

    def apply(self, specs: list[ExportSpec]) -> None:
        pass

    def stop(self) -> None:
        pass

    def clients(self, ip_address: str) -> list[str]:
        return []


def validate_spec(spec: ExportSpec) -> None:
    """Raise ValueError naming the field and the allowed values when a spec cannot be served."""
    where = f"file system {spec.file_system_id}"
    try:
        address = ipaddress.ip_address(spec.ip_address)
    except ValueError:
        address = None
    if address is None or address.version != 4:
        raise ValueError(f"{where}: ip_address must be an IPv4 address, not {spec.ip_address!r}")
    if not FSID_PATTERN.fullmatch(spec.fsid):
        raise ValueError(f"{where}: fsid must be 1-64 letters or digits, not {spec.fsid!r}")
    if not Path(spec.data_dir).is_dir():
        raise ValueError(f"{where}: data_dir {str(spec.data_dir)!r} is not a directory")
    if "\n" in str(spec.data_dir):  # a ganesha config string cannot hold one
        raise ValueError(f"{where}: data_dir {str(spec.data_dir)!r} must not contain a line break")
    for rule in spec.rules:
        validate_rule(rule, where)


def validate_rule(rule: ExportRule, where: str) -> None:
    if rule.client != "*":
        try:
            network = ipaddress.ip_network(rule.client, strict=False)
        except ValueError:
            network = None
        if network is None or network.version != 4:
            raise ValueError(
                f"{where}: rule client must be '*', an IPv4 address or an IPv4 CIDR, not {rule.client!r}"
            )
    if rule.access not in ACCESS_MODES:
        raise ValueError(
            f"{where}: rule access must be one of {', '.join(ACCESS_MODES)}, not {rule.access!r}"
        )
    if rule.squash not in SQUASH_MODES:
        raise ValueError(
            f"{where}: rule squash must be one of {', '.join(SQUASH_MODES)}, not {rule.squash!r}"
        )
    if not (isinstance(rule.priority, int) and 1 <= rule.priority <= 100):
        raise ValueError(f"{where}: rule priority must be an integer 1..100, not {rule.priority!r}")
