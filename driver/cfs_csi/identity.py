"""CSI Identity service: who the plugin is, what it offers, and whether it is ready.

Probe answers `ready=false` (not an error) while the readiness check fails: the plugin process
is healthy but cannot serve volumes yet, e.g. the cloud API is unreachable or the credentials
are rejected. In controller mode the check is the controller's cloud check; it is cached so
that the liveness sidecar's frequent probes cost at most one cheap cloud call per interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from google.protobuf import wrappers_pb2

from cfs_csi import __version__
from cfs_csi.csipb import csi_pb2, csi_pb2_grpc

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], None]  # returns when ready, raises with the reason otherwise

# A success is trusted for longer than a failure, so recovery is noticed quickly.
READY_CACHE_SECONDS = 30.0
NOT_READY_CACHE_SECONDS = 5.0

_SERVICE = csi_pb2.PluginCapability.Service
_EXPANSION = csi_pb2.PluginCapability.VolumeExpansion


class CachedReadiness:
    """Runs `check` at most once per cache interval; concurrent probes share one run."""

    def __init__(self, check: ReadinessCheck, clock: Callable[[], float] = time.monotonic):
        self._check = check
        self._clock = clock
        self._lock = threading.Lock()
        self._valid_until = float("-inf")
        self._failure: str | None = None

    def failure(self) -> str | None:
        """None when ready, else the reason the last check gave."""
        with self._lock:
            if self._clock() >= self._valid_until:
                try:
                    self._check()
                except Exception as exc:  # any failure means "not ready"; the reason is logged
                    self._failure = f"{type(exc).__name__}: {exc}"
                    self._valid_until = self._clock() + NOT_READY_CACHE_SECONDS
                else:
                    self._failure = None
                    self._valid_until = self._clock() + READY_CACHE_SECONDS
            return self._failure


class IdentityServicer(csi_pb2_grpc.IdentityServicer):
    def __init__(
        self,
        driver_name: str,
        *,
        controller: bool,
        topology: bool,
        readiness: CachedReadiness | None = None,
        vendor_version: str = __version__,
    ):
        """`controller`: this process serves the Controller service. `topology`: volumes or
        this node report accessible topology (the spec then requires the capability)."""
        self._info = csi_pb2.GetPluginInfoResponse(name=driver_name, vendor_version=vendor_version)
        capabilities = []
        if controller:
            capabilities.append(_service(_SERVICE.CONTROLLER_SERVICE))
        if topology:
            capabilities.append(_service(_SERVICE.VOLUME_ACCESSIBILITY_CONSTRAINTS))
        if controller:
            # CFS grows a file system's size limit while it is mounted; nothing to do on nodes.
            capabilities.append(csi_pb2.PluginCapability(volume_expansion=_EXPANSION(type=_EXPANSION.ONLINE)))
        self._capabilities = csi_pb2.GetPluginCapabilitiesResponse(capabilities=capabilities)
        self._readiness = readiness

    def GetPluginInfo(self, request, context):
        return self._info

    def GetPluginCapabilities(self, request, context):
        return self._capabilities

    def Probe(self, request, context):
        failure = self._readiness.failure() if self._readiness else None
        if failure:
            log.warning("probe not ready: %s", failure)
        return csi_pb2.ProbeResponse(ready=wrappers_pb2.BoolValue(value=failure is None))


def _service(kind: csi_pb2.PluginCapability.Service.Type) -> csi_pb2.PluginCapability:
    return csi_pb2.PluginCapability(service=_SERVICE(type=kind))
