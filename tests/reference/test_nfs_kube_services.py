"""The in-cluster mount-target scheme: a ganesha port per file system plus a Kubernetes Service
per file system: first the data plane as the backend drives it, then the real `cfs-reference`
process in `--mount-target-mode kubernetes` through the official SDK.

Real parts: ganesha.nfsd per port, libnfs clients, the service-account configuration path
(token, CA and namespace files, KUBERNETES_SERVICE_HOST/PORT) over real HTTPS. The API server is
kmock's in-memory Kubernetes API (this machine has no kube-apiserver) with the two Service rules
the code depends on added here: the bearer token is checked, and a ClusterIP outside the service
CIDR or already held by another Service is refused with 422 Invalid, as kube-apiserver does.
A Service cannot route here (no kube-proxy), so libnfs reaches each export at 127.0.0.1 and the
file system's pod port (nfs://127.0.0.1/?version=4&nfsport=<port>), which is exactly where the
Service's targetPort points. Each test runs in a private network namespace.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.test_utils
import kmock
import pytest

from cfs_reference.nfs import (
    DataPlaneError,
    DataPlaneUnavailable,
    ExportSpec,
    InClusterSettings,
    KubernetesDataPlane,
    MountTargetRefused,
    make_data_plane,
)
from cfs_reference.nfs.in_cluster import PortPerMountTarget
from cfs_reference.nfs.kube_api import KubeApi
from cfs_reference.nfs.kube_services import OWNER_LABEL
from tests.support.local import eventually, free_port
from tests.support.netns import private_network
from tests.support.reference import call, running_reference, sdk_client

GANESHA = shutil.which("ganesha.nfsd")
pytestmark = [
    pytest.mark.nfs,
    pytest.mark.skipif(
        GANESHA is None or shutil.which("nfs-cp") is None or shutil.which("openssl") is None,
        reason="needs Debian packages nfs-ganesha nfs-ganesha-vfs libnfs-utils openssl",
    ),
]

NAMESPACE = "cfs-system"
TOKEN = "sa-token-for-tests"
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/16")
POOL = "10.96.0.128/25"  # the chart's default mount-IP pool
PORTS = "20000-20127"
FIRST_IP, SECOND_IP = "10.96.0.129", "10.96.0.130"
FIRST_PORT, SECOND_PORT = 20001, 20002  # 20000 + offset in the pool
SELECTOR = "app.kubernetes.io/name=cfs-csi,app.kubernetes.io/component=reference"
SELECTOR_LABELS = {"app.kubernetes.io/name": "cfs-csi", "app.kubernetes.io/component": "reference"}
SERVICES = kmock.resource("v1/services")
COMMAND_TIMEOUT = 30
wait_until = functools.partial(eventually, timeout=COMMAND_TIMEOUT)


class ServiceApiServer(kmock.KubernetesEmulator):
    """kmock plus what kube-apiserver enforces and the code relies on (see module docstring)."""

    async def _handle(self, request: Any) -> Any:
        if request.resource is not None:
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                raise kmock.KubernetesError(status=401, reason="Unauthorized", message="Unauthorized")
            if request.resource == SERVICES and request.action == kmock.action.CREATE:
                self._allocate_cluster_ip(request.data)
        return await super()._handle(request)

    def _allocate_cluster_ip(self, service: dict[str, Any]) -> None:
        wanted = service.get("spec", {}).get("clusterIP")
        if not wanted:
            return
        name = service["metadata"]["name"]
        if ipaddress.ip_address(wanted) not in SERVICE_CIDR:
            self._invalid(
                name,
                wanted,
                f"provided IP is not in the valid range. The range of valid IPs is {SERVICE_CIDR}",
            )
        for (resource, _, _), obj in self.objects.items():
            if resource == SERVICES and not obj.deleted and obj.get("spec", {}).get("clusterIP") == wanted:
                self._invalid(name, wanted, "provided IP is already allocated")

    @staticmethod
    def _invalid(name: str, address: str, why: str) -> None:
        raise kmock.KubernetesError(
            status=422, reason="Invalid",
            message=f'Service "{name}" is invalid: spec.clusterIPs: Invalid value: ["{address}"]: '
                    f"failed to allocate IP {address}: {why}",
        )  # fmt: skip


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "apiserver.crt", directory / "apiserver.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=kube-apiserver", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=COMMAND_TIMEOUT,
    )  # fmt: skip
    return cert, key


@dataclass
class KubeCluster:
    """The API server thread, and what a pod of the reference service would see."""

    emulator: ServiceApiServer
    loop: asyncio.AbstractEventLoop
    service_account_dir: Path
    environ: dict[str, str]

    def services(self) -> dict[str, dict[str, Any]]:
        """Every stored Service by name (read on the server's own loop)."""

        async def snapshot() -> dict[str, dict[str, Any]]:
            return {
                name: dict(obj.raw)
                for (res, _, name), obj in list(self.emulator.objects.items())
                if res == SERVICES and not obj.deleted
            }

        return asyncio.run_coroutine_threadsafe(snapshot(), self.loop).result(COMMAND_TIMEOUT)

    def api(self) -> KubeApi:
        return KubeApi.from_service_account(self.service_account_dir, self.environ)


@contextmanager
def running_api_server(tmp_path: Path) -> Iterator[KubeCluster]:
    """kmock over HTTPS on a random loopback port, on its own thread and event loop."""
    cert, key = self_signed_certificate(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    class TlsServer(aiohttp.test_utils.RawTestServer):
        async def start_server(self, **kwargs: Any) -> None:
            await super().start_server(ssl=tls, **kwargs)

    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready, stopping = threading.Event(), asyncio.Event()

    async def serve() -> None:
        try:
            async with ServiceApiServer() as emulator, kmock.Server(emulator, server_cls=TlsServer) as server:
                emulator.resources.load_bundled()
                started.update(emulator=emulator, port=server.port)
                ready.set()
                await stopping.wait()
        finally:
            ready.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(COMMAND_TIMEOUT) and "emulator" in started, "kmock did not start"
        account = tmp_path / "serviceaccount"
        account.mkdir()
        (account / "token").write_text(TOKEN + "\n")
        (account / "namespace").write_text(NAMESPACE)
        shutil.copy(cert, account / "ca.crt")
        environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(started["port"])}
        yield KubeCluster(started["emulator"], loop, account, environ)
    finally:
        loop.call_soon_threadsafe(stopping.set)
        thread.join(COMMAND_TIMEOUT)
        loop.close()


@pytest.fixture
def cluster(tmp_path, monkeypatch) -> Iterator[KubeCluster]:
    # The private namespace first: the API server thread started inside it shares it.
    with private_network([]), running_api_server(tmp_path) as kube:
        for name, value in kube.environ.items():
            monkeypatch.setenv(name, value)
        yield kube


def settings(cluster: KubeCluster, pool: str = POOL) -> InClusterSettings:
    return InClusterSettings(pool, PORTS, SELECTOR, cluster.service_account_dir)


@contextmanager
def data_plane(cluster: KubeCluster, state_dir: Path, pool: str = POOL) -> Iterator[KubernetesDataPlane]:
    plane = make_data_plane("on", state_dir, in_cluster=settings(cluster, pool))
    assert isinstance(plane, KubernetesDataPlane)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


def spec(tmp_path: Path, file_system_id: str, ip_address: str) -> ExportSpec:
    data_dir = tmp_path / "data" / file_system_id
    data_dir.mkdir(parents=True, exist_ok=True)
    return ExportSpec(file_system_id, file_system_id[-8:], ip_address, data_dir, rules=())


def expected_service(file_system_id: str, ip_address: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": f"mount-{file_system_id}", "namespace": NAMESPACE,
                     "labels": {
                         OWNER_LABEL: file_system_id, "app.kubernetes.io/managed-by": "cfs-reference"}},
        "spec": {"type": "ClusterIP", "clusterIP": ip_address, "selector": SELECTOR_LABELS,
                 "ports": [{"name": "nfs", "protocol": "TCP", "port": 2049, "targetPort": port}]},
    }  # fmt: skip


