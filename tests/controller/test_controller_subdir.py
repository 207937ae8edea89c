"""Subdir mode over real gRPC: volumes are directories of a shared file system of the reference
service. The controller reaches the share through `LocalShareAccess` over the reference's data
directories - the one replaced boundary, because this machine has no NFS client to mount it."""

import os
from pathlib import Path

import grpc
import pytest

from cfs_csi.controller.servicer import locate_share
from cfs_csi.controller.subdir import LocalShareAccess, MountedShareAccess
from cfs_csi.csipb import csi_pb2
from cfs_csi.node.mounter import Mounter, nfs_mount_command
from tests.support.csi import (
    GIB,
    MOUNT_CAPABILITY,
    ZONE,
    create_request,
    file_systems,
    rpc_error,
    serving_controller,
)

PVC_META = {"csi.storage.k8s.io/pvc/namespace": "team-a", "csi.storage.k8s.io/pvc/name": "data"}


@pytest.fixture
def share(reference, cloud_client):
    """An available shared file system; returns (FileSystemId, its data directory)."""
    reply = cloud_client.call(
        "CreateCfsFileSystem",
        {"Zone": ZONE, "NetInterface": "BASIC", "PGroupId": "pgroupbasic", "FsName": "shared"},
    )
    fs_id = reply["FileSystemId"]
    info = cloud_client.wait_file_system_available(fs_id, timeout=30)
    data = next(fs["DataDir"] for fs in file_systems(reference) if fs["FileSystemId"] == fs_id)
    return fs_id, Path(data), info


@pytest.fixture
def controller(tmp_path, reference, share):
    with serving_controller(tmp_path, reference, share_access=LocalShareAccess(share[1].parent)) as running:
        yield running


def subdir_params(fs_id: str, **extra) -> dict:
    return {"provisioningMode": "subdir", "fileSystemId": fs_id, **extra}


def test_create_delete_with_template_mode_and_owner(controller, share):
    fs_id, root, info = share
    parameters = subdir_params(
        fs_id,
        subDir="${pvc.metadata.namespace}/${pvc.metadata.name}",
        mountPermissions="0750",
        uid="1234",
        gid="2345",
        **PVC_META,
    )
    volume = controller.create("pvc-1", parameters, gib=2)
    assert volume.volume_id == f"subdir:{fs_id}:team-a/data"
    directory = root / "team-a" / "data"
    status = directory.stat()
    assert directory.is_dir() and oct(status.st_mode & 0o7777) == "0o750"
    assert (status.st_uid, status.st_gid) == (1234, 2345)
    context = dict(volume.volume_context)
    assert context["server"] == info["IpAddress"] and context["path"] == "team-a/data"
    assert context["fsid"] and context["fileSystemId"] == fs_id and context["vers"] == "4"
    assert volume.capacity_bytes == 2 * GIB
    # Idempotent.
    assert controller.create("pvc-1", parameters, gib=2).volume_id == volume.volume_id

    (directory / "file").write_text("payload")
    controller.delete(volume.volume_id)
    assert not directory.exists() and (root / "team-a").is_dir()  # the parent stays
    controller.delete(volume.volume_id)


def test_archive_and_retain(controller, share):
    fs_id, root, _ = share
    archived = controller.create("pvc-arch", subdir_params(fs_id, onDelete="archive"))
    assert archived.volume_id == f"subdir:{fs_id}:pvc-arch:archive"
    (root / "pvc-arch" / "keep.txt").write_text("kept")
    controller.delete(archived.volume_id)
    assert not (root / "pvc-arch").exists()
    assert (root / "archived-pvc-arch" / "keep.txt").read_text() == "kept"
    controller.delete(archived.volume_id)  # idempotent
    # Archiving the same name again does not overwrite the first archive.
    again = controller.create("pvc-arch", subdir_params(fs_id, onDelete="archive"))
    controller.delete(again.volume_id)
    assert (root / "archived-pvc-arch-2").is_dir()

    retained = controller.create("pvc-ret", subdir_params(fs_id, onDelete="retain"))
    controller.delete(retained.volume_id)
    assert (root / "pvc-ret").is_dir()


