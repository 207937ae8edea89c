"""The plugin's server plumbing over real gRPC: logging without secrets, metrics, graceful stop,
socket handling, flag validation, and the real `python -m cfs_csi` process stopping on SIGTERM."""

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from cfs_csi.config import ConfigError, DriverConfig, Endpoint
from cfs_csi.csipb import csi_pb2, csi_pb2_grpc
from cfs_csi.identity import IdentityServicer
from cfs_csi.metrics import MetricsEndpoint
from cfs_csi.server import CsiServer, Service
from tests.support.local import free_port

SECRET_KEY = "s3cr3t-KEY-never-logged"
CAPABILITY = csi_pb2.VolumeCapability(
    mount=csi_pb2.VolumeCapability.MountVolume(),
    access_mode=csi_pb2.VolumeCapability.AccessMode(
        mode=csi_pb2.VolumeCapability.AccessMode.MULTI_NODE_MULTI_WRITER
    ),
)


def identity_service() -> Service:
    servicer = IdentityServicer("cfs.csi.tencentcloud.com", controller=False, topology=False)
    return Service(servicer, csi_pb2_grpc.add_IdentityServicer_to_server)


class RejectingController(csi_pb2_grpc.ControllerServicer):
    """Test servicer: answers CreateVolume with INVALID_ARGUMENT after reading its secrets."""

    def CreateVolume(self, request, context):
        assert request.secrets["secretKey"] == SECRET_KEY
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "parameter 'bogus' is not supported")


class GatedIdentity(IdentityServicer):
    """Test servicer: Probe blocks until the test releases it, to hold an RPC in flight."""

    def __init__(self):
        super().__init__("cfs.csi.tencentcloud.com", controller=False, topology=False)
        self.entered = threading.Event()
        self.release = threading.Event()

    def Probe(self, request, context):
        self.entered.set()
        assert self.release.wait(10)
        return super().Probe(request, context)


@pytest.fixture
def start_server(tmp_path):
    servers = []

    def start(*services, endpoint=None):
        endpoint = endpoint or Endpoint("unix", path=str(tmp_path / "sock" / f"csi{len(servers)}.sock"))
        server = CsiServer(endpoint, services)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(grace=0)


def create_volume_request() -> csi_pb2.CreateVolumeRequest:
    return csi_pb2.CreateVolumeRequest(
        name="pvc-0001",
        volume_capabilities=[CAPABILITY],
        parameters={"bogus": "1"},
        secrets={"secretId": "AKIDexample", "secretKey": SECRET_KEY},
    )


def test_unserved_controller_answers_unimplemented_and_logs_no_secret(start_server, caplog):
    caplog.set_level(logging.DEBUG)
    server = start_server(identity_service())
    stub = csi_pb2_grpc.ControllerStub(grpc.insecure_channel(server.address))
    with pytest.raises(grpc.RpcError) as error:
        stub.CreateVolume(create_volume_request(), timeout=5)
    assert error.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert "/csi.v1.Controller/CreateVolume is not served" in error.value.details()
    assert "rpc=CreateVolume code=UNIMPLEMENTED" in caplog.text
    assert SECRET_KEY not in caplog.text and "AKIDexample" not in caplog.text


