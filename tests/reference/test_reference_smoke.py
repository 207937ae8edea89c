"""Smoke test: the reference service driven through the official SDK over real HTTP.

One service per module (started by the harness, state in a temp dir); each test builds what it
needs and asserts the documented replies.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tencentcloud.cfs.v20190719 import cfs_client, models
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from tests.support.reference import call, outcome, running_reference, sdk_client

VPC = {"NetInterface": "VPC", "VpcId": "vpc-1a2b3c4d", "SubnetId": "subnet-1a2b3c4d"}


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    with running_reference(tmp_path_factory.mktemp("reference"), create_delay=0.2) as reference:
        yield reference


@pytest.fixture(scope="module")
def cfs(ref):
    return sdk_client(ref)


def wait_state(cfs, fs_id: str, wanted: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        fs = call(cfs, "DescribeCfsFileSystems", FileSystemId=fs_id)["FileSystems"][0]
        if fs["LifeCycleState"] == wanted or time.monotonic() > deadline:
            return fs
        time.sleep(0.1)


def create_fs(cfs, name: str, **extra) -> str:
    params = {"Zone": "ap-shanghai-fsi-1", "PGroupId": "pgroupbasic", "FsName": name, **VPC, **extra}
    return call(cfs, "CreateCfsFileSystem", **params)["FileSystemId"]


def test_typed_sdk_client_lists_and_creates(ref):
    """The SDK's own typed CfsClient works against the service (Content-Type, envelope, signing)."""
    client = cfs_client.CfsClient(
        credential.Credential(ref.secret_id, ref.secret_key),
        ref.region,
        ClientProfile(httpProfile=HttpProfile(endpoint=ref.endpoint, protocol="http")),
    )
    request = models.CreateCfsPGroupRequest()
    request.Name = "typed_client"
    created = client.CreateCfsPGroup(request)
    assert created.PGroupId.startswith("pgroup-") and len(created.PGroupId) == len("pgroup-") + 8
    groups = client.DescribeCfsPGroups(models.DescribeCfsPGroupsRequest()).PGroupList
    assert {g.PGroupId for g in groups} >= {"pgroupbasic", created.PGroupId}


def test_file_system_lifecycle_and_mount_target(cfs):
    fs_id = create_fs(cfs, "smoke_lifecycle")
    assert fs_id.startswith("cfs-") and len(fs_id) == 12
    first = call(cfs, "DescribeCfsFileSystems", FileSystemId=fs_id)["FileSystems"][0]
    assert first["LifeCycleState"] == "creating"
    # Docs: while creating, no detail view and no delete.
    with pytest.raises(TencentCloudSDKException) as creating:
        call(cfs, "DeleteCfsFileSystem", FileSystemId=fs_id)
    assert creating.value.code == "InvalidParameterValue.InvalidFsStatus"
    # DescribeCfsFileSystemClients documents no InvalidFsStatus: no mount target exists yet
    with pytest.raises(TencentCloudSDKException) as no_target:
        call(cfs, "DescribeCfsFileSystemClients", FileSystemId=fs_id)
    assert no_target.value.code == "ResourceNotFound.MountTargetNotFound"
    fs = wait_state(cfs, fs_id, "available")
    assert fs["LifeCycleState"] == "available"
    assert fs["PGroup"]["PGroupId"] == "pgroupbasic"
    targets = call(cfs, "DescribeMountTargets", FileSystemId=fs_id)
    assert targets["NumberOfMountTargets"] == 1
    target = targets["MountTargets"][0]
    assert target["IpAddress"].startswith("127.16.") and len(target["FSID"]) == 8
    call(cfs, "DeleteCfsFileSystem", FileSystemId=fs_id)
    assert call(cfs, "DescribeCfsFileSystems", FileSystemId=fs_id)["FileSystems"] == []
    with pytest.raises(TencentCloudSDKException) as gone:
        call(cfs, "DescribeMountTargets", FileSystemId=fs_id)
    assert gone.value.code == "ResourceNotFound.FileSystemNotFound"


