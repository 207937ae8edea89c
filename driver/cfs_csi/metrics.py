"""Prometheus metrics of the CSI plugin and the /metrics HTTP endpoint.

The metric objects live in prometheus_client's default registry, which also holds
cfs_cloud's per-action cloud-call metrics, so one endpoint serves both.
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Histogram, start_http_server

RPC_TOTAL = Counter("csi_rpc_total", "CSI RPCs answered, by method and gRPC status code.", ["method", "code"])
# CreateVolume waits for the cloud (minutes at worst), node RPCs take milliseconds.
RPC_SECONDS = Histogram(
    "csi_rpc_seconds",
    "CSI RPC latency in seconds, by method.",
    ["method"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)


def observe_rpc(method: str, code: str, seconds: float) -> None:
    RPC_TOTAL.labels(method=method, code=code).inc()
    RPC_SECONDS.labels(method=method).observe(seconds)


class MetricsEndpoint:
    """Serves GET /metrics on HOST:PORT (port 0 picks a free one) until `close`."""

    def __init__(self, address: str):
        host, _, port = address.rpartition(":")
        self._server: WSGIServer
        self._server, self._thread = start_http_server(int(port), addr=host.strip("[]") or "0.0.0.0")
        self.port: int = self._server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
