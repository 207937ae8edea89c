"""cfs_cloud against the real reference CFS service: calls, typed errors, helpers, waiters."""

import uuid

import pytest
from prometheus_client import REGISTRY

from cfs_cloud import (
    CfsAuthError,
    CfsInvalidParameter,
    CfsNotFound,
    FileSystemCreateFailed,
    SnapshotCreateFailed,
    WaitTimeout,
)


def fs_params(reference, name):
    return {
        "Zone": f"{reference.region}-1",
        "NetInterface": "VPC",
        "PGroupId": "pgroupbasic",
        "VpcId": "vpc-cloudtest",
        "SubnetId": "subnet-cloudtest",
        "FsName": name,
    }


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def calls_of(reference, action):
    """(timestamp, code) pairs the reference logged for `action` since the last reset."""
    return reference.admin.calls().get(action, {}).get("calls", [])


def metric(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_call_returns_the_response_object(cloud_client):
    reply = cloud_client.call("DescribeCfsFileSystems", {})
    assert reply["TotalCount"] == 0 and reply["FileSystems"] == []
    assert reply["RequestId"]


def test_not_found_is_typed_keeps_request_id_and_is_not_retried(reference, cloud_client):
    reference.admin.reset_calls()
    with pytest.raises(CfsNotFound) as info:
        cloud_client.call("DescribeMountTargets", {"FileSystemId": "cfs-00000000"})
    err = info.value
    assert err.code == "ResourceNotFound.FileSystemNotFound"
    assert err.request_id and err.request_id in str(err)
    assert str(err).startswith("ResourceNotFound.FileSystemNotFound: ")
    assert len(calls_of(reference, "DescribeMountTargets")) == 1


def test_invalid_parameters_are_typed_and_not_retried(reference, cloud_client):
    reference.admin.reset_calls()
    params = fs_params(reference, unique("bad"))
    del params["Zone"]
    with pytest.raises(CfsInvalidParameter) as info:
        cloud_client.call("CreateCfsFileSystem", params)
    assert info.value.code == "MissingParameter"
    assert "Zone" in info.value.message
    assert len(calls_of(reference, "CreateCfsFileSystem")) == 1


def test_wrong_credentials_are_auth_errors(reference, cloud_client):
    with pytest.raises(CfsAuthError) as info:
        cloud_client.with_credentials(reference.secret_id, "not-the-key").call("DescribeCfsFileSystems")
    assert info.value.code == "AuthFailure.SignatureFailure"
    with pytest.raises(CfsAuthError) as info:
        cloud_client.with_credentials("AKIDunknown", "whatever").call("DescribeCfsFileSystems")
    assert info.value.code == "AuthFailure.SecretIdNotFound"


def test_file_system_lifecycle_through_the_helpers(reference, cloud_client):
    name = unique("life")
    before = metric("cfs_cloud_calls_total", action="CreateCfsFileSystem", code="OK")
    timed = metric("cfs_cloud_call_seconds_count", action="CreateCfsFileSystem")
    created = cloud_client.call("CreateCfsFileSystem", fs_params(reference, name))
    fs_id = created["FileSystemId"]
    assert metric("cfs_cloud_calls_total", action="CreateCfsFileSystem", code="OK") == before + 1
    assert metric("cfs_cloud_call_seconds_count", action="CreateCfsFileSystem") == timed + 1

    info = cloud_client.wait_file_system_available(fs_id, timeout=10)
    assert info["FileSystemId"] == fs_id and info["LifeCycleState"] == "available"
    assert cloud_client.find_file_system_by_name(name)["FileSystemId"] == fs_id
    assert cloud_client.find_file_system_by_name(unique("absent")) is None
    targets = cloud_client.mount_targets(fs_id)
    assert targets and all(t["FileSystemId"] == fs_id and t["IpAddress"] for t in targets)

    cloud_client.call("DeleteCfsFileSystem", {"FileSystemId": fs_id})
    assert cloud_client.find_file_system_by_name(name) is None


def test_listing_paginates(reference, cloud_client):
    made = {
        cloud_client.call("CreateCfsFileSystem", fs_params(reference, unique("page")))["FileSystemId"]
        for _ in range(5)
    }
    reference.admin.reset_calls()
    listed = [fs["FileSystemId"] for fs in cloud_client.iter_file_systems(Limit=2)]
    assert sorted(listed) == sorted(made)
    assert len(calls_of(reference, "DescribeCfsFileSystems")) == 3  # 2 + 2 + 1


def test_create_failed_fails_the_wait_fast(reference, cloud_client):
    reference.admin.set_faults([], create_failed_rate=1.0)
    fs_id = cloud_client.call("CreateCfsFileSystem", fs_params(reference, unique("fail")))["FileSystemId"]
    with pytest.raises(FileSystemCreateFailed, match=fs_id):
        cloud_client.wait_file_system_available(fs_id, timeout=10)


def test_wait_times_out_while_creating(reference, cloud_client):
    reference.admin.configure(create_delay=30)
    fs_id = cloud_client.call("CreateCfsFileSystem", fs_params(reference, unique("slow")))["FileSystemId"]
    with pytest.raises(WaitTimeout, match=fs_id):
        cloud_client.wait_file_system_available(fs_id, timeout=0.5)


def test_waiting_for_a_deleted_file_system_is_not_found(reference, cloud_client):
    with pytest.raises(CfsNotFound):
        cloud_client.wait_file_system_available("cfs-00000000", timeout=10)


def test_snapshots_helpers(reference, cloud_client):
    fs_id = cloud_client.call("CreateCfsFileSystem", fs_params(reference, unique("snapsrc")))["FileSystemId"]
    cloud_client.wait_file_system_available(fs_id, timeout=10)
    name = unique("snap")
    snap_id = cloud_client.call("CreateCfsSnapshot", {"FileSystemId": fs_id, "SnapshotName": name})[
        "SnapshotId"
    ]
    snap = cloud_client.wait_snapshot_available(snap_id, timeout=10)
    assert snap["SnapshotId"] == snap_id and snap["Status"] == "available"
    assert cloud_client.find_snapshot_by_name(name)["SnapshotId"] == snap_id
    assert cloud_client.find_snapshot_by_name(name, file_system_id=fs_id)["SnapshotId"] == snap_id
    assert cloud_client.find_snapshot_by_name(unique("nosnap")) is None
    assert [s["SnapshotId"] for s in cloud_client.iter_snapshots(FileSystemId=fs_id)] == [snap_id]


def test_generic_pagination_of_permission_groups(reference, cloud_client):
    made = {cloud_client.call("CreateCfsPGroup", {"Name": unique("pg")})["PGroupId"] for _ in range(3)}
    reference.admin.reset_calls()
    listed = {g["PGroupId"] for g in cloud_client.paginate("DescribeCfsPGroups", "PGroupList", Limit=2)}
    assert made <= listed and "pgroupbasic" in listed and len(listed) == 4
    assert len(calls_of(reference, "DescribeCfsPGroups")) == 2


def test_snapshot_failures_and_absence_end_the_wait(reference, cloud_client):
    fs_id = cloud_client.call("CreateCfsFileSystem", fs_params(reference, unique("snapfail")))["FileSystemId"]
    cloud_client.wait_file_system_available(fs_id, timeout=10)
    reference.admin.set_faults([], create_failed_rate=1.0)
    snap_id = cloud_client.call("CreateCfsSnapshot", {"FileSystemId": fs_id, "SnapshotName": unique("bad")})[
        "SnapshotId"
    ]
    with pytest.raises(SnapshotCreateFailed, match=f"snapshot {snap_id} is create-failed"):
        cloud_client.wait_snapshot_available(snap_id, timeout=10)
    with pytest.raises(CfsNotFound) as info:
        cloud_client.wait_snapshot_available("cfssnap-00000000", timeout=10)
    assert info.value.code == "ResourceNotFound.SnapNotExist"
