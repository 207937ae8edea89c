"""Conformance, API 2019-07-19: every action through the official SDK, happy paths, pagination,
filters, ordering, limits and each documented business error code that can arise locally."""

from __future__ import annotations

import time

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from cfs_reference.catalogue import ACTIONS_2019
from tests.support.reference import call, running_reference, sdk_client

ZONE = "ap-shanghai-fsi-1"
VPC = {"NetInterface": "VPC", "VpcId": "vpc-conform1", "SubnetId": "subnet-conform1"}
EXERCISED: set[str] = set()


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    # Lifecycles finish on the next request (delay 0); rate limits are tested elsewhere.
    with running_reference(tmp_path_factory.mktemp("reference"), create_delay=0.0,
                           extra_args=["--no-rate-limits", "--regions", "ap-beijing-fsi"]) as reference:
        yield reference


@pytest.fixture(scope="module")
def cfs(ref):
    return sdk_client(ref)


def ok(cfs, action: str, **params) -> dict:
    EXERCISED.add(action)
    return call(cfs, action, **params)


def fails(cfs, code: str, action: str, **params) -> str:
    """Assert the documented error code; returns the message."""
    EXERCISED.add(action)
    with pytest.raises(TencentCloudSDKException) as caught:
        call(cfs, action, **params)
    assert caught.value.code == code, caught.value.message
    return caught.value.message


def new_fs(cfs, name: str, **overrides) -> str:
    params = {"Zone": ZONE, "PGroupId": "pgroupbasic", "FsName": name, **VPC, **overrides}
    return ok(cfs, "CreateCfsFileSystem", **params)["FileSystemId"]


def describe_fs(cfs, fs_id: str) -> dict:
    return ok(cfs, "DescribeCfsFileSystems", FileSystemId=fs_id)["FileSystems"][0]


# ---- file systems ----


def test_create_file_system_reply_and_info(cfs):
    created = ok(cfs, "CreateCfsFileSystem", Zone=ZONE, PGroupId="pgroupbasic", FsName="conf_info",
                 Protocol="NFS", StorageType="SD", ResourceTags=[{"TagKey": "team", "TagValue": "a"}], **VPC)
    assert created["LifeCycleState"] == "creating" and created["CfsId"] == created["FileSystemId"]
    assert (created["FsName"], created["CreationToken"], created["SizeByte"]) == ("conf_info", "conf_info", 0)
    info = describe_fs(cfs, created["FileSystemId"])
    assert info["LifeCycleState"] == "available"
    assert (info["Zone"], info["Protocol"], info["StorageType"], info["VpcId"]) == (
        ZONE, "NFS", "SD", "vpc-conform1")
    assert info["PGroup"] == {"PGroupId": "pgroupbasic", "Name": "默认权限组"}
    assert info["Tags"] == [{"TagKey": "team", "TagValue": "a"}]
    english = ok(cfs, "DescribeCfsFileSystems", FileSystemId=created["FileSystemId"], InternationalFlag=1)
    assert english["FileSystems"][0]["PGroup"]["Name"] == "Default permission group"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"Zone": "ap-nowhere-1"}, "InvalidParameterValue.InvalidZoneOrZoneId"),
        ({"ZoneId": 1}, "InvalidParameterValue.ZoneIdRegionNotMatch"),
        ({"NetInterface": "CLASSIC"}, "InvalidParameterValue.InvalidNetInterface"),
        ({"VpcId": None}, "InvalidParameterValue.MissingVpcidOrUnvpcid"),
        ({"SubnetId": None}, "InvalidParameterValue.MissingSubnetidOrUnsubnetid"),
        ({"VpcId": "net-1"}, "InvalidParameterValue.InvalidVpcId"),
        ({"SubnetId": "sn-1"}, "InvalidParameterValue.InvalidSubnetId"),
        ({"Protocol": "SMB3"}, "InvalidParameterValue.InvalidProtocol"),
        ({"StorageType": "XL"}, "InvalidParameterValue.InvalidStorageType"),
        ({"FsName": "x" * 65}, "InvalidParameterValue.FsNameLimitExceeded"),
        ({"FsName": "bad name!"}, "InvalidParameterValue.InvalidFsName"),
        ({"FsName": None}, "MissingParameter"),
        ({"PGroupId": "pgroup-00000000"}, "ResourceNotFound.PgroupNotFound"),
        ({"PGroupId": "group-1"}, "InvalidParameterValue.InvalidPgroupId"),
        ({"MountIP": "10.0.0.5"}, "InvalidParameterValue.InvalidMountTargetIp"),
        ({"MountIP": "not-an-ip"}, "InvalidParameterValue.InvalidMountTargetIp"),
        ({"NetInterface": "BASIC", "MountIP": "127.16.9.9"}, "InvalidParameterValue.InvalidMountTargetIp"),
        ({"SnapId": "cfssnap-00000000"}, "ResourceNotFound.SnapNotExist"),
        ({"Encrypted": True}, "InvalidParameterValue.MissingKmsKeyId"),
    ],
)
def test_create_file_system_errors(cfs, overrides, code):
    params = {"Zone": ZONE, "PGroupId": "pgroupbasic", "FsName": "conf_bad", **VPC, **overrides}
    fails(cfs, code, "CreateCfsFileSystem", **{k: v for k, v in params.items() if v is not None})


