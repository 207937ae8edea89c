"""The driver's configuration: command-line flags (with environment fallbacks) → a frozen DriverConfig.

Every value is validated here, once, with a message that names the flag and what is allowed,
so the servicers can trust the config object. The cloud settings (endpoint, region, credentials)
are not part of it: the controller reads them through `cfs_cloud.CloudConfig.from_env()`, and the
node needs none.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

MODE_CONTROLLER = "controller"
MODE_NODE = "node"
MODE_ALL = "all"
MODES = (MODE_CONTROLLER, MODE_NODE, MODE_ALL)

DEFAULT_DRIVER_NAME = "cfs.csi.tencentcloud.com"
DEFAULT_ENDPOINT = "unix:///csi/csi.sock"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# Environment fallbacks of the flags that differ per node or per cluster (set by the manifests).
ENV_NODE_ID = "NODE_NAME"
ENV_ZONE = "CFS_ZONE"
ENV_DEFAULT_ALLOWED_CLIENTS = "CFS_DEFAULT_ALLOWED_CLIENTS"

# The CSI spec: plugin name in domain notation, at most 63 characters; node id at most 256 bytes.
_DRIVER_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$")
_MAX_NODE_ID_BYTES = 256
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):(?P<port>\d{1,5})$")


class ConfigError(ValueError):
    """A flag or environment value that cannot work; the message names it and the allowed values."""


@dataclass(frozen=True)
class Endpoint:
    """Where the gRPC server listens: a unix socket path, or a TCP host and port."""

    scheme: str  # "unix" or "tcp"
    path: str = ""  # unix only
    host: str = ""  # tcp only
    port: int = 0  # tcp only; 0 = pick a free port

    @property
    def grpc_address(self) -> str:
        return f"unix://{self.path}" if self.scheme == "unix" else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"unix://{self.path}" if self.scheme == "unix" else f"tcp://{self.host}:{self.port}"


@dataclass(frozen=True)
class DriverConfig:
    mode: str
    endpoint: Endpoint
    driver_name: str = DEFAULT_DRIVER_NAME
    node_id: str = ""
    zone: str = ""
    default_allowed_clients: tuple[str, ...] = ()
    create_timeout: float = 120.0
    mount_timeout: float = 60.0
    kubelet_dir: str = "/var/lib/kubelet"
    subdir_mount_root: str = "/var/lib/cfs-csi/shares"
    metrics_address: str = ""
    log_level: str = "INFO"
    grpc_workers: int = 128
    shutdown_grace: float = 30.0

    @property
    def runs_controller(self) -> bool:
        return self.mode in (MODE_CONTROLLER, MODE_ALL)

    @property
    def runs_node(self) -> bool:
        return self.mode in (MODE_NODE, MODE_ALL)

    @classmethod
    def from_args(
        cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
    ) -> DriverConfig:
        """Parse flags (argparse exits 2 on unknown flags) and validate (raises ConfigError)."""
        environ = os.environ if environ is None else environ
        args = build_parser(environ).parse_args(argv)
        return cls(
            mode=_choice("--mode", args.mode, MODES),
            endpoint=parse_endpoint(args.endpoint),
            driver_name=_driver_name(args.driver_name),
            node_id=_node_id(args.node_id, args.mode),
            zone=args.zone.strip(),
            default_allowed_clients=parse_allowed_clients(args.default_allowed_clients),
            create_timeout=_positive_seconds("--create-timeout", args.create_timeout),
            mount_timeout=_positive_seconds("--mount-timeout", args.mount_timeout),
            kubelet_dir=_absolute_path("--kubelet-dir", args.kubelet_dir),
            subdir_mount_root=_absolute_path("--subdir-mount-root", args.subdir_mount_root),
            metrics_address=_metrics_address(args.metrics_address),
            log_level=_choice("--log-level", args.log_level.upper(), LOG_LEVELS),
            grpc_workers=_grpc_workers(args.grpc_workers),
            shutdown_grace=_positive_seconds("--shutdown-grace", args.shutdown_grace),
        )


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    # Values stay strings here; validation happens in one place (below) for flags and env alike.
    defaults = DriverConfig(mode=MODE_ALL, endpoint=parse_endpoint(DEFAULT_ENDPOINT))
    parser = argparse.ArgumentParser(
        prog="cfs-csi-driver", description="CSI plugin for Tencent Cloud CFS (NFS)."
    )
    parser.add_argument("--mode", default=MODE_ALL, help=f"one of {', '.join(MODES)}")
    parser.add_argument(
        "--endpoint",
        default=DEFAULT_ENDPOINT,
        help="unix:///path/to/csi.sock (or unix:/path) or tcp://HOST:PORT",
    )
    parser.add_argument("--driver-name", default=DEFAULT_DRIVER_NAME)
    parser.add_argument(
        "--node-id",
        default=environ.get(ENV_NODE_ID, ""),
        help=f"node name (env {ENV_NODE_ID}); required in node and all modes",
    )
    parser.add_argument(
        "--zone",
        default=environ.get(ENV_ZONE, ""),
        help=f"CFS zone of this node / default zone (env {ENV_ZONE})",
    )
    parser.add_argument(
        "--default-allowed-clients",
        default=environ.get(ENV_DEFAULT_ALLOWED_CLIENTS, ""),
        help=f"comma-separated IPs/CIDRs for managed permission groups (env {ENV_DEFAULT_ALLOWED_CLIENTS})",
    )
    parser.add_argument(
        "--create-timeout",
        default=str(defaults.create_timeout),
        help="seconds CreateVolume waits for `available` before ABORTED",
    )
    parser.add_argument(
        "--mount-timeout", default=str(defaults.mount_timeout), help="seconds per mount/umount command"
    )
    parser.add_argument(
        "--kubelet-dir",
        default=defaults.kubelet_dir,
        help="the kubelet's root directory: the node mounts, unmounts and removes only paths inside it",
    )
    parser.add_argument(
        "--subdir-mount-root",
        default=defaults.subdir_mount_root,
        help="where the controller mounts shared file systems (subdir mode)",
    )
    parser.add_argument(
        "--metrics-address", default="", help="HOST:PORT for Prometheus /metrics; empty = off"
    )
    parser.add_argument("--log-level", default=defaults.log_level, help=", ".join(LOG_LEVELS))
    parser.add_argument(
        "--grpc-workers",
        default=str(defaults.grpc_workers),
        help="concurrent RPCs served (the provisioner runs 100 workers)",
    )
    parser.add_argument(
        "--shutdown-grace",
        default=str(defaults.shutdown_grace),
        help="seconds in-flight RPCs may finish after SIGTERM",
    )
    return parser


def parse_endpoint(value: str) -> Endpoint:
    if value.startswith("unix:"):
        # unix:///abs/path (URL form) and unix:/abs/path (used by many manifests) are both fine.
        path = value[len("unix:") :]
        path = path[2:] if path.startswith("//") else path
        if not path.startswith("/"):
            raise ConfigError(
                f"--endpoint: {value!r} needs an absolute socket path, e.g. unix:///csi/csi.sock"
            )
        return Endpoint("unix", path=str(PurePosixPath(path)))
    if value.startswith("tcp://"):
        match = _HOST_PORT.match(value[len("tcp://") :])
        if not match or int(match["port"]) > 65535:
            raise ConfigError(f"--endpoint: {value!r} is not tcp://HOST:PORT with a port of 0-65535")
        return Endpoint("tcp", host=match["host"] or "0.0.0.0", port=int(match["port"]))
    raise ConfigError(
        f"--endpoint: {value!r} must start with unix:// or tcp:// "
        "(e.g. unix:///csi/csi.sock, tcp://127.0.0.1:10000)"
    )


def parse_allowed_clients(value: str) -> tuple[str, ...]:
    """Comma-separated IPv4 addresses / CIDRs, or `*` (everyone), as CFS permission rules take them."""
    clients = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if item != "*":
            try:
                ipaddress.IPv4Network(item, strict=False)
            except ValueError:
                raise ConfigError(
                    f"--default-allowed-clients: {item!r} is not an IPv4 address, an IPv4 CIDR or '*'"
                ) from None
        clients.append(item)
    return tuple(clients)


def _choice(flag: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ConfigError(f"{flag}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _driver_name(value: str) -> str:
    if not _DRIVER_NAME.match(value):
        raise ConfigError(
            f"--driver-name: {value!r} must be 1-63 characters of letters, digits, '-' and '.', "
            "beginning and ending with a letter or digit"
        )
    return value


def _node_id(value: str, mode: str) -> str:
    value = value.strip()
    if mode in (MODE_NODE, MODE_ALL) and not value:
        raise ConfigError(f"--node-id: required in mode {mode!r} (or set env {ENV_NODE_ID})")
    if len(value.encode()) > _MAX_NODE_ID_BYTES:
        raise ConfigError(f"--node-id: longer than {_MAX_NODE_ID_BYTES} bytes")
    return value


def _positive_seconds(flag: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{flag}: {value!r} is not a positive number of seconds")
    return seconds


def _grpc_workers(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 4096:
        raise ConfigError(f"--grpc-workers: {value!r} is not a whole number from 1 to 4096")
    return int(value)


def _absolute_path(flag: str, value: str) -> str:
    if not value.startswith("/"):
        raise ConfigError(f"{flag}: {value!r} is not an absolute path")
    return str(PurePosixPath(value))


def _metrics_address(value: str) -> str:
    value = value.strip()
    if value:
        match = _HOST_PORT.match(value)
        if not match or int(match["port"]) > 65535:
            raise ConfigError(
                f"--metrics-address: {value!r} is not HOST:PORT with a port of 0-65535 "
                "(empty turns metrics off)"
            )
    return value
