"""Run the real CSI controller for tests, against a running reference service.

- `serving_controller(...)`: the real `CsiServer` (server.py) with the controller built by
  `build_controller`, in this process, on a unix socket; clients are real gRPC stubs. Subdir
  tests pass a `share_access` over the reference service's data directories (this machine has
  no NFS client to mount a share, so that one boundary is local).
- `driver_process(...)`: the `cfs-csi-driver` program (`python -m cfs_csi --mode controller`)
  as a child process that a test can kill -9 and restart (crash tests).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from cfs_cloud import CfsClient
from cfs_csi.config import MODE_CONTROLLER, DriverConfig, Endpoint
from cfs_csi.controller.servicer import ControllerServicer, build_controller
from cfs_csi.controller.subdir import ShareAccess
from cfs_csi.csipb import csi_pb2, csi_pb2_grpc
from cfs_csi.identity import CachedReadiness, IdentityServicer
from cfs_csi.server import CsiServer, Service
from tests.support.cloud import cloud_config

ZONE = "ap-shanghai-fsi-1"
ALLOWED_CLIENTS = ("127.0.0.0/8",)
GIB = 1 << 30
STARTUP_TIMEOUT = 20.0

MOUNT_CAPABILITY = csi_pb2.VolumeCapability(
    mount=csi_pb2.VolumeCapability.MountVolume(),
    access_mode=csi_pb2.VolumeCapability.AccessMode(
        mode=csi_pb2.VolumeCapability.AccessMode.MULTI_NODE_MULTI_WRITER
    ),
)
READ_ONLY_CAPABILITY = csi_pb2.VolumeCapability(
    mount=csi_pb2.VolumeCapability.MountVolume(),
    access_mode=csi_pb2.VolumeCapability.AccessMode(
        mode=csi_pb2.VolumeCapability.AccessMode.MULTI_NODE_READER_ONLY
    ),
)


def create_request(
    name: str, parameters: dict | None = None, gib: int = 1, **fields
) -> csi_pb2.CreateVolumeRequest:
    """A CreateVolumeRequest for a MULTI_NODE_MULTI_WRITER mount unless `fields` say otherwise."""
    fields.setdefault("volume_capabilities", [MOUNT_CAPABILITY])
    return csi_pb2.CreateVolumeRequest(
        name=name,
        parameters=parameters or {},
        capacity_range=csi_pb2.CapacityRange(required_bytes=gib * GIB),
        **fields,
    )


@dataclass
class Controller:
    """Stubs for a running controller plus, in-process, the servicer itself."""

    address: str
    channel: grpc.Channel = field(init=False)
    stub: csi_pb2_grpc.ControllerStub = field(init=False)
    identity: csi_pb2_grpc.IdentityStub = field(init=False)
    servicer: ControllerServicer | None = None

    def __post_init__(self):
        self.connect()

    def connect(self) -> None:
        self.channel = grpc.insecure_channel(self.address)
        self.stub = csi_pb2_grpc.ControllerStub(self.channel)
        self.identity = csi_pb2_grpc.IdentityStub(self.channel)

    def create(self, name: str, parameters: dict | None = None, gib: int = 1, **fields):
        return self.stub.CreateVolume(create_request(name, parameters, gib, **fields)).volume

    def delete(self, volume_id: str) -> None:
        self.stub.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume_id))


def snapshot_request(name: str, source: str, **fields) -> csi_pb2.CreateSnapshotRequest:
    return csi_pb2.CreateSnapshotRequest(name=name, source_volume_id=source, **fields)


def wait_ready(controller: Controller, name: str, source: str, timeout: float = 10.0) -> csi_pb2.Snapshot:
    """What external-snapshotter does: call CreateSnapshot again until ready_to_use."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot = controller.stub.CreateSnapshot(snapshot_request(name, source)).snapshot
        if snapshot.ready_to_use or time.monotonic() > deadline:
            return snapshot
        time.sleep(0.05)


def rpc_error(call, request) -> grpc.RpcError:
    """The error a gRPC call must fail with."""
    with pytest.raises(grpc.RpcError) as err:
        call(request)
    return err.value