def test_static_server_fsid_share(controller, share):
    _, root, _ = share
    static_root = root.parent / "10.0.0.7_z3r6k95r"  # LocalShareAccess: <server>_<fsid>
    static_root.mkdir()
    volume = controller.create(
        "pvc-static", {"provisioningMode": "subdir", "server": "10.0.0.7", "fsid": "z3r6k95r", "vers": "3"}
    )
    assert volume.volume_id == "subdir:10.0.0.7/z3r6k95r:pvc-static"
    assert dict(volume.volume_context) == {
        "server": "10.0.0.7",
        "fsid": "z3r6k95r",
        "vers": "3",
        "path": "pvc-static",
    }
    assert (static_root / "pvc-static").is_dir()
    controller.delete(volume.volume_id)
    assert not (static_root / "pvc-static").exists()


def test_expand_records_size_and_get_volume_reports_it(controller, share):
    fs_id, root, _ = share
    volume = controller.create("pvc-exp", subdir_params(fs_id), gib=1)
    reply = controller.stub.ControllerExpandVolume(
        csi_pb2.ControllerExpandVolumeRequest(
            volume_id=volume.volume_id, capacity_range=csi_pb2.CapacityRange(required_bytes=3 * GIB)
        )
    )
    assert reply.capacity_bytes == 3 * GIB and not reply.node_expansion_required
    got = controller.stub.ControllerGetVolume(csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id))
    assert got.volume.capacity_bytes == 3 * GIB and not got.status.volume_condition.abnormal
    # Like a file system's limit, the recorded size never shrinks.
    reply = controller.stub.ControllerExpandVolume(
        csi_pb2.ControllerExpandVolumeRequest(
            volume_id=volume.volume_id, capacity_range=csi_pb2.CapacityRange(required_bytes=2 * GIB)
        )
    )
    assert reply.capacity_bytes == 3 * GIB
    got = controller.stub.ControllerGetVolume(csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id))
    assert got.volume.capacity_bytes == 3 * GIB
    controller.delete(volume.volume_id)
    err = rpc_error(
        controller.stub.ControllerGetVolume, csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id)
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_validate_checks_mode_and_context_of_a_subdir_volume(controller, share):
    fs_id, _, _ = share
    parameters = subdir_params(fs_id)
    volume = controller.create("pvc-val", parameters)

    def validate(**fields):
        return controller.stub.ValidateVolumeCapabilities(
            csi_pb2.ValidateVolumeCapabilitiesRequest(
                volume_id=volume.volume_id, volume_capabilities=[MOUNT_CAPABILITY], **fields
            )
        )

    confirmed = validate(parameters=parameters, volume_context=volume.volume_context).confirmed
    assert dict(confirmed.parameters) == parameters
    for fields, fragment in [
        ({"parameters": {"storageType": "SD"}}, "provisioningMode=filesystem does not match"),
        ({"volume_context": {**volume.volume_context, "path": "other"}}, "path='other' does not belong"),
    ]:
        reply = validate(**fields)
        assert not reply.HasField("confirmed") and fragment in reply.message