def nfs(command: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT)


def url(port: int, name: str = "") -> str:
    return f"nfs://127.0.0.1/{'/' + name if name else ''}?version=4&nfsport={port}"


def port_is_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def foreign_service(name: str, cluster_ip: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels or {"app": "other"}},
            "spec": {"clusterIP": cluster_ip, "ports": [{"port": 80, "targetPort": 8080}]}}  # fmt: skip


def create_service(cluster: KubeCluster, body: dict[str, Any]) -> None:
    cluster.api().request("POST", f"/api/v1/namespaces/{NAMESPACE}/services", body)


# ---- the service-account configuration and the settings ----


def test_service_account_configuration_comes_from_the_pod_files(cluster):
    api = cluster.api()
    assert api.base_url == f"https://127.0.0.1:{cluster.environ['KUBERNETES_SERVICE_PORT']}"
    assert api.namespace == NAMESPACE
    assert api.request("GET", f"/api/v1/namespaces/{NAMESPACE}/services")["items"] == []
    (cluster.service_account_dir / "token").write_text("rotated-elsewhere")  # re-read per call
    with pytest.raises(DataPlaneError, match="401 Unauthorized") as refused:
        api.request("GET", f"/api/v1/namespaces/{NAMESPACE}/services")
    assert "rotated-elsewhere" not in str(refused.value)


