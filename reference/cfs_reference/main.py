"""`cfs-reference`: run the reference CFS service (flags, or the same keys in a YAML --config)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from aiohttp import web

from cfs_reference.backend import Backend
from cfs_reference.calls import CallLog
from cfs_reference.catalogue import documented_rate_limits
from cfs_reference.faults import Faults, parse_fault, parse_latency
from cfs_reference.nfs import (
    MOUNT_TARGET_MODES,
    DataPlane,
    DataPlaneError,
    InClusterSettings,
    make_data_plane,
)
from cfs_reference.nfs.in_cluster import DEFAULT_PORT_RANGE
from cfs_reference.nfs.kube_api import SERVICE_ACCOUNT_DIR
from cfs_reference.protocol import Protocol
from cfs_reference.ratelimit import RateLimiter
from cfs_reference.server import build_app
from cfs_reference.signatures import Verifier

DEFAULT_REGION = "ap-shanghai-fsi"
CREDENTIALS_ENV = "CFS_REFERENCE_CREDENTIALS"
MAX_GET_BYTES = 32 * 1024 + 1024  # "GET 请求的请求包大小不得超过 32 KB" (+ room for the request line)
log = logging.getLogger("cfs_reference")


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    port_file: Path | None
    state_dir: Path
    credentials: dict[str, str]
    tokens: dict[str, str]  # SecretId -> session token of a temporary key
    admin_token: str
    regions: list[str]
    create_delay: float
    rate_limits: dict[str, int]
    rate_limits_enabled: bool
    faults: Faults
    nfs: str
    mount_ip_pool: str
    nfsv3: bool
    in_cluster: InClusterSettings | None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cfs-reference", description=__doc__)
    parser.add_argument(
        "--config", type=Path, help="YAML file with any of these options (flag names as keys)"
    )
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (port 0 picks a free port)")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--state-dir", type=Path, default=Path("cfs-reference-state"))
    parser.add_argument(
        "--credential",
        action="append",
        default=[],
        metavar="ID:KEY[:TOKEN]",
        help=f"repeatable; with TOKEN a temporary key whose requests must carry that "
        f"X-TC-Token; also {CREDENTIALS_ENV}='id:key,id2:key2:token'",
    )
    parser.add_argument("--admin-token", default="", help="protects /_admin/* (disabled when empty)")
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument(
        "--regions",
        action="append",
        default=[],
        metavar="NAME",
        help="more regions (repeatable or comma-separated)",
    )
    parser.add_argument("--create-delay", type=float, default=2.0, metavar="SECONDS")
    parser.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        metavar="ACTION=N",
        help="override a documented per-action limit (0 = unlimited)",
    )
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--fault", action="append", default=[], metavar="ACTION:CODE:RATE")
    parser.add_argument("--latency", action="append", default=[], metavar="ACTION:MS")
    parser.add_argument("--create-failed-rate", type=float, default=0.0)
    parser.add_argument("--nfs", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--mount-ip-pool", default="127.16.0.0/16", metavar="CIDR")
    parser.add_argument(
        "--nfs-v3",
        action="store_true",
        help="also serve NFSv3 at /<FSID> (needs an rpcbind in this network namespace)",
    )
    parser.add_argument(
        "--mount-target-mode",
        choices=MOUNT_TARGET_MODES,
        default="local",
        help="local: one ganesha per mount-target IP; kubernetes: a Service per file system",
    )
    parser.add_argument(
        "--nfs-port-range",
        default=DEFAULT_PORT_RANGE,
        metavar="FIRST-LAST",
        help="kubernetes mode: the pod ports given to file systems",
    )
    parser.add_argument(
        "--mount-target-selector",
        default="",
        metavar="KEY=VALUE,...",
        help="kubernetes mode: the reference pod's labels (the Services select it)",
    )
    parser.add_argument(
        "--service-account-dir",
        type=Path,
        default=SERVICE_ACCOUNT_DIR,
        metavar="DIR",
        help="kubernetes mode: the pod's service-account token, ca.crt and namespace",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def parse_settings(argv: list[str]) -> tuple[Settings, str]:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config:
        loaded = yaml.safe_load(args.config.read_text()) or {}
        if not isinstance(loaded, dict):
            parser.error(f"--config {args.config}: expected a mapping of option names")
        known = {action.dest for action in parser._actions}
        defaults = {key.replace("-", "_"): value for key, value in loaded.items()}
        unknown = sorted(set(defaults) - known)
        if unknown:
            parser.error(f"--config {args.config}: unknown options {', '.join(unknown)}")
        parser.set_defaults(**defaults)
        args = parser.parse_args(argv)
    credentials, tokens = _credentials(parser, args.credential + _env_credentials())
    host, _, port = args.listen.rpartition(":")
    try:
        faults = Faults(
            [parse_fault(f) for f in args.fault],
            dict(parse_latency(x) for x in args.latency),
            args.create_failed_rate,
        )
        rate_limits = dict(_rate_limit(x) for x in args.rate_limit)
        settings = Settings(
            host=host or "127.0.0.1",
            port=int(port),
            port_file=args.port_file,
            state_dir=args.state_dir,
            credentials=credentials,
            tokens=tokens,
            admin_token=args.admin_token,
            regions=[args.region, *_names(args.regions)],
            create_delay=args.create_delay,
            rate_limits=rate_limits,
            rate_limits_enabled=not args.no_rate_limits,
            faults=faults,
            nfs=args.nfs,
            mount_ip_pool=args.mount_ip_pool,
            nfsv3=args.nfs_v3,
            in_cluster=InClusterSettings(
                args.mount_ip_pool, args.nfs_port_range, args.mount_target_selector, args.service_account_dir
            )
            if args.mount_target_mode == "kubernetes"
            else None,
        )
    except ValueError as error:
        parser.error(str(error))
    return settings, args.log_level


def _names(items: list[str]) -> list[str]:
    """Repeatable flags that also take comma-separated lists."""
    return [name.strip() for item in items for name in item.split(",") if name.strip()]


def _env_credentials() -> list[str]:
    return [item for item in os.environ.get(CREDENTIALS_ENV, "").split(",") if item.strip()]


def _credentials(parser: argparse.ArgumentParser, items: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """ID:KEY (a long-term key) or ID:KEY:TOKEN (a temporary key) -> (id -> key, id -> token)."""
    credentials, tokens = {}, {}
    for item in items:
        secret_id, sep, rest = item.strip().partition(":")
        secret_key, _, token = rest.partition(":")
        if not sep or not secret_id or not secret_key:
            parser.error(
                "--credential wants ID:KEY or ID:KEY:TOKEN"
            )  # never echo the value: it holds a secret
        credentials[secret_id] = secret_key
        if token:
            tokens[secret_id] = token
        else:
            tokens.pop(secret_id, None)
    if not credentials:
        parser.error(f"give at least one --credential ID:KEY (or {CREDENTIALS_ENV})")
    return credentials, tokens


def _rate_limit(text: str) -> tuple[str, int]:
    action, sep, limit = text.partition("=")
    if not sep or not action:
        raise ValueError(f"--rate-limit wants ACTION=N, got {text!r}")
    return action, int(limit)


async def serve(settings: Settings, data_plane: DataPlane) -> None:
    backend = Backend(
        settings.state_dir,
        settings.regions,
        settings.mount_ip_pool,
        data_plane,
        settings.create_delay,
        settings.faults.create_fails,
    )
    protocol = Protocol(
        backend,
        Verifier(settings.credentials, tokens=settings.tokens),
        RateLimiter(documented_rate_limits(), settings.rate_limits, settings.rate_limits_enabled),
        settings.faults,
        CallLog(),
    )
    runner = web.AppRunner(
        build_app(protocol, settings.admin_token),
        access_log=None,
        handle_signals=False,
        max_line_size=MAX_GET_BYTES,
        max_field_size=MAX_GET_BYTES,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        port = runner.addresses[0][1]
        if settings.port_file:
            partial = settings.port_file.with_suffix(".tmp")
            partial.write_text(f"{port}\n")
            partial.replace(settings.port_file)
        print(f"cfs-reference listening on http://{settings.host}:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    settings, log_level = parse_settings(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        data_plane = make_data_plane(settings.nfs, settings.state_dir, settings.nfsv3, settings.in_cluster)
    except (DataPlaneError, ValueError) as error:  # e.g. --nfs on where ganesha cannot run
        log.error("cannot serve NFS: %s", error)
        return 2
    try:
        asyncio.run(serve(settings, data_plane))
    except DataPlaneError as error:
        log.error("the NFS data plane failed to start: %s", error)
        return 2
    return 0