@pytest.mark.parametrize(
    "name,parameters,fragment",
    [
        ("pvc-t1", {"subDir": "../../etc"}, "not a safe relative path"),
        ("pvc-t2", {"subDir": "/etc"}, "not a safe relative path"),
        (
            "pvc-t3",
            {"subDir": "${pvc.metadata.name}", "csi.storage.k8s.io/pvc/name": ".."},
            "not a safe relative path",
        ),
        (
            "pvc-t4",
            {"subDir": "x/${pvc.metadata.namespace}", "csi.storage.k8s.io/pvc/namespace": "../../../tmp"},
            "not a safe relative path",
        ),
        ("..", {}, "not a safe relative path"),
        ("pvc-t5", {"subDir": "${env.HOME}"}, "unknown variable"),
        ("pvc-t6", {"zone": ZONE}, "unknown parameter 'zone'"),
    ],
)
def test_traversal_and_bad_parameters_rejected(controller, share, name, parameters, fragment):
    fs_id, root, _ = share
    before = sorted(p.name for p in root.parent.iterdir())
    err = rpc_error(controller.stub.CreateVolume, create_request(name, subdir_params(fs_id, **parameters)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in err.details()
    assert sorted(p.name for p in root.parent.iterdir()) == before
    assert list(root.iterdir()) == []


def test_symlink_inside_share_is_not_followed(controller, share, tmp_path):
    fs_id, root, _ = share
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("must survive")
    os.symlink(outside, root / "team-b")
    parameters = subdir_params(
        fs_id, subDir="${pvc.metadata.namespace}/vol", **{"csi.storage.k8s.io/pvc/namespace": "team-b"}
    )
    err = rpc_error(controller.stub.CreateVolume, create_request("pvc-link", parameters))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "symlink" in err.details()
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]
    # A delete through the same link does not touch the target either.
    os.symlink(outside, root / "pvc-evil")
    err = rpc_error(
        controller.stub.DeleteVolume, csi_pb2.DeleteVolumeRequest(volume_id=f"subdir:{fs_id}:pvc-evil")
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (outside / "precious").read_text() == "must survive"


def test_subdir_cannot_be_snapshotted_or_restored(controller, share):
    fs_id, _, _ = share
    volume = controller.create("pvc-nosnap", subdir_params(fs_id))
    err = rpc_error(
        controller.stub.CreateSnapshot,
        csi_pb2.CreateSnapshotRequest(name="s", source_volume_id=volume.volume_id),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = rpc_error(
        controller.stub.CreateVolume,
        create_request(
            "pvc-from",
            subdir_params(fs_id),
            volume_content_source=csi_pb2.VolumeContentSource(
                volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=volume.volume_id)
            ),
        ),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


class BindingMounter(Mounter):
    """Replaces only the `mount -t nfs` step (no NFS client on this kernel): the exact command
    is recorded and the share's data directory is bind-mounted in its place. Unmounting and the
    mount table are real."""

    def __init__(self, exports: dict[str, Path]):
        super().__init__(timeout=10)
        self.exports = exports
        self.commands: list[list[str]] = []

    def mount_nfs(self, server, export_path, target, options):
        os.makedirs(target, exist_ok=True)
        self.commands.append(nfs_mount_command(server, export_path, target, options))
        self.run(["mount", "--bind", str(self.exports[f"{server}:{export_path}"]), target])


def test_production_share_access_mounts_the_share_for_each_operation(
    tmp_path, reference, share, cloud_client
):
    fs_id, root, info = share
    mounter = BindingMounter({f"{info['IpAddress']}:/": root})
    mount_root = tmp_path / "shares"
    access = MountedShareAccess(mounter, mount_root, locate=lambda s: locate_share(cloud_client, s))
    try:
        with serving_controller(tmp_path / "mounted", reference, share_access=access) as controller:
            volume = controller.create("pvc-mounted", subdir_params(fs_id))
            assert (root / "pvc-mounted").is_dir()
            controller.delete(volume.volume_id)
            assert not (root / "pvc-mounted").exists()
    finally:
        for target in mount_root.glob("*"):
            mounter.unmount(str(target))
    assert len(mounter.commands) == 2  # one mount per operation
    for command in mounter.commands:
        assert command == [
            "mount",
            "-t",
            "nfs",
            "-o",
            "vers=4.0,noresvport,hard,timeo=600,retrans=2",
            f"{info['IpAddress']}:/",
            command[-1],
        ]
        assert command[-1].startswith(f"{mount_root}/")
        assert mounter.find_mount(command[-1]) is None  # unmounted after each
    assert list(mount_root.iterdir()) == []