def test_interceptor_logs_method_ids_code_and_message_but_no_secret(start_server, caplog):
    caplog.set_level(logging.DEBUG)
    server = start_server(
        identity_service(), Service(RejectingController(), csi_pb2_grpc.add_ControllerServicer_to_server)
    )
    channel = grpc.insecure_channel(server.address)
    with pytest.raises(grpc.RpcError) as error:
        csi_pb2_grpc.ControllerStub(channel).CreateVolume(create_volume_request(), timeout=5)
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    csi_pb2_grpc.IdentityStub(channel).Probe(csi_pb2.ProbeRequest(), timeout=5)

    lines = [record.getMessage() for record in caplog.records if record.name == "cfs_csi.server"]
    create = next(line for line in lines if line.startswith("rpc=CreateVolume"))
    assert "name='pvc-0001'" in create and "code=INVALID_ARGUMENT" in create
    assert "message=\"parameter 'bogus' is not supported\"" in create
    assert "duration=" in create
    assert any(line.startswith("rpc=Probe code=OK duration=") for line in lines)
    assert SECRET_KEY not in caplog.text and "AKIDexample" not in caplog.text


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("csi_rpc_"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_endpoint_counts_rpcs_by_method_and_code(start_server):
    server = start_server(identity_service())
    endpoint = MetricsEndpoint("127.0.0.1:0")
    try:
        before = scrape(endpoint.port)
        channel = grpc.insecure_channel(server.address)
        for _ in range(3):
            csi_pb2_grpc.IdentityStub(channel).Probe(csi_pb2.ProbeRequest(), timeout=5)
        with pytest.raises(grpc.RpcError):
            csi_pb2_grpc.NodeStub(channel).NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=5)
        after = scrape(endpoint.port)
    finally:
        endpoint.close()

    def delta(name):
        return after.get(name, 0) - before.get(name, 0)

    assert delta('csi_rpc_total{code="OK",method="Probe"}') == 3
    assert delta('csi_rpc_seconds_count{method="Probe"}') == 3
    assert delta('csi_rpc_total{code="UNIMPLEMENTED",method="NodeGetInfo"}') == 1


def refusal_of_new_rpcs(address: str) -> grpc.StatusCode:
    """Call until the server refuses (the stop runs in another thread); return the code."""
    late_stub = csi_pb2_grpc.IdentityStub(grpc.insecure_channel(address))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            late_stub.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=2)
        except grpc.RpcError as refused:
            return refused.code()
        time.sleep(0.05)
    pytest.fail("new RPCs were still served 10 s after stop began")


def test_stop_lets_an_in_flight_rpc_finish_refuses_new_ones_and_removes_the_socket(start_server):
    identity = GatedIdentity()
    server = start_server(Service(identity, csi_pb2_grpc.add_IdentityServicer_to_server))
    stub = csi_pb2_grpc.IdentityStub(grpc.insecure_channel(server.address))
    in_flight = stub.Probe.future(csi_pb2.ProbeRequest(), timeout=10)
    assert identity.entered.wait(5)

    stopper = threading.Thread(target=server.stop, kwargs={"grace": 10})
    stopper.start()
    try:
        # Once shutdown has begun, new RPCs are refused while the old one still runs.
        assert refusal_of_new_rpcs(server.address) in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
        assert stopper.is_alive() and not in_flight.done()
    finally:
        identity.release.set()
    assert in_flight.result().ready.value is True
    stopper.join(10)
    assert not stopper.is_alive()
    assert not Path(server.endpoint.path).exists()


def test_stale_socket_is_replaced_but_a_regular_file_is_refused(start_server, tmp_path):
    stale = tmp_path / "stale.sock"
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(stale))
    leftover.close()  # the file stays, as after a crash
    server = start_server(identity_service(), endpoint=Endpoint("unix", path=str(stale)))
    stub = csi_pb2_grpc.IdentityStub(grpc.insecure_channel(server.address))
    assert stub.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=5).name

    precious = tmp_path / "precious"
    precious.write_text("data")
    with pytest.raises(FileExistsError, match="is not a socket"):
        start_server(identity_service(), endpoint=Endpoint("unix", path=str(precious)))
    assert precious.read_text() == "data"


def test_tcp_endpoint_with_port_zero_picks_a_port(start_server):
    server = start_server(identity_service(), endpoint=Endpoint("tcp", host="127.0.0.1", port=0))
    assert server.port > 0 and server.address == f"127.0.0.1:{server.port}"
    stub = csi_pb2_grpc.IdentityStub(grpc.insecure_channel(server.address))
    assert stub.Probe(csi_pb2.ProbeRequest(), timeout=5).ready.value


# --- flags ------------------------------------------------------------------------------------