def test_missing_in_cluster_configuration_is_named(cluster, tmp_path):
    with pytest.raises(DataPlaneUnavailable, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"):
        KubeApi.from_service_account(cluster.service_account_dir, {})
    (cluster.service_account_dir / "token").unlink()
    with pytest.raises(
        DataPlaneUnavailable, match=r"serviceaccount/token \(is automountServiceAccountToken false"
    ):
        make_data_plane("on", tmp_path, in_cluster=settings(cluster))


@pytest.mark.parametrize("kwargs, message", [
    ({"port_range": "20000"}, "--nfs-port-range must be FIRST-LAST"),
    ({"port_range": "20010-20000"}, "--nfs-port-range must be FIRST-LAST"),
    ({"port_range": "20000-20063"}, "--nfs-port-range 20000-20063 holds 64 ports but --mount-ip-pool "
                                    "10.96.0.128/25 has 128 addresses"),
    ({"mount_ip_pool": "10.96.0.0/33"}, "--mount-ip-pool must be an IPv4 CIDR"),
    ({"selector": "app.kubernetes.io/name"}, "--mount-target-selector must be KEY=VALUE"),
])  # fmt: skip
def test_invalid_in_cluster_settings_name_the_flag(kwargs, message):
    values = {"mount_ip_pool": POOL, "port_range": PORTS, "selector": SELECTOR, **kwargs}
    with pytest.raises(ValueError) as error:
        InClusterSettings(**values)
    assert message in str(error.value)


def test_nfsv3_is_refused_in_a_cluster(tmp_path):
    with pytest.raises(ValueError, match="--nfs-v3 needs the local mount-target mode"):
        make_data_plane("on", tmp_path, nfsv3=True, in_cluster=InClusterSettings(POOL, PORTS, SELECTOR))


def test_ports_follow_the_address_and_never_collide():
    ports = PortPerMountTarget(ipaddress.IPv4Network(POOL), 20000, 20127)
    every = [ports.port_for(str(ip)) for ip in ipaddress.IPv4Network(POOL).hosts()]
    assert every == list(range(20001, 20127))
    with pytest.raises(ValueError, match="outside --mount-ip-pool"):
        ports.port_for("10.96.1.1")


# ---- serving and the Services ----


def test_each_file_system_is_served_on_its_port_behind_its_own_service(cluster, tmp_path):
    first, second = spec(tmp_path, "cfs-aaaa0001", FIRST_IP), spec(tmp_path, "cfs-bbbb0002", SECOND_IP)
    (second.data_dir / "only-in-second").write_text("second")
    with data_plane(cluster, tmp_path / "state") as plane:
        plane.apply([first, second])
        assert cluster.services() == {
            "mount-cfs-aaaa0001": expected_service("cfs-aaaa0001", FIRST_IP, FIRST_PORT),
            "mount-cfs-bbbb0002": expected_service("cfs-bbbb0002", SECOND_IP, SECOND_PORT),
        }
        source = tmp_path / "upload"
        source.write_text("hello through the first mount target\n")
        written = nfs("nfs-cp", str(source), url(FIRST_PORT, "hello.txt"))
        assert written.returncode == 0, written.stderr
        assert (first.data_dir / "hello.txt").read_text() == "hello through the first mount target\n"
        assert not (second.data_dir / "hello.txt").exists()
        listing = nfs("nfs-ls", url(SECOND_PORT))
        assert (
            listing.returncode == 0
            and "only-in-second" in listing.stdout
            and "hello.txt" not in listing.stdout
        )

        plane.apply([second])  # the first file system was deleted
        assert set(cluster.services()) == {"mount-cfs-bbbb0002"}
        assert not port_is_open(FIRST_PORT) and port_is_open(SECOND_PORT)


def test_start_reconciles_missing_orphaned_and_drifted_services_and_keeps_ports(cluster, tmp_path):
    first, second = spec(tmp_path, "cfs-aaaa0001", FIRST_IP), spec(tmp_path, "cfs-bbbb0002", SECOND_IP)
    # Left over from before a restart: a deleted file system's Service, a Service routing the
    # first file system to a wrong port, and a Service that is not ours at all.
    create_service(cluster, expected_service("cfs-gone0003", "10.96.0.131", 20003))
    create_service(cluster, expected_service("cfs-aaaa0001", FIRST_IP, 20099))
    create_service(cluster, foreign_service("web", "10.96.0.20"))
    with data_plane(cluster, tmp_path / "state") as plane:
        plane.apply([first, second])
        assert cluster.services() == {
            "mount-cfs-aaaa0001": expected_service("cfs-aaaa0001", FIRST_IP, FIRST_PORT),
            "mount-cfs-bbbb0002": expected_service("cfs-bbbb0002", SECOND_IP, SECOND_PORT),
            "web": foreign_service("web", "10.96.0.20"),
        }
        before = cluster.services()
    assert not port_is_open(FIRST_PORT)
    # A restart on the same state serves the same ports and leaves correct Services alone.
    with data_plane(cluster, tmp_path / "state") as plane:
        plane.apply([first, second])
        assert port_is_open(FIRST_PORT) and port_is_open(SECOND_PORT)
        assert cluster.services() == before
        assert nfs("nfs-ls", url(FIRST_PORT)).returncode == 0


def test_a_file_system_left_outside_a_moved_pool_does_not_stop_the_others(cluster, tmp_path):
    old = spec(tmp_path, "cfs-aaaa0001", FIRST_IP)
    with data_plane(cluster, tmp_path / "state") as plane:
        plane.apply([old])
    # The operator moved --mount-ip-pool; the new pool's first address maps to the old port.
    new = spec(tmp_path, "cfs-bbbb0002", "10.96.1.1")
    (new.data_dir / "only-in-new").write_text("new")
    with data_plane(cluster, tmp_path / "state", pool="10.96.1.0/25") as plane:
        with pytest.raises(
            DataPlaneError,
            match=r"cfs-aaaa0001 cannot be served: mount-target IP "
            r"10\.96\.0\.129 is outside --mount-ip-pool 10\.96\.1\.0/25",
        ):
            plane.apply([old, new])
        # the old Service would now route to the new file system's port: it is gone
        assert cluster.services() == {
            "mount-cfs-bbbb0002": expected_service("cfs-bbbb0002", "10.96.1.1", FIRST_PORT)
        }
        listing = nfs("nfs-ls", url(FIRST_PORT))
        assert listing.returncode == 0 and "only-in-new" in listing.stdout, listing.stderr


def test_a_refused_cluster_ip_is_reported_at_reservation(cluster, tmp_path):
    create_service(cluster, foreign_service("web", FIRST_IP))
    with data_plane(cluster, tmp_path / "state", pool="10.97.0.0/25") as plane:
        with pytest.raises(MountTargetRefused, match="provided IP is not in the valid range"):
            plane.reserve_mount_target("cfs-aaaa0001", "10.97.0.1")
    with data_plane(cluster, tmp_path / "state") as plane:
        with pytest.raises(MountTargetRefused) as refused:
            plane.reserve_mount_target("cfs-aaaa0001", FIRST_IP)
        assert str(refused.value).startswith(
            f"mount target {FIRST_IP} of cfs-aaaa0001: the API server refused "
            "Service mount-cfs-aaaa0001: Kubernetes API 422 Invalid:"
        )
        assert "provided IP is already allocated" in str(refused.value)
        assert set(cluster.services()) == {"web"}
        # Served later anyway (e.g. after a restart), the refusal is reported and the rest is served.
        second = spec(tmp_path, "cfs-bbbb0002", SECOND_IP)
        with pytest.raises(DataPlaneError, match="cfs-aaaa0001.*already allocated"):
            plane.apply([spec(tmp_path, "cfs-aaaa0001", FIRST_IP), second])
        assert set(cluster.services()) == {"web", "mount-cfs-bbbb0002"}
        assert port_is_open(FIRST_PORT) and port_is_open(SECOND_PORT)


def test_an_unreachable_api_server_is_not_a_refusal(cluster, tmp_path, monkeypatch):
    """The backend then lets the creation go on, and apply() creates the Service later."""
    closed_port = free_port()
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(closed_port))
    with data_plane(cluster, tmp_path / "state") as plane:
        with pytest.raises(DataPlaneError, match="Kubernetes API unreachable") as error:
            plane.reserve_mount_target("cfs-aaaa0001", FIRST_IP)
        assert not isinstance(error.value, MountTargetRefused)


