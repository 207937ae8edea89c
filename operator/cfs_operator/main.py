"""`cfs-operator`: flags → config, cloud client from the shared environment, kopf's main loop."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import random
from collections.abc import Mapping, Sequence
from typing import Any

import kopf
import prometheus_client

from cfs_cloud import CfsClient, CloudConfig
from cfs_operator.config import OperatorConfig
from cfs_operator.handlers import operator_settings, register
from cfs_operator.runtime import OperatorRuntime

log = logging.getLogger("cfs_operator")


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cfs-operator",
        description="Reconciles CfsPermissionGroup and CfsAutoSnapshotPolicy resources against "
        "the CFS API. Cloud endpoint, region and credentials come from CFS_ENDPOINT, "
        "TENCENTCLOUD_REGION, TENCENTCLOUD_SECRET_ID/KEY or CFS_CREDENTIALS_DIR.",
    )
    defaults = OperatorConfig()
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="snapshot-policy selectors pick claims only in this namespace (repeatable; "
        "default: every namespace)",
    )
    parser.add_argument(
        "--peering",
        metavar="NAME",
        default=None,
        help="kopf peering name: one active replica among those sharing it "
        "(needs the ClusterKopfPeering CRD; default: standalone)",
    )
    parser.add_argument(
        "--peering-priority",
        metavar="N",
        type=int,
        default=None,
        help="with --peering: the live replica with the highest priority works, the others "
        "stand by (default: random, so that replicas never tie: tied replicas all pause)",
    )
    parser.add_argument(
        "--liveness",
        metavar="URL",
        default=None,
        help="liveness endpoint, e.g. http://0.0.0.0:8081/healthz (default: off)",
    )
    parser.add_argument(
        "--metrics-address",
        metavar="HOST:PORT",
        default="",
        help="serve Prometheus /metrics here (default: off)",
    )
    parser.add_argument(
        "--drift-interval",
        type=positive_float,
        default=defaults.drift_interval,
        metavar="SECONDS",
        help="how often each resource re-reads the cloud and repairs drift",
    )
    parser.add_argument(
        "--selection-interval",
        type=positive_float,
        default=defaults.selection_interval,
        metavar="SECONDS",
        help="how often snapshot policies re-resolve their claim selector",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=defaults.workers,
        help="threads making cloud calls (paced by the client's rate limits)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"--metrics-address {address!r}: expected HOST:PORT")
    return host or "0.0.0.0", int(port)


def config_from_args(args: argparse.Namespace) -> OperatorConfig:
    return OperatorConfig(
        drift_interval=args.drift_interval,
        selection_interval=args.selection_interval,
        workers=args.workers,
        claim_namespaces=tuple(args.namespace),
    )


def peering_priority(args: argparse.Namespace) -> int | None:
    """kopf peering is no leader election: live peers of equal priority all pause. Distinct
    priorities make the highest one active and the others its standbys."""
    if args.peering is None:
        return None
    if args.peering_priority is not None:
        return args.peering_priority
    return random.SystemRandom().randrange(1, 2**31)


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere: $KUBECONFIG or ~/.kube/config."""
    in_pod = kopf.login_with_service_account(**kwargs)
    if in_pod is None:
        return kopf.login_with_kubeconfig(**kwargs)
    return dataclasses.replace(in_pod, server=in_cluster_server(os.environ) or in_pod.server)


def in_cluster_server(environ: Mapping[str, str]) -> str | None:
    """The API server's address as the kubelet hands it to every pod, which client-go uses too.
    kopf's own service-account login assumes https://kubernetes.default.svc, a name that only
    cluster DNS resolves: pods without it (hostNetwork with another resolver, DNS still starting)
    could never log in."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = config_from_args(args)
    cloud_config = CloudConfig.from_env()
    if not cloud_config.has_credentials():
        log.warning(
            "no CFS credentials configured; every cloud call will fail with AuthFailure until "
            "TENCENTCLOUD_SECRET_ID/KEY or CFS_CREDENTIALS_DIR provide them"
        )
    if args.metrics_address:
        host, port = split_address(args.metrics_address)
        prometheus_client.start_http_server(port, addr=host)
    runtime = OperatorRuntime(config, CfsClient(cloud_config))
    registry = kopf.OperatorRegistry()
    register(registry, config)
    kopf.on.login(registry=registry)(login)
    try:
        asyncio.run(
            kopf.operator(
                registry=registry,
                settings=operator_settings(),
                # Always cluster-wide: the custom resources are cluster scoped, and so is the peering
                # (ClusterKopfPeering) that keeps one replica active; --namespace filters claims instead.
                clusterwide=True,
                standalone=args.peering is None,
                peering_name=args.peering,
                priority=peering_priority(args),
                liveness_endpoint=args.liveness,
                memo=kopf.Memo(runtime=runtime),
            )
        )
    finally:
        runtime.close()
    return 0