def test_mount_ip_is_honoured_and_then_taken(cfs):
    fs_id = new_fs(cfs, "conf_ip", MountIP="127.16.200.7")
    target = ok(cfs, "DescribeMountTargets", FileSystemId=fs_id)["MountTargets"][0]
    assert target["IpAddress"] == "127.16.200.7"
    fails(cfs, "InvalidParameterValue.InvalidVip", "CreateCfsFileSystem", Zone=ZONE, PGroupId="pgroupbasic",
          FsName="conf_ip2", MountIP="127.16.200.7", **VPC)


def test_basic_network_file_system(cfs):
    fs_id = ok(cfs, "CreateCfsFileSystem", Zone=ZONE, PGroupId="pgroupbasic", FsName="conf_basic",
               NetInterface="BASIC")["FileSystemId"]
    assert ok(cfs, "DescribeMountTargets", FileSystemId=fs_id)["MountTargets"][0]["NetworkInterface"] == "BASIC"


def test_describe_filters_and_pagination(cfs):
    ids = [new_fs(cfs, f"conf_page{n}", VpcId="vpc-paging", SubnetId=f"subnet-p{n % 2}") for n in range(5)]
    by_vpc = ok(cfs, "DescribeCfsFileSystems", VpcId="vpc-paging")
    assert by_vpc["TotalCount"] == 5 and [f["FileSystemId"] for f in by_vpc["FileSystems"]] == ids
    page = ok(cfs, "DescribeCfsFileSystems", VpcId="vpc-paging", Offset=1, Limit=2)
    assert page["TotalCount"] == 5 and [f["FileSystemId"] for f in page["FileSystems"]] == ids[1:3]
    assert ok(cfs, "DescribeCfsFileSystems", VpcId="vpc-paging", SubnetId="subnet-p1")["TotalCount"] == 2
    named = ok(cfs, "DescribeCfsFileSystems", CreationToken="conf_page3")["FileSystems"]
    assert [f["FileSystemId"] for f in named] == [ids[3]]
    beyond = ok(cfs, "DescribeCfsFileSystems", VpcId="vpc-paging", Offset=10)
    assert beyond == {**beyond, "TotalCount": 5, "FileSystems": []}
    fails(cfs, "InvalidParameterValue.InvalidFileSystemId", "DescribeCfsFileSystems", FileSystemId="nfs-1")
    fails(cfs, "ResourceNotFound.FileSystemNotFound", "DescribeCfsFileSystems", FileSystemId="cfs-00000000")
    by_vpc_targets = ok(cfs, "DescribeCfsFileSystemsByVpc", VpcId="vpc-paging", SubnetId="subnet-p0")
    assert by_vpc_targets["TotalCount"] == 3
    assert {t["FileSystemId"] for t in by_vpc_targets["MountTargets"]} == {ids[0], ids[2], ids[4]}
    assert all(len(t["FSID"]) == 8 for t in by_vpc_targets["MountTargets"])