def test_an_unreadable_token_is_not_a_refusal_and_later_calls_recover(cluster, tmp_path):
    token = cluster.service_account_dir / "token"
    with data_plane(cluster, tmp_path / "state") as plane:
        token.rename(tmp_path / "token-aside")  # e.g. the token volume is being remounted
        with pytest.raises(DataPlaneError, match="Kubernetes API unreachable NoToken") as error:
            plane.reserve_mount_target("cfs-aaaa0001", FIRST_IP)
        assert not isinstance(error.value, MountTargetRefused)
        (tmp_path / "token-aside").rename(token)
        plane.apply([spec(tmp_path, "cfs-aaaa0001", FIRST_IP)])
        assert set(cluster.services()) == {"mount-cfs-aaaa0001"}


def test_a_reserved_mount_target_survives_until_served_and_replaces_a_stale_service(cluster, tmp_path):
    # A deleted file system's Service still holds the IP the backend now hands to a new one.
    create_service(cluster, expected_service("cfs-gone0003", FIRST_IP, FIRST_PORT))
    other = spec(tmp_path, "cfs-bbbb0002", SECOND_IP)
    with data_plane(cluster, tmp_path / "state") as plane:
        plane.reserve_mount_target("cfs-cccc0004", FIRST_IP)
        assert cluster.services() == {
            "mount-cfs-cccc0004": expected_service("cfs-cccc0004", FIRST_IP, FIRST_PORT)
        }
        plane.apply([other])  # still creating: not served, but its Service stays
        assert set(cluster.services()) == {"mount-cfs-cccc0004", "mount-cfs-bbbb0002"}
        plane.apply([other, spec(tmp_path, "cfs-cccc0004", FIRST_IP)])
        assert port_is_open(FIRST_PORT)
        plane.apply([other])  # now served and then deleted: its Service goes
        assert set(cluster.services()) == {"mount-cfs-bbbb0002"}


