"""`cfs-csi-driver`: flags → DriverConfig → the servicers for --mode → gRPC server until SIGTERM.

The controller and node modules are imported only when their mode runs, so a node plugin starts
without cloud credentials and never loads the cloud client.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence

from cfs_csi.config import ConfigError, DriverConfig
from cfs_csi.csipb import csi_pb2_grpc
from cfs_csi.identity import CachedReadiness, IdentityServicer
from cfs_csi.logging_setup import configure_logging
from cfs_csi.metrics import MetricsEndpoint
from cfs_csi.server import CsiServer, Service

log = logging.getLogger("cfs_csi.main")

EXIT_STARTUP_FAILED = 1
EXIT_BAD_CONFIG = 2  # same as argparse's usage errors


def build_services(config: DriverConfig) -> list[Service]:
    services = []
    readiness = None
    if config.runs_controller:
        from cfs_csi.controller.servicer import build_controller

        controller = build_controller(config)
        services.append(Service(controller, csi_pb2_grpc.add_ControllerServicer_to_server))
        readiness = CachedReadiness(controller.readiness_check)
    if config.runs_node:
        from cfs_csi.node.servicer import build_node

        services.append(Service(build_node(config), csi_pb2_grpc.add_NodeServicer_to_server))
    identity = IdentityServicer(
        config.driver_name,
        controller=config.runs_controller,
        # Volumes carry their zone; a node with a zone reports it in NodeGetInfo.
        topology=config.runs_controller or bool(config.zone),
        readiness=readiness,
    )
    return [Service(identity, csi_pb2_grpc.add_IdentityServicer_to_server), *services]


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def run(config: DriverConfig) -> None:
    """Serve until SIGTERM/SIGINT, then stop gracefully (in-flight RPCs get the grace period).

    The stop signals are blocked before any thread starts (threads inherit the mask) and taken
    synchronously here: a Python signal handler would run only when the main thread next runs
    Python code, and a main thread asleep in a wait never does if a gRPC thread took the signal.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    metrics_endpoint = MetricsEndpoint(config.metrics_address) if config.metrics_address else None
    try:
        if metrics_endpoint:
            log.info("serving metrics on port %d", metrics_endpoint.port)
        server = CsiServer(config.endpoint, build_services(config), workers=config.grpc_workers)
        log.info(
            "cfs-csi-driver ready: mode=%s driver=%s node_id=%r",
            config.mode,
            config.driver_name,
            config.node_id,
        )
        received = signal.sigwait(STOP_SIGNALS)
        log.info("received %s", signal.Signals(received).name)
        server.stop(config.shutdown_grace)
    finally:
        if metrics_endpoint:
            metrics_endpoint.close()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = DriverConfig.from_args(argv)
    except ConfigError as error:
        print(f"cfs-csi-driver: error: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    configure_logging(config.log_level)
    try:
        run(config)
    except Exception:
        log.exception("cfs-csi-driver failed to start")
        return EXIT_STARTUP_FAILED
    return 0