def test_permission_group_rules_and_in_use(cfs):
    group = call(cfs, "CreateCfsPGroup", Name="smoke_rules", DescInfo="smoke")["PGroupId"]
    rule = call(cfs, "CreateCfsRule", PGroupId=group, AuthClientIp="10.0.0.0/24", Priority=10)
    assert (rule["RWPermission"], rule["UserPermission"]) == ("RO", "root_squash")  # 2019 defaults
    fs_id = create_fs(cfs, "smoke_in_use", PGroupId=group)
    with pytest.raises(TencentCloudSDKException) as in_use:
        call(cfs, "DeleteCfsPGroup", PGroupId=group)
    assert in_use.value.code == "FailedOperation.PgroupInUse"
    wait_state(cfs, fs_id, "available")
    call(cfs, "UpdateCfsFileSystemPGroup", FileSystemId=fs_id, PGroupId="pgroupbasic")
    call(cfs, "DeleteCfsPGroup", PGroupId=group)


def test_snapshot_and_file_system_from_snapshot(ref, cfs):
    fs_id = create_fs(cfs, "smoke_snap_source")
    wait_state(cfs, fs_id, "available")
    data_dir = Path(
        next(f["DataDir"] for f in ref.admin.state()["FileSystems"] if f["FileSystemId"] == fs_id)
    )
    (data_dir / "hello.txt").write_text("hello from the source")
    snap_id = call(cfs, "CreateCfsSnapshot", FileSystemId=fs_id, SnapshotName="smoke")["SnapshotId"]
    assert snap_id.startswith("cfssnap-")
    deadline = time.monotonic() + 5
    while call(cfs, "DescribeCfsSnapshots", SnapshotId=snap_id)["Snapshots"][0]["Status"] != "available":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    restored = create_fs(cfs, "smoke_restored", SnapId=snap_id)
    wait_state(cfs, restored, "available")
    restored_dir = Path(
        next(f["DataDir"] for f in ref.admin.state()["FileSystems"] if f["FileSystemId"] == restored)
    )
    assert (restored_dir / "hello.txt").read_text() == "hello from the source"


def test_policy_bind_unbind(cfs):
    fs_id = create_fs(cfs, "smoke_policy")
    policy = call(cfs, "CreateAutoSnapshotPolicy", PolicyName="nightly", DayOfWeek="1,3", Hour="2")
    policy_id = policy["AutoSnapshotPolicyId"]
    assert policy_id.startswith("asp-")
    call(cfs, "BindAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id, FileSystemIds=fs_id)
    shown = call(cfs, "DescribeAutoSnapshotPolicies", AutoSnapshotPolicyId=policy_id)["AutoSnapshotPolicies"][
        0
    ]
    assert [f["FileSystemId"] for f in shown["FileSystems"]] == [fs_id]
    call(cfs, "UnbindAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id, FileSystemIds=fs_id)
    call(cfs, "DeleteAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id)


def test_admin_fault_injection_and_call_log(ref, cfs):
    ref.admin.reset_calls()
    ref.admin.set_faults([{"action": "DescribeCfsServiceStatus", "code": "InternalError", "rate": 1.0}])
    try:
        with pytest.raises(TencentCloudSDKException) as injected:
            call(cfs, "DescribeCfsServiceStatus")
        assert injected.value.code == "InternalError"
    finally:
        ref.admin.set_faults([])
    assert call(cfs, "DescribeCfsServiceStatus")["CfsServiceStatus"] in ("none", "creating", "created")
    codes = [code for _, code in ref.admin.calls()["DescribeCfsServiceStatus"]["calls"]]
    assert codes == ["InternalError", "OK"]


def test_rate_limit_answers_request_limit_exceeded(ref, cfs):
    ref.admin.configure(rate_limits={"DescribeCfsRules": 2})
    try:
        codes = [outcome(cfs, "DescribeCfsRules", PGroupId="pgroupbasic") for _ in range(6)]
        assert codes[:2] == ["OK", "OK"] and "RequestLimitExceeded" in codes
    finally:
        ref.admin.configure(rate_limits={"DescribeCfsRules": 20})