# ---- the reference service in kubernetes mode, end to end ----


@contextmanager
def reference_in_cluster(cluster: KubeCluster, tmp_path: Path) -> Iterator[Any]:
    args = [
        "--mount-target-mode",
        "kubernetes",
        "--mount-ip-pool",
        POOL,
        "--nfs-port-range",
        PORTS,
        "--mount-target-selector",
        SELECTOR,
        "--service-account-dir",
        str(cluster.service_account_dir),
    ]
    with running_reference(tmp_path / "reference", create_delay=0.05, nfs="on", extra_args=args) as ref:
        yield ref


def create_file_system(client: Any, ref: Any, name: str) -> str:
    return call(
        client,
        "CreateCfsFileSystem",
        Zone=f"{ref.region}-1",
        NetInterface="VPC",
        PGroupId="pgroupbasic",
        Protocol="NFS",
        StorageType="SD",
        VpcId="vpc-test",
        SubnetId="subnet-test",
        FsName=name,
    )["FileSystemId"]


def life_cycle_state(client: Any, file_system_id: str) -> str:
    systems = call(client, "DescribeCfsFileSystems", FileSystemId=file_system_id)["FileSystems"]
    return systems[0]["LifeCycleState"]


def test_the_reference_service_serves_each_file_system_behind_its_service(cluster, tmp_path):
    with reference_in_cluster(cluster, tmp_path) as ref:
        client = sdk_client(ref)
        fs_id = create_file_system(client, ref, "first")
        wait_until(lambda: life_cycle_state(client, fs_id) == "available", "available")
        (target,) = call(client, "DescribeMountTargets", FileSystemId=fs_id)["MountTargets"]
        assert target["IpAddress"] == FIRST_IP
        assert cluster.services() == {f"mount-{fs_id}": expected_service(fs_id, FIRST_IP, FIRST_PORT)}
        wait_until(lambda: port_is_open(FIRST_PORT), "ganesha on the file system's port")
        source = tmp_path / "upload"
        source.write_text("through the Service's target port\n")
        written = nfs("nfs-cp", str(source), url(FIRST_PORT, "file.txt"))
        assert written.returncode == 0, written.stderr
        (state,) = [f for f in ref.admin.state()["FileSystems"] if f["FileSystemId"] == fs_id]
        assert (Path(state["DataDir"]) / "file.txt").read_text() == "through the Service's target port\n"

        # Killed, its Service deleted behind its back: the restart reconciles and serves again.
        ref.kill()
        cluster.api().request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/services/mount-{fs_id}")
        create_service(cluster, expected_service("cfs-gone0003", "10.96.0.140", 20012))
        ref.restart()
        wait_until(lambda: set(cluster.services()) == {f"mount-{fs_id}"}, "reconciled Services")
        assert cluster.services()[f"mount-{fs_id}"] == expected_service(fs_id, FIRST_IP, FIRST_PORT)
        wait_until(lambda: nfs("nfs-ls", url(FIRST_PORT)).returncode == 0, "served again on the same port")

        call(client, "DeleteCfsFileSystem", FileSystemId=fs_id)
        wait_until(lambda: not cluster.services(), "Service deleted with the file system")
        wait_until(lambda: not port_is_open(FIRST_PORT), "listener closed")