def test_rename_size_limit_and_clients(cfs):
    fs_id = new_fs(cfs, "conf_rename")
    renamed = ok(cfs, "UpdateCfsFileSystemName", FileSystemId=fs_id, FsName="conf_renamed")
    assert (renamed["FsName"], renamed["CreationToken"]) == ("conf_renamed", "conf_renamed")
    assert describe_fs(cfs, fs_id)["FsName"] == "conf_renamed"
    fails(cfs, "InvalidParameterValue.FsNameLimitExceeded", "UpdateCfsFileSystemName", FileSystemId=fs_id,
          FsName="名" * 22)  # 66 bytes in UTF-8
    fails(cfs, "ResourceNotFound.FileSystemNotFound", "UpdateCfsFileSystemName", FileSystemId="cfs-00000000",
          FsName="x")
    ok(cfs, "UpdateCfsFileSystemSizeLimit", FileSystemId=fs_id, FsLimit=1073741824)
    assert describe_fs(cfs, fs_id)["SizeLimit"] == 1073741824
    ok(cfs, "UpdateCfsFileSystemSizeLimit", FileSystemId=fs_id, FsLimit=0)  # 0 = unlimited
    message = fails(cfs, "InvalidParameterValue.FsSizeLimitExceeded", "UpdateCfsFileSystemSizeLimit",
                    FileSystemId=fs_id, FsLimit=1073741825)
    assert "FsLimit" in message and "1073741824" in message
    assert ok(cfs, "DescribeCfsFileSystemClients", FileSystemId=fs_id)["ClientList"] == []
    fails(cfs, "ResourceNotFound.FileSystemNotFound", "DescribeCfsFileSystemClients", FileSystemId="cfs-00000000")


def test_size_byte_reflects_stored_data(ref, cfs):
    fs_id = new_fs(cfs, "conf_size")
    describe_fs(cfs, fs_id)
    data_dir = next(f["DataDir"] for f in ref.admin.state()["FileSystems"] if f["FileSystemId"] == fs_id)
    with open(f"{data_dir}/blob", "wb") as blob:
        blob.write(b"x" * 12345)
    deadline = time.monotonic() + 5
    while describe_fs(cfs, fs_id)["SizeByte"] != 12345:
        assert time.monotonic() < deadline, "SizeByte never caught up with the data directory"
        time.sleep(0.2)


def test_delete_file_system_and_mount_target_errors(cfs):
    fs_id = new_fs(cfs, "conf_delete")
    describe_fs(cfs, fs_id)
    ok(cfs, "DeleteCfsFileSystem", FileSystemId=fs_id)
    fails(cfs, "ResourceNotFound.FileSystemNotFound", "DeleteCfsFileSystem", FileSystemId=fs_id)
    fails(cfs, "ResourceNotFound.FileSystemNotFound", "DescribeMountTargets", FileSystemId=fs_id)


def test_create_failed_outcome(ref, cfs):
    ref.admin.set_faults([], create_failed_rate=1.0)
    try:
        fs_id = new_fs(cfs, "conf_failed")
    finally:
        ref.admin.set_faults([])
    assert describe_fs(cfs, fs_id)["LifeCycleState"] == "create_failed"
    fails(cfs, "ResourceNotFound.MountTargetNotFound", "DescribeMountTargets", FileSystemId=fs_id)
    ok(cfs, "DeleteCfsFileSystem", FileSystemId=fs_id)


# ---- permission groups and rules ----


