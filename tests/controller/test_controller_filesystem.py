"""Filesystem mode over real gRPC against the reference CFS service: every volume RPC's happy
path, idempotency and each missing / invalid field with its exact status code."""

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from cfs_csi.csipb import csi_pb2
from tests.support.csi import (
    GIB,
    MOUNT_CAPABILITY,
    READ_ONLY_CAPABILITY,
    ZONE,
    create_request,
    file_systems,
    fs_of,
    managed_groups,
    rpc_error,
    serving_controller,
)

TOPOLOGY_KEY = "topology.cfs.csi.tencentcloud.com/zone"


@pytest.fixture
def controller(tmp_path, reference):
    with serving_controller(tmp_path, reference) as running:
        yield running


def test_capabilities(controller):
    reply = controller.stub.ControllerGetCapabilities(csi_pb2.ControllerGetCapabilitiesRequest())
    kinds = {cap.rpc.type for cap in reply.capabilities}
    rpc = csi_pb2.ControllerServiceCapability.RPC
    assert kinds == {
        rpc.CREATE_DELETE_VOLUME,
        rpc.CREATE_DELETE_SNAPSHOT,
        rpc.LIST_SNAPSHOTS,
        rpc.GET_SNAPSHOT,
        rpc.CLONE_VOLUME,
        rpc.EXPAND_VOLUME,
        rpc.LIST_VOLUMES,
        rpc.GET_VOLUME,
        rpc.VOLUME_CONDITION,
    }
    probe = controller.identity.Probe(csi_pb2.ProbeRequest())
    assert probe.ready.value is True


def test_create_is_idempotent_and_reports_context(controller, reference):
    volume = controller.create("pvc-0001", {"resourceTags": "team:storage"}, gib=3)
    assert volume.volume_id.startswith("fs:cfs-")
    assert volume.capacity_bytes == 3 * GIB
    assert list(volume.accessible_topology) == [csi_pb2.Topology(segments={TOPOLOGY_KEY: ZONE})]
    fs = fs_of(reference, volume.volume_id)
    assert fs["LifeCycleState"] == "available"
    assert fs["SizeLimit"] == 3
    assert fs["FsName"] == "cfs-csi-pvc-0001"
    assert fs["Zone"] == ZONE
    context = dict(volume.volume_context)
    assert context == {
        "server": fs["IpAddress"],
        "vers": "4",
        "path": "/",
        "fileSystemId": fs["FileSystemId"],
    }

    again = controller.create("pvc-0001", {"resourceTags": "team:storage"}, gib=3)
    assert again.volume_id == volume.volume_id
    assert len(file_systems(reference)) == 1


def test_nfs_v3_context_carries_fsid(controller, reference):
    volume = controller.create("pvc-v3", {"vers": "3", "mountOptions": "noac"})
    fs = fs_of(reference, volume.volume_id)
    context = dict(volume.volume_context)
    assert context["vers"] == "3" and context["fsid"] and context["server"] == fs["IpAddress"]
    assert context["mountOptions"] == "noac"


def test_capacity_rounds_up_to_whole_gb(controller, reference):
    volume = controller.stub.CreateVolume(
        csi_pb2.CreateVolumeRequest(
            name="pvc-round",
            volume_capabilities=[MOUNT_CAPABILITY],
            capacity_range=csi_pb2.CapacityRange(required_bytes=GIB + 1),
        )
    ).volume
    assert volume.capacity_bytes == 2 * GIB
    assert fs_of(reference, volume.volume_id)["SizeLimit"] == 2