def file_systems(ref) -> list[dict]:
    """FileSystemInfo (+ MountInfo, DataDir) of every file system of the reference service."""
    return ref.admin.state()["FileSystems"]


def data_dir(ref, file_system_id: str) -> Path:
    """The directory the reference service keeps a file system's data in."""
    return Path(next(fs["DataDir"] for fs in file_systems(ref) if fs["FileSystemId"] == file_system_id))


def fs_of(ref, volume_id: str) -> dict:
    """The reference's record of a filesystem-mode volume."""
    fs_id = volume_id.split(":")[1]
    return next(fs for fs in file_systems(ref) if fs["FileSystemId"] == fs_id)


def managed_groups(ref) -> list[dict]:
    return [g for g in ref.admin.state()["PGroups"] if g["Name"].startswith("cfs-csi-")]


def driver_config(socket_path: Path, create_timeout: float = 30.0) -> DriverConfig:
    return DriverConfig(
        mode=MODE_CONTROLLER,
        endpoint=Endpoint("unix", path=str(socket_path)),
        zone=ZONE,
        default_allowed_clients=ALLOWED_CLIENTS,
        create_timeout=create_timeout,
    )


@contextmanager
def serving_controller(
    tmp_path: Path,
    ref,
    *,
    share_access: ShareAccess | None = None,
    create_timeout: float = 30.0,
    workers: int = 32,
    **cloud_overrides,
) -> Iterator[Controller]:
    config = driver_config(tmp_path / "controller.sock", create_timeout)
    servicer = build_controller(
        config, client=CfsClient(cloud_config(ref, **cloud_overrides)), share_access=share_access
    )
    identity = IdentityServicer(
        config.driver_name,
        controller=True,
        topology=True,
        readiness=CachedReadiness(servicer.readiness_check),
    )
    server = CsiServer(
        config.endpoint,
        [
            Service(servicer, csi_pb2_grpc.add_ControllerServicer_to_server),
            Service(identity, csi_pb2_grpc.add_IdentityServicer_to_server),
        ],
        workers=workers,
    )
    controller = Controller(server.address, servicer=servicer)
    try:
        yield controller
    finally:
        controller.channel.close()
        server.stop(0)


class DriverProcess:
    """`python -m cfs_csi --mode controller` as a child; kill() is kill -9, start() restarts."""

    def __init__(self, tmp_path: Path, ref, create_timeout: float, log_level: str = "DEBUG"):
        self.socket_path = tmp_path / "driver.sock"
        self.log_path = tmp_path / "driver.log"
        self.argv = [
            sys.executable,
            "-m",
            "cfs_csi",
            "--mode",
            MODE_CONTROLLER,
            "--endpoint",
            f"unix://{self.socket_path}",
            "--zone",
            ZONE,
            "--default-allowed-clients",
            ",".join(ALLOWED_CLIENTS),
            "--create-timeout",
            str(create_timeout),
            "--log-level",
            log_level,
        ]
        self.env = {
            **os.environ,
            "CFS_ENDPOINT": ref.url,
            "TENCENTCLOUD_REGION": ref.region,
            "TENCENTCLOUD_SECRET_ID": ref.secret_id,
            "TENCENTCLOUD_SECRET_KEY": ref.secret_key,
        }
        self.process: subprocess.Popen | None = None
        self.controller: Controller | None = None

    def start(self) -> Controller:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        controller = Controller(f"unix://{self.socket_path}")
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"driver exited with {self.process.returncode}: {self.log_path.read_text()[-2000:]}"
                )
            try:
                controller.identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=1)
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.controller = controller
        return controller

    def kill(self) -> None:
        if self.controller:
            self.controller.channel.close()
            self.controller = None
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def driver_process(tmp_path: Path, ref, create_timeout: float = 30.0) -> Iterator[DriverProcess]:
    driver = DriverProcess(tmp_path, ref, create_timeout)
    try:
        driver.start()
        yield driver
    finally:
        driver.kill()