def test_permission_group_crud_and_errors(cfs):
    group = ok(cfs, "CreateCfsPGroup", Name="conf_组-1", DescInfo="first")
    assert group["BindCfsNum"] == 0 and group["CDate"]
    gid = group["PGroupId"]
    fails(cfs, "InvalidParameterValue.DuplicatedPgroupName", "CreateCfsPGroup", Name="conf_组-1")
    fails(cfs, "InvalidParameterValue.InvalidPgroupName", "CreateCfsPGroup", Name="has space")
    fails(cfs, "InvalidParameterValue.MissingPgroupName", "CreateCfsPGroup", Name="")
    fails(cfs, "InvalidParameterValue.PgroupNameLimitExceeded", "CreateCfsPGroup", Name="n" * 65)
    fails(cfs, "InvalidParameterValue.PgroupDescinfoLimitExceeded", "CreateCfsPGroup", Name="conf_desc",
          DescInfo="d" * 256)
    updated = ok(cfs, "UpdateCfsPGroup", PGroupId=gid, DescInfo="second")
    assert (updated["Name"], updated["DescInfo"]) == ("conf_组-1", "second")
    fails(cfs, "InvalidParameterValue.MissingNameOrDescinfo", "UpdateCfsPGroup", PGroupId=gid)
    fails(cfs, "ResourceNotFound.PgroupNotFound", "UpdateCfsPGroup", PGroupId="pgroup-00000000", Name="x")
    fails(cfs, "UnsupportedOperation", "UpdateCfsPGroup", PGroupId="pgroupbasic", Name="mine")
    fails(cfs, "UnsupportedOperation", "DeleteCfsPGroup", PGroupId="pgroupbasic")
    deleted = ok(cfs, "DeleteCfsPGroup", PGroupId=gid)
    assert deleted["PGroupId"] == gid
    fails(cfs, "ResourceNotFound.PgroupNotFound", "DeleteCfsPGroup", PGroupId=gid)


def test_describe_pgroups_filters_order_and_pages(cfs):
    ids = [ok(cfs, "CreateCfsPGroup", Name=f"conf_list{n}", DescInfo=f"list{n}")["PGroupId"] for n in range(3)]
    fs_id = new_fs(cfs, "conf_bound", PGroupId=ids[1])
    listed = ok(cfs, "DescribeCfsPGroups", Name="conf_list")
    assert listed["TotalCount"] == 3 and [g["PGroupId"] for g in listed["PGroupList"]] == ids
    by_binding = ok(cfs, "DescribeCfsPGroups", Name="conf_list", OrderBy="BindCfsNum", OrderByType="DESC")
    assert by_binding["PGroupList"][0]["PGroupId"] == ids[1] and by_binding["PGroupList"][0]["BindCfsNum"] == 1
    page = ok(cfs, "DescribeCfsPGroups", Name="conf_list", Offset=2, Limit=5)
    assert [g["PGroupId"] for g in page["PGroupList"]] == ids[2:]
    assert ok(cfs, "DescribeCfsPGroups", PGroupId=ids[0])["TotalCount"] == 1
    fails(cfs, "InvalidParameterValue", "DescribeCfsPGroups", OrderBy="Name")
    fails(cfs, "InvalidParameterValue", "DescribeCfsPGroups", OrderByType="UP")
    english = ok(cfs, "DescribeCfsPGroups", PGroupId="pgroupbasic", InternationalFlag=1)
    assert english["PGroupList"][0]["Name"] == "Default permission group"
    fails(cfs, "FailedOperation.PgroupInUse", "DeleteCfsPGroup", PGroupId=ids[1])
    ok(cfs, "UpdateCfsFileSystemPGroup", FileSystemId=fs_id, PGroupId=ids[0])
    assert describe_fs(cfs, fs_id)["PGroup"]["PGroupId"] == ids[0]
    fails(cfs, "ResourceNotFound.PgroupNotFound", "UpdateCfsFileSystemPGroup", FileSystemId=fs_id,
          PGroupId="pgroup-00000000")