def test_flags_and_environment_build_the_config():
    config = DriverConfig.from_args(
        [
            "--mode",
            "node",
            "--endpoint",
            "tcp://127.0.0.1:0",
            "--create-timeout",
            "30",
            "--log-level",
            "debug",
        ],
        environ={
            "NODE_NAME": "node-a",
            "CFS_ZONE": "ap-shanghai-fsi-1",
            "CFS_DEFAULT_ALLOWED_CLIENTS": "10.0.0.0/16, 10.1.2.3,*",
        },
    )
    assert (config.mode, config.node_id, config.zone) == ("node", "node-a", "ap-shanghai-fsi-1")
    assert config.endpoint == Endpoint("tcp", host="127.0.0.1", port=0)
    assert config.default_allowed_clients == ("10.0.0.0/16", "10.1.2.3", "*")
    assert (config.create_timeout, config.log_level) == (30.0, "DEBUG")
    assert config.runs_node and not config.runs_controller
    short_form = DriverConfig.from_args(
        ["--endpoint", "unix:/var/lib/csi/csi.sock"], environ={"NODE_NAME": "node-a"}
    )
    assert short_form.endpoint == Endpoint("unix", path="/var/lib/csi/csi.sock")
    defaults = DriverConfig.from_args(["--mode", "controller"], environ={})
    assert defaults.endpoint == Endpoint("unix", path="/csi/csi.sock")
    assert defaults.driver_name == "cfs.csi.tencentcloud.com"
    with pytest.raises(AttributeError):
        defaults.mode = "node"  # frozen


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mode", "both"], "--mode: 'both' is not one of controller, node, all"),
        (["--mode", "node", "--node-id", " "], "--node-id: required in mode 'node' (or set env NODE_NAME)"),
        (["--endpoint", "/csi/csi.sock"], "--endpoint: '/csi/csi.sock' must start with unix:// or tcp://"),
        (["--endpoint", "unix://csi.sock"], "needs an absolute socket path"),
        (["--endpoint", "unix:csi.sock"], "needs an absolute socket path"),
        (["--endpoint", "tcp://127.0.0.1:70000"], "is not tcp://HOST:PORT with a port of 0-65535"),
        (["--driver-name=-bad-"], "--driver-name: '-bad-' must be 1-63 characters"),
        (["--driver-name", "a" * 64], "must be 1-63 characters"),
        (["--default-allowed-clients", "10.0.0.0/33"], "'10.0.0.0/33' is not an IPv4 address"),
        (["--create-timeout", "0"], "--create-timeout: '0' is not a positive number of seconds"),
        (["--mount-timeout", "soon"], "--mount-timeout: 'soon' is not a positive number"),
        (["--subdir-mount-root", "shares"], "--subdir-mount-root: 'shares' is not an absolute path"),
        (["--metrics-address", "9090"], "--metrics-address: '9090' is not HOST:PORT"),
        (["--log-level", "loud"], "--log-level: 'LOUD' is not one of DEBUG, INFO, WARNING, ERROR"),
        (["--grpc-workers", "0"], "--grpc-workers: '0' is not a whole number from 1 to 4096"),
    ],
)
def test_invalid_flags_are_rejected_with_a_precise_message(argv, message):
    with pytest.raises(ConfigError) as error:
        DriverConfig.from_args(argv, environ={"NODE_NAME": "node-a"})
    assert message in str(error.value)


# --- the real process -------------------------------------------------------------------------


def run_driver(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cfs_csi", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TENCENTCLOUD_SECRET_KEY": SECRET_KEY},
    )


def wait_for_socket(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"driver did not start: {process.communicate()[0]}")
        time.sleep(0.05)


