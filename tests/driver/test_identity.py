"""CSI Identity over a real gRPC unix socket: plugin info, capabilities per mode, Probe readiness."""

import grpc
import pytest

from cfs_csi import __version__
from cfs_csi.config import Endpoint
from cfs_csi.csipb import csi_pb2, csi_pb2_grpc
from cfs_csi.identity import NOT_READY_CACHE_SECONDS, READY_CACHE_SECONDS, CachedReadiness, IdentityServicer
from cfs_csi.server import CsiServer, Service

SERVICE = csi_pb2.PluginCapability.Service
EXPANSION = csi_pb2.PluginCapability.VolumeExpansion


@pytest.fixture
def serve_identity(tmp_path):
    """Start an Identity-only server on a unix socket; yields a function returning its stub."""
    servers = []

    def start(identity: IdentityServicer) -> csi_pb2_grpc.IdentityStub:
        endpoint = Endpoint("unix", path=str(tmp_path / f"csi-{len(servers)}.sock"))
        server = CsiServer(endpoint, [Service(identity, csi_pb2_grpc.add_IdentityServicer_to_server)])
        servers.append(server)
        channel = grpc.insecure_channel(server.address)
        return csi_pb2_grpc.IdentityStub(channel)

    yield start
    for server in servers:
        server.stop(grace=0)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class ScriptedCheck:
    """A readiness check whose outcome the test sets; counts how often it ran."""

    def __init__(self):
        self.calls = 0
        self.error: Exception | None = None

    def __call__(self):
        self.calls += 1
        if self.error:
            raise self.error


def test_plugin_info_reports_configured_name_and_package_version(serve_identity):
    stub = serve_identity(IdentityServicer("cfs.example.com", controller=True, topology=True))
    info = stub.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=5)
    assert info.name == "cfs.example.com"
    assert info.vendor_version == __version__ != ""


def _capabilities(stub):
    reply = stub.GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest(), timeout=5)
    services = {cap.service.type for cap in reply.capabilities if cap.HasField("service")}
    expansion = {cap.volume_expansion.type for cap in reply.capabilities if cap.HasField("volume_expansion")}
    return services, expansion


def test_controller_advertises_controller_topology_and_online_expansion(serve_identity):
    stub = serve_identity(IdentityServicer("cfs.csi.tencentcloud.com", controller=True, topology=True))
    assert _capabilities(stub) == (
        {SERVICE.CONTROLLER_SERVICE, SERVICE.VOLUME_ACCESSIBILITY_CONSTRAINTS},
        {EXPANSION.ONLINE},
    )


def test_node_only_plugin_advertises_no_controller_service(serve_identity):
    zonal_node = serve_identity(IdentityServicer("cfs.csi.tencentcloud.com", controller=False, topology=True))
    assert _capabilities(zonal_node) == ({SERVICE.VOLUME_ACCESSIBILITY_CONSTRAINTS}, set())
    plain_node = serve_identity(
        IdentityServicer("cfs.csi.tencentcloud.com", controller=False, topology=False)
    )
    assert _capabilities(plain_node) == (set(), set())


def test_probe_without_a_readiness_check_is_ready(serve_identity):
    stub = serve_identity(IdentityServicer("cfs.csi.tencentcloud.com", controller=False, topology=False))
    reply = stub.Probe(csi_pb2.ProbeRequest(), timeout=5)
    assert reply.HasField("ready") and reply.ready.value is True


def test_probe_follows_the_readiness_check_and_caches_its_outcome(serve_identity, caplog):
    check, clock = ScriptedCheck(), FakeClock()
    stub = serve_identity(
        IdentityServicer(
            "cfs.csi.tencentcloud.com",
            controller=True,
            topology=True,
            readiness=CachedReadiness(check, clock=clock),
        )
    )

    def ready():
        return stub.Probe(csi_pb2.ProbeRequest(), timeout=5).ready.value

    check.error = PermissionError("AuthFailure.SecretIdNotFound: unknown SecretId")
    assert ready() is False
    assert "AuthFailure.SecretIdNotFound" in caplog.text  # the reason reaches the log
    check.error = None
    assert ready() is False and check.calls == 1  # the failure is cached for a short while
    clock.now += NOT_READY_CACHE_SECONDS
    assert ready() is True and check.calls == 2
    check.error = ConnectionError("cloud unreachable")
    clock.now += READY_CACHE_SECONDS - 1
    assert ready() is True and check.calls == 2  # success is cached longer: one cloud call
    clock.now += 1
    assert ready() is False and check.calls == 3


# --- the real driver process in controller mode, against the reference CFS service ----------


def probe_ready(controller) -> bool:
    return controller.identity.Probe(csi_pb2.ProbeRequest(), timeout=30).ready.value


def test_controller_process_is_ready_with_valid_credentials(tmp_path, reference):
    from tests.support.csi import driver_process

    with driver_process(tmp_path, reference) as driver:
        assert probe_ready(driver.controller) is True
        info = driver.controller.identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=5)
        assert info.name == "cfs.csi.tencentcloud.com"
    assert reference.admin.calls()["DescribeCfsServiceStatus"]["count"] >= 1


def test_controller_process_with_rejected_credentials_is_not_ready_and_hides_the_key(tmp_path, reference):
    from tests.support.csi import DriverProcess

    wrong_key = "wrong-key-must-not-be-logged-0123456789"
    driver = DriverProcess(tmp_path, reference, create_timeout=30)
    driver.env["TENCENTCLOUD_SECRET_KEY"] = wrong_key
    try:
        controller = driver.start()
        assert probe_ready(controller) is False
        assert probe_ready(controller) is False
    finally:
        driver.kill()
    log = driver.log()
    assert "probe not ready" in log and "AuthFailure" in log
    assert wrong_key not in log and reference.secret_key not in log