def test_rules_crud_defaults_and_errors(cfs):
    gid = ok(cfs, "CreateCfsPGroup", Name="conf_rules")["PGroupId"]
    rule = ok(cfs, "CreateCfsRule", PGroupId=gid, AuthClientIp="10.1.10.11", Priority=1)
    assert (rule["RWPermission"], rule["UserPermission"], rule["PGroupId"]) == ("RO", "root_squash", gid)
    cidr = ok(cfs, "CreateCfsRule", PGroupId=gid, AuthClientIp="10.10.1.0/24", Priority=100,
              RWPermission="RW", UserPermission="all_squash")
    star = ok(cfs, "CreateCfsRule", PGroupId=gid, AuthClientIp="*", Priority=50, UserPermission="no_all_squash")
    listed = ok(cfs, "DescribeCfsRules", PGroupId=gid)["RuleList"]
    assert [r["RuleId"] for r in listed] == [rule["RuleId"], star["RuleId"], cidr["RuleId"]]  # by priority
    updated = ok(cfs, "UpdateCfsRule", PGroupId=gid, RuleId=rule["RuleId"], RWPermission="RW")
    assert (updated["AuthClientIp"], updated["RWPermission"], updated["UserPermission"], updated["Priority"]) == (
        "10.1.10.11", "RW", "root_squash", 1)
    for params, code in [
        ({"AuthClientIp": "10.1.10.256", "Priority": 5}, "InvalidParameterValue.InvalidAuthClientIp"),
        ({"AuthClientIp": "10.1.10.1/24", "Priority": 5}, "InvalidParameterValue.InvalidAuthClientIp"),
        ({"AuthClientIp": "10.2.0.1", "Priority": 0}, "InvalidParameterValue.InvalidPriority"),
        ({"AuthClientIp": "10.2.0.1", "Priority": 101}, "InvalidParameterValue.InvalidPriority"),
        ({"AuthClientIp": "10.2.0.1", "Priority": 5, "RWPermission": "WO"},
         "InvalidParameterValue.InvalidRwPermission"),
        ({"AuthClientIp": "10.2.0.1", "Priority": 5, "UserPermission": "squash_all"},
         "InvalidParameterValue.InvalidUserPermission"),
        ({"AuthClientIp": "10.1.10.11", "Priority": 5}, "InvalidParameterValue.DuplicatedRuleAuthClientIp"),
    ]:
        message = fails(cfs, code, "CreateCfsRule", PGroupId=gid, **params)
        assert any(field in message for field in ("AuthClientIp", "Priority", "RWPermission", "UserPermission",
                                                  "10.1.10.11"))
    fails(cfs, "ResourceNotFound.PgroupNotFound", "CreateCfsRule", PGroupId="pgroup-00000000",
          AuthClientIp="1.1.1.1", Priority=1)
    fails(cfs, "UnsupportedOperation", "CreateCfsRule", PGroupId="pgroupbasic", AuthClientIp="1.1.1.1", Priority=1)
    other = ok(cfs, "CreateCfsPGroup", Name="conf_rules_other")["PGroupId"]
    fails(cfs, "InvalidParameterValue.RuleNotMatchPgroup", "UpdateCfsRule", PGroupId=other,
          RuleId=rule["RuleId"], Priority=2)
    fails(cfs, "ResourceNotFound.RuleNotFound", "DeleteCfsRule", PGroupId=gid, RuleId="rule-00000000")
    deleted = ok(cfs, "DeleteCfsRule", PGroupId=gid, RuleId=cidr["RuleId"])
    assert deleted == {**deleted, "RuleId": cidr["RuleId"], "PGroupId": gid}
    assert len(ok(cfs, "DescribeCfsRules", PGroupId=gid)["RuleList"]) == 2
    default_rules = ok(cfs, "DescribeCfsRules", PGroupId="pgroupbasic")["RuleList"]
    assert [(r["AuthClientIp"], r["RWPermission"], r["UserPermission"]) for r in default_rules] == [
        ("*", "RW", "no_root_squash")]


# ---- snapshots ----