def test_same_name_incompatible_request_is_already_exists(controller, reference):
    controller.create("pvc-conflict", gib=1)
    err = rpc_error(controller.stub.CreateVolume, create_request("pvc-conflict", gib=5))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "size 1 GB (asked 5 GB)" in err.details()
    err = rpc_error(
        controller.stub.CreateVolume, create_request("pvc-conflict", {"storageType": "HP"}, gib=1)
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "storageType SD (asked HP)" in err.details()
    err = rpc_error(
        controller.stub.CreateVolume,
        create_request("pvc-conflict", {"vpcId": "vpc-1a2b3c4d", "subnetId": "subnet-1a2b3c4d"}, gib=1),
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "VPC none (BASIC) (asked vpc-1a2b3c4d)" in err.details()
    assert len(file_systems(reference)) == 1


BLOCK = csi_pb2.VolumeCapability(
    block=csi_pb2.VolumeCapability.BlockVolume(),
    access_mode=csi_pb2.VolumeCapability.AccessMode(
        mode=csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
    ),
)
NO_MODE = csi_pb2.VolumeCapability(mount=csi_pb2.VolumeCapability.MountVolume())
EXT4 = csi_pb2.VolumeCapability(
    mount=csi_pb2.VolumeCapability.MountVolume(fs_type="ext4"), access_mode=MOUNT_CAPABILITY.access_mode
)
BAD_FLAG = csi_pb2.VolumeCapability(
    mount=csi_pb2.VolumeCapability.MountVolume(mount_flags=["rw,exec=/bin/sh"]),
    access_mode=MOUNT_CAPABILITY.access_mode,
)


@pytest.mark.parametrize(
    "request_fields,code,fragment",
    [
        ({"name": ""}, "INVALID_ARGUMENT", "name missing in request"),
        ({"volume_capabilities": []}, "INVALID_ARGUMENT", "volume_capabilities missing"),
        ({"volume_capabilities": [BLOCK]}, "INVALID_ARGUMENT", "block access is not supported"),
        ({"volume_capabilities": [NO_MODE]}, "INVALID_ARGUMENT", "access_mode missing"),
        ({"volume_capabilities": [EXT4]}, "INVALID_ARGUMENT", "fs_type 'ext4' is not supported"),
        ({"volume_capabilities": [BAD_FLAG]}, "INVALID_ARGUMENT", "mount option 'exec' is not allowed"),
        ({"parameters": {"storagetype": "SD"}}, "INVALID_ARGUMENT", "unknown parameter 'storagetype'"),
        ({"parameters": {"storageType": "XL"}}, "INVALID_ARGUMENT", "allowed values: SD, HP"),
        (
            {"parameters": {"provisioningMode": "dirs"}},
            "INVALID_ARGUMENT",
            "allowed values: filesystem, subdir",
        ),
        ({"parameters": {"vpcId": "vpc-1"}}, "INVALID_ARGUMENT", "vpcId and subnetId"),
        ({"parameters": {"mountOptions": "nosuchopt"}}, "INVALID_ARGUMENT", "nosuchopt"),
        (
            {"capacity_range": csi_pb2.CapacityRange(required_bytes=2 * GIB, limit_bytes=GIB)},
            "OUT_OF_RANGE",
            "exceeds limit_bytes",
        ),
        ({"capacity_range": csi_pb2.CapacityRange(limit_bytes=GIB // 2)}, "OUT_OF_RANGE", "no whole-GB size"),
        (
            {"capacity_range": csi_pb2.CapacityRange(required_bytes=(1073741824 + 1) * GIB)},
            "OUT_OF_RANGE",
            "exceeds the CFS maximum",
        ),
        ({"secrets": {"secretId": "only-id"}}, "INVALID_ARGUMENT", "give both secretId and secretKey"),
        ({"mutable_parameters": {"storageType": "HP"}}, "INVALID_ARGUMENT", "no MODIFY_VOLUME capability"),
        (
            {"parameters": {"rwPermission": "RO"}},
            "INVALID_ARGUMENT",
            "rwPermission=RO cannot serve access mode MULTI_NODE_MULTI_WRITER",
        ),
        (
            {
                "volume_content_source": csi_pb2.VolumeContentSource(
                    snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id="cfssnap-nothere")
                )
            },
            "NOT_FOUND",
            "source snapshot cfssnap-nothere not found",
        ),
        (
            {
                "volume_content_source": csi_pb2.VolumeContentSource(
                    volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id="fs:cfs-nothere")
                )
            },
            "NOT_FOUND",
            "cfs-nothere does not exist",
        ),
    ],
)
def test_create_rejects_bad_requests(controller, reference, request_fields, code, fragment):
    request = create_request("pvc-bad")
    for name, value in request_fields.items():
        request.ClearField(name)
        if isinstance(value, list):
            getattr(request, name).extend(value)
        elif isinstance(value, dict):
            getattr(request, name).update(value)
        elif isinstance(value, str):
            setattr(request, name, value)
        else:
            getattr(request, name).CopyFrom(value)
    err = rpc_error(controller.stub.CreateVolume, request)
    assert err.code() == getattr(grpc.StatusCode, code)
    assert fragment in err.details()
    assert file_systems(reference) == []


def test_zone_comes_from_topology_requirement(controller, reference):
    zone = "ap-shanghai-fsi-2"
    requirement = csi_pb2.TopologyRequirement(preferred=[csi_pb2.Topology(segments={TOPOLOGY_KEY: zone})])
    volume = controller.create("pvc-zone", accessibility_requirements=requirement)
    assert fs_of(reference, volume.volume_id)["Zone"] == zone
    assert volume.accessible_topology[0].segments[TOPOLOGY_KEY] == zone


def test_cloud_rejection_carries_code_and_request_id(controller, reference):
    err = rpc_error(controller.stub.CreateVolume, create_request("pvc-badzone", {"zone": "mars-1"}))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "InvalidParameterValue" in err.details() and "RequestId" in err.details()


def test_request_secrets_override_and_never_leak(controller, reference):
    secret_key = "not-the-key-" + "x" * 20
    err = rpc_error(
        controller.stub.CreateVolume,
        create_request("pvc-secret", secrets={"secretId": reference.secret_id, "secretKey": secret_key}),
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "AuthFailure" in err.details() and secret_key not in err.details()
    volume = controller.create(
        "pvc-secret", secrets={"secretId": reference.secret_id, "secretKey": reference.secret_key}
    )
    assert volume.volume_id.startswith("fs:")


def test_delete_is_idempotent_and_removes_the_file_system(controller, reference):
    volume = controller.create("pvc-del")
    controller.delete(volume.volume_id)
    assert file_systems(reference) == []
    controller.delete(volume.volume_id)  # already gone: still success
    controller.delete("not-a-volume-id")  # not ours: success
    controller.delete("fs:cfs-00000000")  # unknown file system: success
    err = rpc_error(controller.stub.DeleteVolume, csi_pb2.DeleteVolumeRequest())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "volume_id missing in request"


def test_on_delete_retain_keeps_and_marks_released(controller, reference):
    volume = controller.create("pvc-keep", {"onDelete": "retain"})
    assert volume.volume_id.endswith(":retain")
    controller.delete(volume.volume_id)
    controller.delete(volume.volume_id)
    (fs,) = file_systems(reference)
    assert fs["FsName"] == "released-cfs-csi-pvc-keep"
    # A new CreateVolume with the old name never adopts a released file system.
    again = controller.create("pvc-keep", {"onDelete": "retain"})
    assert again.volume_id != volume.volume_id


def test_managed_group_created_once_and_removed_with_last_volume(controller, reference):
    rules = {"allowedClients": "10.8.0.0/16,10.9.0.1", "rwPermission": "RO", "userPermission": "root_squash"}
    # A read-only rule set serves reader-only access modes.
    first = controller.create("pvc-g1", rules, volume_capabilities=[READ_ONLY_CAPABILITY])
    second = controller.create("pvc-g2", rules, volume_capabilities=[READ_ONLY_CAPABILITY])
    managed = managed_groups(reference)
    assert len(managed) == 1
    group = managed[0]
    assert {fs_of(reference, v.volume_id)["PGroup"]["PGroupId"] for v in (first, second)} == {
        group["PGroupId"]
    }
    rules_state = sorted(
        (r["AuthClientIp"], r["RWPermission"], r["UserPermission"], r["Priority"])
        for r in reference.admin.state()["Rules"]
        if r["PGroupId"] == group["PGroupId"]
    )
    assert rules_state == [("10.8.0.0/16", "RO", "root_squash", 1), ("10.9.0.1", "RO", "root_squash", 2)]
    calls = reference.admin.calls()
    assert calls["CreateCfsPGroup"]["count"] == 1
    controller.delete(first.volume_id)
    assert any(g["PGroupId"] == group["PGroupId"] for g in reference.admin.state()["PGroups"])
    controller.delete(second.volume_id)
    assert not any(g["PGroupId"] == group["PGroupId"] for g in reference.admin.state()["PGroups"])
    # The group comes back for the next volume of the class.
    third = controller.create("pvc-g3", rules, volume_capabilities=[READ_ONLY_CAPABILITY])
    assert fs_of(reference, third.volume_id)["PGroup"]["Name"] == group["Name"]


def test_concurrent_first_volumes_of_a_class_ensure_its_group_once(controller, reference):
    rules = {"allowedClients": "10.40.0.0/16,10.41.0.1,10.42.0.0/24"}
    with ThreadPoolExecutor(20) as pool:
        volumes = list(pool.map(lambda i: controller.create(f"pvc-batch-{i}", rules), range(20)))
    (group,) = managed_groups(reference)
    assert {fs_of(reference, v.volume_id)["PGroup"]["PGroupId"] for v in volumes} == {group["PGroupId"]}
    calls = reference.admin.calls()
    assert calls["CreateCfsPGroup"]["count"] == 1
    assert [code for _, code in calls["CreateCfsRule"]["calls"]] == ["OK"] * 3  # no DuplicatedRule races
    assert calls["DescribeCfsPGroups"]["count"] == 1


def test_group_deleted_by_another_controller_is_ensured_again(tmp_path, controller, reference):
    rules = {"allowedClients": "10.30.0.0/16"}
    first = controller.create("pvc-s1", rules)  # this controller now remembers the group
    with serving_controller(tmp_path / "other", reference) as other:
        other.delete(first.volume_id)  # ... which the other one deletes
    assert managed_groups(reference) == []
    second = controller.create("pvc-s2", rules)
    (group,) = managed_groups(reference)
    assert fs_of(reference, second.volume_id)["PGroup"]["PGroupId"] == group["PGroupId"]
    assert [code for _, code in reference.admin.calls()["CreateCfsFileSystem"]["calls"]] == [
        "OK",
        "ResourceNotFound.PgroupNotFound",
        "OK",
    ]


def test_explicit_pgroup_is_used_and_kept(controller, reference, cloud_client):
    group_id = cloud_client.call("CreateCfsPGroup", {"Name": "team-group"})["PGroupId"]
    volume = controller.create("pvc-own-group", {"pGroupId": group_id})
    assert fs_of(reference, volume.volume_id)["PGroup"]["PGroupId"] == group_id
    controller.delete(volume.volume_id)
    assert any(g["PGroupId"] == group_id for g in reference.admin.state()["PGroups"])
    err = rpc_error(controller.stub.CreateVolume, create_request("pvc-x", {"pGroupId": "pgroup-nothere"}))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "ResourceNotFound.PgroupNotFound" in err.details()


def test_expand(controller, reference):
    volume = controller.create("pvc-grow", gib=1)
    reply = controller.stub.ControllerExpandVolume(
        csi_pb2.ControllerExpandVolumeRequest(
            volume_id=volume.volume_id, capacity_range=csi_pb2.CapacityRange(required_bytes=5 * GIB)
        )
    )
    assert reply.capacity_bytes == 5 * GIB and reply.node_expansion_required is False
    assert fs_of(reference, volume.volume_id)["SizeLimit"] == 5
    # Idempotent, and never shrinks.
    reply = controller.stub.ControllerExpandVolume(
        csi_pb2.ControllerExpandVolumeRequest(
            volume_id=volume.volume_id, capacity_range=csi_pb2.CapacityRange(required_bytes=2 * GIB)
        )
    )
    assert reply.capacity_bytes == 5 * GIB
    for request, code in [
        (
            csi_pb2.ControllerExpandVolumeRequest(capacity_range=csi_pb2.CapacityRange(required_bytes=GIB)),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (csi_pb2.ControllerExpandVolumeRequest(volume_id=volume.volume_id), grpc.StatusCode.INVALID_ARGUMENT),
        (
            csi_pb2.ControllerExpandVolumeRequest(
                volume_id="fs:cfs-nothere", capacity_range=csi_pb2.CapacityRange(required_bytes=GIB)
            ),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            csi_pb2.ControllerExpandVolumeRequest(
                volume_id="garbage", capacity_range=csi_pb2.CapacityRange(required_bytes=GIB)
            ),
            grpc.StatusCode.NOT_FOUND,
        ),
    ]:
        assert rpc_error(controller.stub.ControllerExpandVolume, request).code() == code


def test_get_validate_and_list_volumes(controller, reference):
    volumes = [controller.create(f"pvc-list-{n}", gib=n + 1) for n in range(3)]
    got = controller.stub.ControllerGetVolume(
        csi_pb2.ControllerGetVolumeRequest(volume_id=volumes[1].volume_id)
    )
    assert got.volume.capacity_bytes == 2 * GIB
    assert got.status.volume_condition.abnormal is False
    for volume_id, code in [
        ("", grpc.StatusCode.INVALID_ARGUMENT),
        ("fs:cfs-nothere", grpc.StatusCode.NOT_FOUND),
        ("garbage", grpc.StatusCode.NOT_FOUND),
    ]:
        err = rpc_error(
            controller.stub.ControllerGetVolume, csi_pb2.ControllerGetVolumeRequest(volume_id=volume_id)
        )
        assert err.code() == code

    confirmed = controller.stub.ValidateVolumeCapabilities(
        csi_pb2.ValidateVolumeCapabilitiesRequest(
            volume_id=volumes[0].volume_id, volume_capabilities=[MOUNT_CAPABILITY]
        )
    )
    assert list(confirmed.confirmed.volume_capabilities) == [MOUNT_CAPABILITY]
    refused = controller.stub.ValidateVolumeCapabilities(
        csi_pb2.ValidateVolumeCapabilitiesRequest(volume_id=volumes[0].volume_id, volume_capabilities=[BLOCK])
    )
    assert not refused.HasField("confirmed") and "block access is not supported" in refused.message
    for request, code in [
        (
            csi_pb2.ValidateVolumeCapabilitiesRequest(volume_capabilities=[MOUNT_CAPABILITY]),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            csi_pb2.ValidateVolumeCapabilitiesRequest(volume_id=volumes[0].volume_id),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            csi_pb2.ValidateVolumeCapabilitiesRequest(
                volume_id="fs:cfs-nothere", volume_capabilities=[MOUNT_CAPABILITY]
            ),
            grpc.StatusCode.NOT_FOUND,
        ),
    ]:
        assert rpc_error(controller.stub.ValidateVolumeCapabilities, request).code() == code

    seen, token = [], ""
    while True:
        page = controller.stub.ListVolumes(csi_pb2.ListVolumesRequest(max_entries=2, starting_token=token))
        assert len(page.entries) <= 2
        seen += [entry.volume.volume_id for entry in page.entries]
        assert all(not entry.status.volume_condition.abnormal for entry in page.entries)
        token = page.next_token
        if not token:
            break
    assert sorted(seen) == sorted(v.volume_id for v in volumes)
    for bad_token in ("garbage", "999"):
        err = rpc_error(controller.stub.ListVolumes, csi_pb2.ListVolumesRequest(starting_token=bad_token))
        assert err.code() == grpc.StatusCode.ABORTED
    err = rpc_error(controller.stub.ListVolumes, csi_pb2.ListVolumesRequest(max_entries=-1))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "max_entries" in err.details()


def test_concurrent_call_for_same_name_is_aborted(controller, reference):
    with controller.servicer.locks.hold("pvc-busy"):
        err = rpc_error(controller.stub.CreateVolume, create_request("pvc-busy"))
    assert err.code() == grpc.StatusCode.ABORTED
    assert "pvc-busy" in err.details()
    assert file_systems(reference) == []