def test_a_refused_cluster_ip_ends_the_creation_in_create_failed(cluster, tmp_path):
    create_service(cluster, foreign_service("web", FIRST_IP))
    with reference_in_cluster(cluster, tmp_path) as ref:
        client = sdk_client(ref)
        refused = create_file_system(client, ref, "refused")
        wait_until(lambda: life_cycle_state(client, refused) == "create_failed", "create_failed")
        assert "provided IP is already allocated" in ref.log_text()
        served = create_file_system(client, ref, "served")  # the next address works
        wait_until(lambda: life_cycle_state(client, served) == "available", "available")
        assert set(cluster.services()) == {"web", f"mount-{served}"}


@pytest.mark.parametrize("extra, env, message", [
    (["--nfs-port-range", "20000-20063"], {}, "--nfs-port-range 20000-20063 holds 64 ports"),
    (["--nfs-port-range", PORTS, "--nfs-v3"], {}, "--nfs-v3 needs the local mount-target mode"),
    (
        ["--nfs-port-range", PORTS],
        {"KUBERNETES_SERVICE_HOST": ""},
        "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT",
    ),
], ids=["range-too-small", "nfsv3", "outside-a-pod"])  # fmt: skip
def test_the_service_refuses_to_start_with_a_message_not_a_traceback(tmp_path, extra, env, message):
    argv = [
        "--credential",
        "id:key",
        "--state-dir",
        str(tmp_path),
        "--nfs",
        "on",
        "--mount-target-mode",
        "kubernetes",
        "--mount-ip-pool",
        POOL,
        "--mount-target-selector",
        SELECTOR,
        *extra,
    ]
    result = subprocess.run(
        [sys.executable, "-m", "cfs_reference", *argv],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        env=dict(os.environ, **env),
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