def test_driver_process_bad_flag_exits_2_naming_the_flag():
    result = subprocess.run(
        [sys.executable, "-m", "cfs_csi", "--mode", "both"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "cfs-csi-driver: error: --mode: 'both' is not one of controller, node, all" in result.stderr


def test_node_mode_process_serves_without_credentials_and_exits_0_on_sigterm(tmp_path):
    socket_path = tmp_path / "plugin" / "csi.sock"
    metrics_port = free_port()
    driver = run_driver(
        "--mode",
        "node",
        "--node-id",
        "node-a",
        "--zone",
        "ap-shanghai-fsi-1",
        "--endpoint",
        f"unix://{socket_path}",
        "--shutdown-grace",
        "5",
        "--metrics-address",
        f"127.0.0.1:{metrics_port}",
        "--log-level",
        "debug",
    )
    try:
        wait_for_socket(socket_path, driver)
        channel = grpc.insecure_channel(f"unix://{socket_path}")
        identity = csi_pb2_grpc.IdentityStub(channel)
        grpc.channel_ready_future(channel).result(timeout=10)
        assert identity.Probe(csi_pb2.ProbeRequest(), timeout=5).ready.value is True
        services = {
            cap.service.type
            for cap in identity.GetPluginCapabilities(
                csi_pb2.GetPluginCapabilitiesRequest(), timeout=5
            ).capabilities
        }
        assert csi_pb2.PluginCapability.Service.CONTROLLER_SERVICE not in services
        info = csi_pb2_grpc.NodeStub(channel).NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=5)
        assert info.node_id == "node-a"
        with pytest.raises(grpc.RpcError) as error:
            csi_pb2_grpc.ControllerStub(channel).CreateVolume(create_volume_request(), timeout=5)
        assert error.value.code() is grpc.StatusCode.UNIMPLEMENTED
        channel.close()
        samples = scrape(metrics_port)
        assert samples['csi_rpc_total{code="OK",method="NodeGetInfo"}'] == 1
        assert samples['csi_rpc_total{code="UNIMPLEMENTED",method="CreateVolume"}'] == 1

        driver.send_signal(signal.SIGTERM)
        output, _ = driver.communicate(timeout=20)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, output
    assert "received SIGTERM" in output and "stopped" in output
    assert not socket_path.exists()
    assert SECRET_KEY not in output


def test_controller_process_finishes_an_in_flight_call_on_sigterm(tmp_path, reference):
    """The reference service holds the Probe's cloud call (2 s, inside the controller's 3 s
    readiness bound); SIGTERM arrives meanwhile."""
    from tests.support.csi import DriverProcess

    reference.admin.set_faults([], latency={"DescribeCfsServiceStatus": 2000})
    driver = DriverProcess(tmp_path, reference, create_timeout=30)
    try:
        controller = driver.start()
        in_flight = controller.identity.Probe.future(csi_pb2.ProbeRequest(), timeout=30)
        # The SDK logs each request at DEBUG as it sends it: then the Probe is in flight.
        deadline = time.monotonic() + 20
        while "DescribeCfsServiceStatus" not in driver.log():
            assert time.monotonic() < deadline, "the Probe's cloud call never started"
            time.sleep(0.05)
        driver.process.send_signal(signal.SIGTERM)
        assert in_flight.result().ready.value is True
        assert driver.process.wait(timeout=30) == 0
    finally:
        driver.kill()
    assert not driver.socket_path.exists()
    log = driver.log()
    assert log.index("received SIGTERM") < log.index("rpc=Probe code=OK") < log.index("stopped")


def test_controller_process_logs_no_request_secret_even_at_debug(tmp_path, reference):
    """Request secrets override the process credentials; neither key may reach the log."""
    from tests.support.csi import DriverProcess, create_request

    driver = DriverProcess(tmp_path, reference, create_timeout=30)
    driver.env["TENCENTCLOUD_SECRET_KEY"] = "process-key-is-wrong-on-purpose"
    try:
        controller = driver.start()
        request = create_request("pvc-secret-check")
        request.secrets.update({"secretId": reference.secret_id, "secretKey": reference.secret_key})
        volume = controller.stub.CreateVolume(request, timeout=60).volume
        assert volume.volume_id
    finally:
        driver.kill()
    log = driver.log()
    assert "rpc=CreateVolume name='pvc-secret-check' code=OK" in log
    assert reference.secret_key not in log
    assert "process-key-is-wrong-on-purpose" not in log
