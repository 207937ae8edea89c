"""The plugin's gRPC server: unix or TCP endpoint, one logging/metrics interceptor, graceful stop.

The interceptor logs one line per RPC with the method, the ids that identify what the call is
about (`volume_id`, `snapshot_id`, `name`, `source_volume_id`), the status code and duration.
It never logs request bodies: CSI requests carry `secrets` maps and mount flags.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc

from cfs_csi import metrics
from cfs_csi.config import Endpoint

log = logging.getLogger(__name__)

# Request fields that name the object of a call; safe to log (ids and CO-chosen names).
ID_FIELDS = ("volume_id", "snapshot_id", "name", "source_volume_id")
# Polled every few seconds by sidecars (liveness probe, registrar): successes log at DEBUG only.
POLLED_METHODS = frozenset(
    {
        "Probe",
        "GetPluginInfo",
        "GetPluginCapabilities",
        "ControllerGetCapabilities",
        "NodeGetCapabilities",
        "NodeGetInfo",
    }
)


@dataclass(frozen=True)
class Service:
    """A servicer and the generated `add_<Service>Servicer_to_server` that registers it."""

    servicer: object
    register: Callable[[object, grpc.Server], None]


class RpcInterceptor(grpc.ServerInterceptor):
    """Logs and measures every unary RPC; answers UNIMPLEMENTED (logged too) for unserved methods."""

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method  # "/csi.v1.Controller/CreateVolume"
        handler = continuation(handler_call_details)
        if handler is None:
            return _unimplemented_handler(method)
        if handler.unary_unary is None:  # streaming RPCs pass through unmeasured
            return handler
        return grpc.unary_unary_rpc_method_handler(
            _measured(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _measured(method: str, behavior):
    short_method = method.rsplit("/", 1)[-1]

    def measured_behavior(request, context):
        started = time.monotonic()
        code = grpc.StatusCode.OK
        try:
            response = behavior(request, context)
            code = context.code() or grpc.StatusCode.OK
            return response
        except Exception:
            # context.abort() raises after setting the code; anything else is a bug → UNKNOWN.
            code = context.code() or grpc.StatusCode.UNKNOWN
            if code is grpc.StatusCode.UNKNOWN:
                log.exception("rpc=%s failed unexpectedly", short_method)
            raise
        finally:
            seconds = time.monotonic() - started
            metrics.observe_rpc(short_method, code.name, seconds)
            _log_rpc(short_method, request, code, context.details(), seconds)

    return measured_behavior


def _log_rpc(
    method: str, request, code: grpc.StatusCode, details: str | bytes | None, seconds: float
) -> None:
    ids = " ".join(
        f"{field}={getattr(request, field)!r}"
        for field in ID_FIELDS
        if field in request.DESCRIPTOR.fields_by_name and getattr(request, field)
    )
    if code is not grpc.StatusCode.OK:
        level = logging.WARNING
    else:
        level = logging.DEBUG if method in POLLED_METHODS else logging.INFO
    if isinstance(details, bytes):
        details = details.decode(errors="replace")
    message = f" message={details!r}" if details and code is not grpc.StatusCode.OK else ""
    log.log(
        level,
        "rpc=%s %scode=%s duration=%.3fs%s",
        method,
        f"{ids} " if ids else "",
        code.name,
        seconds,
        message,
    )


def _unimplemented_handler(method: str) -> grpc.RpcMethodHandler:
    short_method = method.rsplit("/", 1)[-1]

    def unimplemented(request: bytes, context: grpc.ServicerContext):
        # The request stays undecoded bytes: we do not know its type and must not log it.
        metrics.observe_rpc(short_method, grpc.StatusCode.UNIMPLEMENTED.name, 0.0)
        log.warning("rpc=%s code=UNIMPLEMENTED (service not served by this plugin instance)", short_method)
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED, f"{method} is not served by this plugin instance (check --mode)"
        )

    return grpc.unary_unary_rpc_method_handler(unimplemented)


class CsiServer:
    """A started gRPC server for the given services on one endpoint.

    Unix sockets: the parent directory is created and a stale socket from a previous run is
    removed; anything else at the path is refused rather than deleted.
    """

    def __init__(self, endpoint: Endpoint, services: Iterable[Service], *, workers: int = 16):
        self.endpoint = endpoint
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csi-rpc"),
            interceptors=[RpcInterceptor()],
        )
        for service in services:
            service.register(service.servicer, self._server)
        if endpoint.scheme == "unix":
            _prepare_socket_path(Path(endpoint.path))
        port = self._server.add_insecure_port(endpoint.grpc_address)
        if endpoint.scheme == "tcp" and port == 0:
            raise OSError(f"cannot listen on {endpoint}")
        self.port = port if endpoint.scheme == "tcp" else 0
        self._server.start()
        log.info("serving CSI on %s", self.address)

    @property
    def address(self) -> str:
        """What a client passes to grpc.insecure_channel."""
        if self.endpoint.scheme == "unix":
            return self.endpoint.grpc_address
        return f"{self.endpoint.host}:{self.port}"

    def stop(self, grace: float) -> None:
        """Refuse new RPCs at once, let in-flight ones finish for up to `grace` seconds."""
        log.info("stopping: in-flight RPCs have %.1fs to finish", grace)
        self._server.stop(grace).wait()
        if self.endpoint.scheme == "unix":
            Path(self.endpoint.path).unlink(missing_ok=True)
        log.info("stopped")


def _prepare_socket_path(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket; refusing to replace it")
    path.unlink()  # left over from a previous run that did not stop cleanly