def wait_snapshot(cfs, snap_id: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = ok(cfs, "DescribeCfsSnapshots", SnapshotId=snap_id)["Snapshots"][0]
        if shown["Status"] != "creating" or time.monotonic() > deadline:
            return shown
        time.sleep(0.05)


def test_snapshot_lifecycle_update_and_delete(ref, cfs):
    fs_id = new_fs(cfs, "conf_snap")
    describe_fs(cfs, fs_id)
    ref.admin.configure(create_delay=0.5)  # long enough to see the "creating" states
    try:
        creating = new_fs(cfs, "conf_snap_creating")
        fails(cfs, "InvalidParameterValue.InvalidFsStatus", "CreateCfsSnapshot", FileSystemId=creating)
        snap_id = ok(cfs, "CreateCfsSnapshot", FileSystemId=fs_id, SnapshotName="conf_first")["SnapshotId"]
        fails(cfs, "InvalidParameterValue.SnapSrcFsBusy", "CreateCfsSnapshot", FileSystemId=fs_id)
        fails(cfs, "InvalidParameterValue.InvalidSnapStatus", "DeleteCfsSnapshot", SnapshotId=snap_id)
        fails(cfs, "InvalidParameterValue.SnapSrcFsBusy", "DeleteCfsFileSystem", FileSystemId=fs_id)
        fails(cfs, "InvalidParameterValue.InvalidSnapStatus", "CreateCfsFileSystem", Zone=ZONE,
              PGroupId="pgroupbasic", FsName="conf_from_creating", SnapId=snap_id, **VPC)
    finally:
        ref.admin.configure(create_delay=0.0)
    shown = wait_snapshot(cfs, snap_id)
    assert (shown["Status"], shown["FileSystemId"], shown["SnapshotName"], shown["FsName"]) == (
        "available", fs_id, "conf_first", "conf_snap")
    ok(cfs, "UpdateCfsSnapshotAttribute", SnapshotId=snap_id, SnapshotName="conf_renamed")
    assert wait_snapshot(cfs, snap_id)["SnapshotName"] == "conf_renamed"
    fails(cfs, "MissingParameter", "UpdateCfsSnapshotAttribute", SnapshotId=snap_id)
    fails(cfs, "InvalidParameterValue", "UpdateCfsSnapshotAttribute", SnapshotId=snap_id, AliveDays=7)
    fails(cfs, "ResourceNotFound.SnapNotExist", "UpdateCfsSnapshotAttribute", SnapshotId="cfssnap-00000000",
          SnapshotName="x")
    fails(cfs, "MissingParameter", "DeleteCfsSnapshot")
    assert ok(cfs, "DeleteCfsSnapshot", SnapshotIds=[snap_id])["SnapshotId"] == snap_id
    fails(cfs, "ResourceNotFound.SnapNotExist", "DeleteCfsSnapshot", SnapshotId=snap_id)
    ok(cfs, "DeleteCfsFileSystem", FileSystemId=fs_id)


def test_describe_snapshots_filters_order_pages(cfs):
    fs_a, fs_b = new_fs(cfs, "conf_snaps_a"), new_fs(cfs, "conf_snaps_b")
    describe_fs(cfs, fs_b)
    made = []
    for n, fs_id in enumerate([fs_a, fs_b, fs_a]):
        made.append(ok(cfs, "CreateCfsSnapshot", FileSystemId=fs_id, SnapshotName=f"conf_s{n}")["SnapshotId"])
        wait_snapshot(cfs, made[-1])
    of_a = ok(cfs, "DescribeCfsSnapshots", FileSystemId=fs_a)
    assert of_a["TotalCount"] == 2 and [s["SnapshotId"] for s in of_a["Snapshots"]] == [made[0], made[2]]
    named = ok(cfs, "DescribeCfsSnapshots", Filters=[{"Name": "SnapshotName", "Values": ["conf_s1", "conf_s2"]}])
    assert {s["SnapshotId"] for s in named["Snapshots"]} == {made[1], made[2]}
    by_fs_name = ok(cfs, "DescribeCfsSnapshots", Filters=[{"Name": "FsName", "Values": ["conf_snaps_b"]}])
    assert [s["SnapshotId"] for s in by_fs_name["Snapshots"]] == [made[1]]
    newest_first = ok(cfs, "DescribeCfsSnapshots", Filters=[{"Name": "SnapshotId", "Values": made}],
                      OrderField="SnapshotName", Order="DESC", Limit=2)
    assert newest_first["TotalCount"] == 3 and [s["SnapshotId"] for s in newest_first["Snapshots"]] == made[:0:-1]
    fails(cfs, "InvalidParameterValue", "DescribeCfsSnapshots", Filters=[{"Name": "Colour", "Values": ["x"]}])
    fails(cfs, "ResourceNotFound.SnapNotExist", "DescribeCfsSnapshots", SnapshotId="cfssnap-00000000")


def test_snapshot_quota_is_one_hundred_per_file_system(cfs):
    fs_id = new_fs(cfs, "conf_quota")
    describe_fs(cfs, fs_id)
    for n in range(100):
        ok(cfs, "CreateCfsSnapshot", FileSystemId=fs_id, SnapshotName=f"q{n}")
        ok(cfs, "DescribeCfsServiceStatus")  # a request lets the snapshot finish (delay 0)
    message = fails(cfs, "LimitExceeded", "CreateCfsSnapshot", FileSystemId=fs_id)
    assert "100" in message


def test_copy_snapshot_to_another_region(cfs, ref):
    fs_id = new_fs(cfs, "conf_copy")
    describe_fs(cfs, fs_id)
    ref.admin.configure(create_delay=0.5)
    try:
        snap_id = ok(cfs, "CreateCfsSnapshot", FileSystemId=fs_id, SnapshotName="conf_src")["SnapshotId"]
        fails(cfs, "InvalidParameterValue.InvalidSnapStatus", "CopyFileSystemSnapshotCrossRegion",
              SnapshotId=snap_id, DestinationRegion="ap-beijing-fsi")
    finally:
        ref.admin.configure(create_delay=0.0)
    wait_snapshot(cfs, snap_id)
    copied = ok(cfs, "CopyFileSystemSnapshotCrossRegion", SnapshotId=snap_id, DestinationRegion="ap-beijing-fsi",
                SnapshotName="conf_copy")["Snapshots"][0]
    assert copied["RegionName"] == "ap-beijing-fsi" and copied["SnapId"].startswith("cfssnap-")
    beijing = sdk_client(ref)
    beijing.region = "ap-beijing-fsi"
    assert call(beijing, "DescribeCfsSnapshots", SnapshotId=copied["SnapId"])["Snapshots"][0]["FileSystemId"] == fs_id
    fails(cfs, "UnsupportedRegion", "CopyFileSystemSnapshotCrossRegion", SnapshotId=snap_id,
          DestinationRegion="ap-nowhere")


# ---- automatic snapshot policies ----


def test_policies_crud_bind_and_errors(cfs):
    fs_a, fs_b = new_fs(cfs, "conf_pol_a"), new_fs(cfs, "conf_pol_b")
    policy_id = ok(cfs, "CreateAutoSnapshotPolicy", PolicyName="conf_policy", DayOfWeek="7,1", Hour="23,0",
                   AliveDays=7)["AutoSnapshotPolicyId"]
    ok(cfs, "BindAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id, FileSystemIds=f"{fs_a},{fs_b}")
    shown = ok(cfs, "DescribeAutoSnapshotPolicies", AutoSnapshotPolicyId=policy_id)["AutoSnapshotPolicies"][0]
    assert (shown["DayOfWeek"], shown["Hour"], shown["AliveDays"], shown["FileSystemNums"]) == ("1,7", "0,23", 7, 2)
    assert shown["NextActiveTime"] and describe_fs(cfs, fs_a)["AutoSnapshotPolicyId"] == policy_id
    ok(cfs, "UpdateAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id, Hour="3", IsActive=0)
    shown = ok(cfs, "DescribeAutoSnapshotPolicies",
               Filters=[{"Name": "AutoSnapshotPolicyName", "Values": ["conf_policy"]}])["AutoSnapshotPolicies"][0]
    assert (shown["Hour"], shown["IsActivated"]) == ("3", 0)
    ok(cfs, "UnbindAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id, FileSystemIds=fs_a)
    assert describe_fs(cfs, fs_a)["AutoSnapshotPolicyId"] == ""
    fails(cfs, "ResourceNotFound", "UnbindAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id, FileSystemIds=fs_a)
    fails(cfs, "ResourceNotFound.FileSystemNotFound", "BindAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id,
          FileSystemIds="cfs-00000000")
    fails(cfs, "InvalidParameterValue", "CreateAutoSnapshotPolicy", DayOfWeek="8", Hour="1")
    fails(cfs, "InvalidParameterValue", "CreateAutoSnapshotPolicy", DayOfWeek="1", Hour="24")
    fails(cfs, "InvalidParameterValue", "UpdateAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id, IsActive=2)
    ok(cfs, "DeleteAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id)
    assert describe_fs(cfs, fs_b)["AutoSnapshotPolicyId"] == ""
    fails(cfs, "ResourceNotFound", "DeleteAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id)


def test_policy_limits_thirty_policies_two_hundred_file_systems(cfs):
    existing = ok(cfs, "DescribeAutoSnapshotPolicies", Limit=100)["TotalCount"]
    created = [ok(cfs, "CreateAutoSnapshotPolicy", DayOfWeek="1", Hour="1")["AutoSnapshotPolicyId"]
               for _ in range(30 - existing)]
    assert "30" in fails(cfs, "LimitExceeded", "CreateAutoSnapshotPolicy", DayOfWeek="1", Hour="1")
    page = ok(cfs, "DescribeAutoSnapshotPolicies", Offset=0, Limit=10)
    assert page["TotalCount"] == 30 and len(page["AutoSnapshotPolicies"]) == 10
    fs_ids = [new_fs(cfs, f"conf_bulk{n}", VpcId="vpc-bulk") for n in range(201)]
    ok(cfs, "BindAutoSnapshotPolicy", AutoSnapshotPolicyId=created[0], FileSystemIds=",".join(fs_ids[:200]))
    assert "200" in fails(cfs, "LimitExceeded", "BindAutoSnapshotPolicy", AutoSnapshotPolicyId=created[0],
                          FileSystemIds=fs_ids[200])
    # binding moves a file system from its previous policy
    ok(cfs, "BindAutoSnapshotPolicy", AutoSnapshotPolicyId=created[1], FileSystemIds=fs_ids[0])
    first = ok(cfs, "DescribeAutoSnapshotPolicies", AutoSnapshotPolicyId=created[0])["AutoSnapshotPolicies"][0]
    assert first["FileSystemNums"] == 199
    for policy_id in created:
        ok(cfs, "DeleteAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id)
    for fs_id in fs_ids:
        ok(cfs, "DeleteCfsFileSystem", FileSystemId=fs_id)


# ---- service ----


def test_service_zones_tags_and_sign_up(cfs):
    assert ok(cfs, "DescribeCfsServiceStatus")["CfsServiceStatus"] == "none"
    assert ok(cfs, "SignUpCfsService")["CfsServiceStatus"] in ("creating", "created")
    assert ok(cfs, "DescribeCfsServiceStatus")["CfsServiceStatus"] == "created"
    regions = ok(cfs, "DescribeAvailableZoneInfo")["RegionZones"]
    shanghai = next(r for r in regions if r["Region"] == "ap-shanghai-fsi")
    zone = next(z for z in shanghai["Zones"] if z["Zone"] == ZONE)
    assert {t["Type"] for t in zone["Types"]} == {"SD", "HP"}
    tags = ok(cfs, "DescribeCfsTags", ZoneId=zone["ZoneId"])["Tags"]
    assert tags[0]["ZoneId"] == zone["ZoneId"] and tags[0]["ISNFS"] == 1
    fails(cfs, "InvalidParameterValue.InvalidZoneId", "DescribeCfsTags", ZoneId=1)


def test_every_2019_action_was_exercised():
    """Runs last in this module (pytest keeps file order): the catalogue is fully covered."""
    assert sorted(set(ACTIONS_2019) - EXERCISED) == []
