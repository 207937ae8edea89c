"""Conformance, API 2019-07-19: every action through the official SDK, happy paths, pagination,
filters, ordering, limits and each documented business error code that can arise locally."""

from __future__ import annotations

import os
import time

import pytest

from cfs_reference.catalogue import ACTIONS_2019
from tests.support.reference import RecordingClient, call, running_reference, sdk_client

ZONE = "ap-shanghai-fsi-1"
# The data structures' fields, exactly as the docs list them ("数据结构").
FILE_SYSTEM_INFO = {
    "CreationTime",
    "CreationToken",
    "FileSystemId",
    "LifeCycleState",
    "SizeByte",
    "SizeLimit",
    "ZoneId",
    "Zone",
    "Protocol",
    "StorageType",
    "StorageResourcePkg",
    "BandwidthResourcePkg",
    "PGroup",
    "FsName",
    "Encrypted",
    "KmsKeyId",
    "SizeLimitMax",
    "VpcId",
    "IpAddress",
    "AllocedSpace",
    "TagId",
    "TagName",
    "SnapId",
    "SnapStatus",
    "BandwidthLimit",
    "AppId",
}
AUTO_SNAPSHOT_POLICY_INFO = {
    "AutoSnapshotPolicyId",
    "PolicyName",
    "CreationTime",
    "FileSystemNums",
    "DayOfWeek",
    "Hour",
    "IsActive",
    "NextActiveTime",
    "Status",
    "AliveDays",
    "RegionName",
    "FileSystems",
}
VPC = {"NetInterface": "VPC", "VpcId": "vpc-conform1", "SubnetId": "subnet-conform1"}


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    # Lifecycles finish on the next request (delay 0); rate limits are tested elsewhere.
    with running_reference(
        tmp_path_factory.mktemp("reference"),
        create_delay=0.0,
        extra_args=["--no-rate-limits", "--regions", "ap-beijing-fsi"],
    ) as reference:
        yield reference


@pytest.fixture(scope="module")
def cfs(ref):
    return RecordingClient(sdk_client(ref))


def new_fs(cfs, name: str, **overrides) -> str:
    params = {"Zone": ZONE, "PGroupId": "pgroupbasic", "FsName": name, **VPC, **overrides}
    return cfs.ok("CreateCfsFileSystem", **params)["FileSystemId"]


def admin_fs(ref, fs_id: str) -> dict:
    """The file system as the admin state shows it (FileSystemInfo + DataDir, Tags, ...)."""
    return next(f for f in ref.admin.state()["FileSystems"] if f["FileSystemId"] == fs_id)


def describe_fs(cfs, fs_id: str) -> dict:
    return cfs.ok("DescribeCfsFileSystems", FileSystemId=fs_id)["FileSystems"][0]


# ---- file systems ----


def test_create_file_system_reply_and_info(ref, cfs):
    created = cfs.ok(
        "CreateCfsFileSystem",
        Zone=ZONE,
        PGroupId="pgroupbasic",
        FsName="conf_info",
        Protocol="NFS",
        StorageType="SD",
        ResourceTags=[{"TagKey": "team", "TagValue": "a"}],
        **VPC,
    )
    assert created["LifeCycleState"] == "creating" and created["CfsId"] == created["FileSystemId"]
    assert (created["FsName"], created["CreationToken"], created["SizeByte"]) == ("conf_info", "conf_info", 0)
    info = describe_fs(cfs, created["FileSystemId"])
    data_dir = admin_fs(ref, info["FileSystemId"])["DataDir"]
    assert os.stat(data_dir).st_mode & 0o777 == 0o755  # "每个文件系统默认为 755 权限"
    assert info["LifeCycleState"] == "available" and set(info) == FILE_SYSTEM_INFO
    assert (info["Zone"], info["Protocol"], info["StorageType"], info["VpcId"]) == (
        ZONE,
        "NFS",
        "SD",
        "vpc-conform1",
    )
    assert info["PGroup"] == {"PGroupId": "pgroupbasic", "Name": "默认权限组"}
    assert admin_fs(ref, info["FileSystemId"])["Tags"] == [{"TagKey": "team", "TagValue": "a"}]
    english = cfs.ok("DescribeCfsFileSystems", FileSystemId=created["FileSystemId"], InternationalFlag=1)
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
        ({"ResourceTags": [{"TagKey": " ", "TagValue": "v"}]}, "InvalidParameter.InvalidTagKey"),
        # docs "使用标签": at most 50 tags; keys of digits, letters, +=.@- up to 255 characters, not
        # starting qcloud / tencent / project; values empty or the same characters up to 127
        (
            {"ResourceTags": [{"TagKey": f"k{n}", "TagValue": "v"} for n in range(51)]},
            "ResourceInsufficient.TagLimitExceeded",
        ),
        ({"ResourceTags": [{"TagKey": "qcloud-owner", "TagValue": "v"}]}, "InvalidParameter.InvalidTagKey"),
        ({"ResourceTags": [{"TagKey": "team name", "TagValue": "v"}]}, "InvalidParameter.InvalidTagKey"),
        ({"ResourceTags": [{"TagKey": "k" * 256, "TagValue": "v"}]}, "InvalidParameter.InvalidTagKey"),
        ({"ResourceTags": [{"TagKey": "team", "TagValue": "a/b"}]}, "InvalidParameterValue"),
        ({"ResourceTags": [{"TagKey": "team", "TagValue": "v" * 128}]}, "InvalidParameterValue"),
    ],
)
def test_create_file_system_errors(cfs, overrides, code):
    params = {"Zone": ZONE, "PGroupId": "pgroupbasic", "FsName": "conf_bad", **VPC, **overrides}
    cfs.fails(code, "CreateCfsFileSystem", **{k: v for k, v in params.items() if v is not None})


def test_tags_at_their_documented_limits_are_accepted(ref, cfs):
    tags = [{"TagKey": f"{n}" + "k" * 254, "TagValue": ""} for n in range(10)]  # 255 characters, empty value
    tags += [{"TagKey": f"a+=.@-{n}", "TagValue": "v" * 127} for n in range(40)]
    fs_id = new_fs(cfs, "conf_tags", ResourceTags=tags)
    assert admin_fs(ref, fs_id)["Tags"] == tags


def test_mount_ip_is_honoured_and_then_taken(cfs):
    fs_id = new_fs(cfs, "conf_ip", MountIP="127.16.200.7")
    target = cfs.ok("DescribeMountTargets", FileSystemId=fs_id)["MountTargets"][0]
    assert target["IpAddress"] == "127.16.200.7"
    cfs.fails(
        "InvalidParameterValue.InvalidVip",
        "CreateCfsFileSystem",
        Zone=ZONE,
        PGroupId="pgroupbasic",
        FsName="conf_ip2",
        MountIP="127.16.200.7",
        **VPC,
    )


def test_basic_network_file_system(cfs):
    fs_id = cfs.ok(
        "CreateCfsFileSystem", Zone=ZONE, PGroupId="pgroupbasic", FsName="conf_basic", NetInterface="BASIC"
    )["FileSystemId"]
    assert (
        cfs.ok("DescribeMountTargets", FileSystemId=fs_id)["MountTargets"][0]["NetworkInterface"] == "BASIC"
    )


def test_describe_filters_and_pagination(cfs):
    ids = [new_fs(cfs, f"conf_page{n}", VpcId="vpc-paging", SubnetId=f"subnet-p{n % 2}") for n in range(5)]
    by_vpc = cfs.ok("DescribeCfsFileSystems", VpcId="vpc-paging")
    assert by_vpc["TotalCount"] == 5 and [f["FileSystemId"] for f in by_vpc["FileSystems"]] == ids
    page = cfs.ok("DescribeCfsFileSystems", VpcId="vpc-paging", Offset=1, Limit=2)
    assert page["TotalCount"] == 5 and [f["FileSystemId"] for f in page["FileSystems"]] == ids[1:3]
    assert cfs.ok("DescribeCfsFileSystems", VpcId="vpc-paging", SubnetId="subnet-p1")["TotalCount"] == 2
    named = cfs.ok("DescribeCfsFileSystems", CreationToken="conf_page3")["FileSystems"]
    assert [f["FileSystemId"] for f in named] == [ids[3]]
    beyond = cfs.ok("DescribeCfsFileSystems", VpcId="vpc-paging", Offset=10)
    assert beyond == {**beyond, "TotalCount": 5, "FileSystems": []}
    cfs.fails("InvalidParameterValue.InvalidFileSystemId", "DescribeCfsFileSystems", FileSystemId="nfs-1")
    # FileSystemNotFound is not among DescribeCfsFileSystems' documented codes: an unknown id lists nothing
    assert cfs.ok("DescribeCfsFileSystems", FileSystemId="cfs-00000000")["FileSystems"] == []
    by_vpc_targets = cfs.ok("DescribeCfsFileSystemsByVpc", VpcId="vpc-paging", SubnetId="subnet-p0")
    assert by_vpc_targets["TotalCount"] == 3
    assert {t["FileSystemId"] for t in by_vpc_targets["MountTargets"]} == {ids[0], ids[2], ids[4]}
    assert all(len(t["FSID"]) == 8 for t in by_vpc_targets["MountTargets"])
    # every filter applies, FileSystemId included
    assert cfs.ok("DescribeCfsFileSystems", FileSystemId=ids[1], VpcId="vpc-paging")["TotalCount"] == 1
    assert cfs.ok("DescribeCfsFileSystems", FileSystemId=ids[1], SubnetId="subnet-p0")["FileSystems"] == []
    # malformed network ids get the codes these actions document
    cfs.fails("InvalidParameterValue.InvalidVpcId", "DescribeCfsFileSystems", VpcId="net-1")
    cfs.fails("InvalidParameterValue.InvalidSubnetId", "DescribeCfsFileSystems", SubnetId="sn-1")
    cfs.fails("InvalidParameterValue.InvalidVpcId", "DescribeCfsFileSystemsByVpc", VpcId="net-1")
    cfs.fails(
        "InvalidParameterValue.InvalidSubnetId",
        "DescribeCfsFileSystemsByVpc",
        VpcId="vpc-paging",
        SubnetId="sn-1",
    )


def test_rename_size_limit_and_clients(cfs):
    fs_id = new_fs(cfs, "conf_rename")
    renamed = cfs.ok("UpdateCfsFileSystemName", FileSystemId=fs_id, FsName="conf_renamed")
    assert (renamed["FsName"], renamed["CreationToken"]) == ("conf_renamed", "conf_renamed")
    assert describe_fs(cfs, fs_id)["FsName"] == "conf_renamed"
    cfs.fails(
        "InvalidParameterValue.FsNameLimitExceeded",
        "UpdateCfsFileSystemName",
        FileSystemId=fs_id,
        FsName="名" * 22,
    )  # 66 bytes in UTF-8
    cfs.fails(
        "ResourceNotFound.FileSystemNotFound",
        "UpdateCfsFileSystemName",
        FileSystemId="cfs-00000000",
        FsName="x",
    )
    cfs.ok("UpdateCfsFileSystemSizeLimit", FileSystemId=fs_id, FsLimit=1073741824)
    assert describe_fs(cfs, fs_id)["SizeLimit"] == 1073741824
    cfs.ok("UpdateCfsFileSystemSizeLimit", FileSystemId=fs_id, FsLimit=0)  # 0 = unlimited
    message = cfs.fails(
        "InvalidParameterValue.FsSizeLimitExceeded",
        "UpdateCfsFileSystemSizeLimit",
        FileSystemId=fs_id,
        FsLimit=1073741825,
    )
    assert "FsLimit" in message and "1073741824" in message
    assert cfs.ok("DescribeCfsFileSystemClients", FileSystemId=fs_id)["ClientList"] == []
    cfs.fails(
        "ResourceNotFound.FileSystemNotFound", "DescribeCfsFileSystemClients", FileSystemId="cfs-00000000"
    )
    for action in ("DescribeCfsFileSystemClients", "DescribeMountTargets", "DescribeCfsFileSystems"):
        cfs.fails("InvalidParameterValue.MissingFileSystemId", action, FileSystemId="")


def test_size_byte_reflects_stored_data(ref, cfs):
    fs_id = new_fs(cfs, "conf_size")
    describe_fs(cfs, fs_id)
    data_dir = admin_fs(ref, fs_id)["DataDir"]
    with open(f"{data_dir}/blob", "wb") as blob:
        blob.write(b"x" * 12345)
    deadline = time.monotonic() + 5
    while describe_fs(cfs, fs_id)["SizeByte"] != 12345:
        assert time.monotonic() < deadline, "SizeByte never caught up with the data directory"
        time.sleep(0.2)


def test_delete_file_system_and_mount_target_errors(cfs):
    fs_id = new_fs(cfs, "conf_delete")
    describe_fs(cfs, fs_id)
    cfs.ok("DeleteCfsFileSystem", FileSystemId=fs_id)
    cfs.fails("ResourceNotFound.FileSystemNotFound", "DeleteCfsFileSystem", FileSystemId=fs_id)
    cfs.fails("ResourceNotFound.FileSystemNotFound", "DescribeMountTargets", FileSystemId=fs_id)


def test_create_failed_outcome(ref, cfs):
    ref.admin.set_faults([], create_failed_rate=1.0)
    try:
        fs_id = new_fs(cfs, "conf_failed")
    finally:
        ref.admin.set_faults([])
    assert describe_fs(cfs, fs_id)["LifeCycleState"] == "create_failed"
    cfs.fails("ResourceNotFound.MountTargetNotFound", "DescribeMountTargets", FileSystemId=fs_id)
    cfs.ok("DeleteCfsFileSystem", FileSystemId=fs_id)


# ---- permission groups and rules ----


def test_permission_group_crud_and_errors(cfs):
    group = cfs.ok("CreateCfsPGroup", Name="conf_组-1", DescInfo="first")
    assert group["BindCfsNum"] == 0 and group["CDate"]
    gid = group["PGroupId"]
    cfs.fails("InvalidParameterValue.DuplicatedPgroupName", "CreateCfsPGroup", Name="conf_组-1")
    cfs.fails("InvalidParameterValue.InvalidPgroupName", "CreateCfsPGroup", Name="has space")
    cfs.fails("InvalidParameterValue.MissingPgroupName", "CreateCfsPGroup", Name="")
    cfs.fails("InvalidParameterValue.PgroupNameLimitExceeded", "CreateCfsPGroup", Name="n" * 65)
    cfs.fails(
        "InvalidParameterValue.PgroupDescinfoLimitExceeded",
        "CreateCfsPGroup",
        Name="conf_desc",
        DescInfo="d" * 256,
    )
    updated = cfs.ok("UpdateCfsPGroup", PGroupId=gid, DescInfo="second")
    assert (updated["Name"], updated["DescInfo"]) == ("conf_组-1", "second")
    cfs.fails("InvalidParameterValue.MissingNameOrDescinfo", "UpdateCfsPGroup", PGroupId=gid)
    cfs.fails("ResourceNotFound.PgroupNotFound", "UpdateCfsPGroup", PGroupId="pgroup-00000000", Name="x")
    cfs.fails("UnsupportedOperation", "UpdateCfsPGroup", PGroupId="pgroupbasic", Name="mine")
    cfs.fails("UnsupportedOperation", "DeleteCfsPGroup", PGroupId="pgroupbasic")
    deleted = cfs.ok("DeleteCfsPGroup", PGroupId=gid)
    assert deleted["PGroupId"] == gid
    cfs.fails("ResourceNotFound.PgroupNotFound", "DeleteCfsPGroup", PGroupId=gid)


def test_describe_pgroups_filters_order_and_pages(cfs):
    ids = [cfs.ok("CreateCfsPGroup", Name=f"conf_list{n}", DescInfo=f"list{n}")["PGroupId"] for n in range(3)]
    fs_id = new_fs(cfs, "conf_bound", PGroupId=ids[1])
    listed = cfs.ok("DescribeCfsPGroups")
    assert [g["PGroupId"] for g in listed["PGroupList"]][-3:] == ids  # creation order
    by_binding = cfs.ok("DescribeCfsPGroups", OrderBy="BindCfsNum", OrderByType="DESC")
    ours = [g for g in by_binding["PGroupList"] if g["PGroupId"] in ids]
    assert [(g["PGroupId"], g["BindCfsNum"]) for g in ours][0] == (ids[1], 1)
    counts = [g["BindCfsNum"] for g in by_binding["PGroupList"]]
    assert counts == sorted(counts, reverse=True)
    page = cfs.ok("DescribeCfsPGroups", Offset=listed["TotalCount"] - 1, Limit=5)
    assert [g["PGroupId"] for g in page["PGroupList"]] == ids[2:]
    assert [g["PGroupId"] for g in cfs.ok("DescribeCfsPGroups", Name="conf_list1")["PGroupList"]] == [ids[1]]
    assert cfs.ok("DescribeCfsPGroups", DescInfo="list2")["PGroupList"][0]["PGroupId"] == ids[2]
    assert cfs.ok("DescribeCfsPGroups", PGroupId=ids[0])["TotalCount"] == 1
    cfs.fails("InvalidParameterValue", "DescribeCfsPGroups", OrderBy="Name")
    cfs.fails("InvalidParameterValue", "DescribeCfsPGroups", OrderByType="UP")
    english = cfs.ok("DescribeCfsPGroups", PGroupId="pgroupbasic", InternationalFlag=1)
    assert english["PGroupList"][0]["Name"] == "Default permission group"
    cfs.fails("FailedOperation.PgroupInUse", "DeleteCfsPGroup", PGroupId=ids[1])
    cfs.ok("UpdateCfsFileSystemPGroup", FileSystemId=fs_id, PGroupId=ids[0])
    assert describe_fs(cfs, fs_id)["PGroup"]["PGroupId"] == ids[0]
    cfs.fails(
        "ResourceNotFound.PgroupNotFound",
        "UpdateCfsFileSystemPGroup",
        FileSystemId=fs_id,
        PGroupId="pgroup-00000000",
    )


def test_rules_crud_defaults_and_errors(cfs):
    gid = cfs.ok("CreateCfsPGroup", Name="conf_rules")["PGroupId"]
    rule = cfs.ok("CreateCfsRule", PGroupId=gid, AuthClientIp="10.1.10.11", Priority=1)
    assert (rule["RWPermission"], rule["UserPermission"], rule["PGroupId"]) == ("RO", "root_squash", gid)
    cidr = cfs.ok(
        "CreateCfsRule",
        PGroupId=gid,
        AuthClientIp="10.10.1.0/24",
        Priority=100,
        RWPermission="RW",
        UserPermission="all_squash",
    )
    star = cfs.ok(
        "CreateCfsRule", PGroupId=gid, AuthClientIp="*", Priority=50, UserPermission="no_all_squash"
    )
    listed = cfs.ok("DescribeCfsRules", PGroupId=gid)["RuleList"]
    assert [r["RuleId"] for r in listed] == [rule["RuleId"], star["RuleId"], cidr["RuleId"]]  # by priority
    updated = cfs.ok("UpdateCfsRule", PGroupId=gid, RuleId=rule["RuleId"], RWPermission="RW")
    assert (
        updated["AuthClientIp"],
        updated["RWPermission"],
        updated["UserPermission"],
        updated["Priority"],
    ) == ("10.1.10.11", "RW", "root_squash", 1)
    for params, code in [
        ({"AuthClientIp": "10.1.10.256", "Priority": 5}, "InvalidParameterValue.InvalidAuthClientIp"),
        ({"AuthClientIp": "10.1.10.1/24", "Priority": 5}, "InvalidParameterValue.InvalidAuthClientIp"),
        ({"AuthClientIp": "10.2.0.1", "Priority": 0}, "InvalidParameterValue.InvalidPriority"),
        ({"AuthClientIp": "10.2.0.1", "Priority": 101}, "InvalidParameterValue.InvalidPriority"),
        (
            {"AuthClientIp": "10.2.0.1", "Priority": 5, "RWPermission": "WO"},
            "InvalidParameterValue.InvalidRwPermission",
        ),
        (
            {"AuthClientIp": "10.2.0.1", "Priority": 5, "UserPermission": "squash_all"},
            "InvalidParameterValue.InvalidUserPermission",
        ),
        ({"AuthClientIp": "10.1.10.11", "Priority": 5}, "InvalidParameterValue.DuplicatedRuleAuthClientIp"),
    ]:
        message = cfs.fails(code, "CreateCfsRule", PGroupId=gid, **params)
        assert any(
            field in message
            for field in ("AuthClientIp", "Priority", "RWPermission", "UserPermission", "10.1.10.11")
        )
    cfs.fails(
        "ResourceNotFound.PgroupNotFound",
        "CreateCfsRule",
        PGroupId="pgroup-00000000",
        AuthClientIp="1.1.1.1",
        Priority=1,
    )
    cfs.fails(
        "UnsupportedOperation", "CreateCfsRule", PGroupId="pgroupbasic", AuthClientIp="1.1.1.1", Priority=1
    )
    other = cfs.ok("CreateCfsPGroup", Name="conf_rules_other")["PGroupId"]
    cfs.fails(
        "InvalidParameterValue.RuleNotMatchPgroup",
        "UpdateCfsRule",
        PGroupId=other,
        RuleId=rule["RuleId"],
        Priority=2,
    )
    cfs.fails("ResourceNotFound.RuleNotFound", "DeleteCfsRule", PGroupId=gid, RuleId="rule-00000000")
    deleted = cfs.ok("DeleteCfsRule", PGroupId=gid, RuleId=cidr["RuleId"])
    assert deleted == {**deleted, "RuleId": cidr["RuleId"], "PGroupId": gid}
    assert len(cfs.ok("DescribeCfsRules", PGroupId=gid)["RuleList"]) == 2
    default_rules = cfs.ok("DescribeCfsRules", PGroupId="pgroupbasic")["RuleList"]
    assert [(r["AuthClientIp"], r["RWPermission"], r["UserPermission"]) for r in default_rules] == [
        ("*", "RW", "no_root_squash")
    ]


# ---- snapshots ----


def wait_snapshot(cfs, snap_id: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = cfs.ok("DescribeCfsSnapshots", SnapshotId=snap_id)["Snapshots"][0]
        if shown["Status"] != "creating" or time.monotonic() > deadline:
            return shown
        time.sleep(0.05)


def test_snapshot_lifecycle_update_and_delete(ref, cfs):
    fs_id = new_fs(cfs, "conf_snap")
    describe_fs(cfs, fs_id)
    ref.admin.configure(create_delay=0.5)  # long enough to see the "creating" states
    try:
        creating = new_fs(cfs, "conf_snap_creating")
        cfs.fails("InvalidParameterValue.InvalidFsStatus", "CreateCfsSnapshot", FileSystemId=creating)
        snap_id = cfs.ok("CreateCfsSnapshot", FileSystemId=fs_id, SnapshotName="conf_first")["SnapshotId"]
        cfs.fails("InvalidParameterValue.SnapSrcFsBusy", "CreateCfsSnapshot", FileSystemId=fs_id)
        cfs.fails("InvalidParameterValue.InvalidSnapStatus", "DeleteCfsSnapshot", SnapshotId=snap_id)
        cfs.fails("InvalidParameterValue.SnapSrcFsBusy", "DeleteCfsFileSystem", FileSystemId=fs_id)
        cfs.fails(
            "InvalidParameterValue.InvalidSnapStatus",
            "CreateCfsFileSystem",
            Zone=ZONE,
            PGroupId="pgroupbasic",
            FsName="conf_from_creating",
            SnapId=snap_id,
            **VPC,
        )
    finally:
        ref.admin.configure(create_delay=0.0)
    shown = wait_snapshot(cfs, snap_id)
    assert (shown["Status"], shown["FileSystemId"], shown["SnapshotName"], shown["FsName"]) == (
        "available",
        fs_id,
        "conf_first",
        "conf_snap",
    )
    cfs.ok("UpdateCfsSnapshotAttribute", SnapshotId=snap_id, SnapshotName="conf_renamed")
    assert wait_snapshot(cfs, snap_id)["SnapshotName"] == "conf_renamed"
    cfs.fails("MissingParameter", "UpdateCfsSnapshotAttribute", SnapshotId=snap_id)
    cfs.fails("InvalidParameterValue", "UpdateCfsSnapshotAttribute", SnapshotId=snap_id, AliveDays=7)
    cfs.fails(
        "ResourceNotFound.SnapNotExist",
        "UpdateCfsSnapshotAttribute",
        SnapshotId="cfssnap-00000000",
        SnapshotName="x",
    )
    cfs.fails("MissingParameter", "DeleteCfsSnapshot")
    assert cfs.ok("DeleteCfsSnapshot", SnapshotIds=[snap_id])["SnapshotId"] == snap_id
    cfs.fails("ResourceNotFound.SnapNotExist", "DeleteCfsSnapshot", SnapshotId=snap_id)
    cfs.ok("DeleteCfsFileSystem", FileSystemId=fs_id)


def test_describe_snapshots_filters_order_pages(cfs):
    fs_a, fs_b = new_fs(cfs, "conf_snaps_a"), new_fs(cfs, "conf_snaps_b")
    describe_fs(cfs, fs_b)
    made = []
    for n, fs_id in enumerate([fs_a, fs_b, fs_a]):
        made.append(cfs.ok("CreateCfsSnapshot", FileSystemId=fs_id, SnapshotName=f"conf_s{n}")["SnapshotId"])
        wait_snapshot(cfs, made[-1])
    of_a = cfs.ok("DescribeCfsSnapshots", FileSystemId=fs_a)
    assert of_a["TotalCount"] == 2 and [s["SnapshotId"] for s in of_a["Snapshots"]] == [made[0], made[2]]
    named = cfs.ok(
        "DescribeCfsSnapshots", Filters=[{"Name": "SnapshotName", "Values": ["conf_s1", "conf_s2"]}]
    )
    assert {s["SnapshotId"] for s in named["Snapshots"]} == {made[1], made[2]}
    by_fs_name = cfs.ok("DescribeCfsSnapshots", Filters=[{"Name": "FsName", "Values": ["conf_snaps_b"]}])
    assert [s["SnapshotId"] for s in by_fs_name["Snapshots"]] == [made[1]]
    newest_first = cfs.ok(
        "DescribeCfsSnapshots",
        Filters=[{"Name": "SnapshotId", "Values": made}],
        OrderField="SnapshotName",
        Order="DESC",
        Limit=2,
    )
    assert (
        newest_first["TotalCount"] == 3
        and [s["SnapshotId"] for s in newest_first["Snapshots"]] == made[:0:-1]
    )
    cfs.fails("InvalidParameterValue", "DescribeCfsSnapshots", Filters=[{"Name": "Colour", "Values": ["x"]}])
    assert cfs.ok("DescribeCfsSnapshots", SnapshotId="cfssnap-00000000")["TotalCount"] == 0


def test_snapshot_quota_is_one_hundred_per_file_system(cfs):
    fs_id = new_fs(cfs, "conf_quota")
    describe_fs(cfs, fs_id)
    for n in range(100):
        cfs.ok("CreateCfsSnapshot", FileSystemId=fs_id, SnapshotName=f"q{n}")
        cfs.ok("DescribeCfsServiceStatus")  # a request lets the snapshot finish (delay 0)
    message = cfs.fails("LimitExceeded", "CreateCfsSnapshot", FileSystemId=fs_id)
    assert "100" in message


def test_copy_snapshot_to_another_region(cfs, ref):
    fs_id = new_fs(cfs, "conf_copy")
    describe_fs(cfs, fs_id)
    ref.admin.configure(create_delay=0.5)
    try:
        snap_id = cfs.ok("CreateCfsSnapshot", FileSystemId=fs_id, SnapshotName="conf_src")["SnapshotId"]
        cfs.fails(
            "InvalidParameterValue.InvalidSnapStatus",
            "CopyFileSystemSnapshotCrossRegion",
            SnapshotId=snap_id,
            DestinationRegion="ap-beijing-fsi",
        )
    finally:
        ref.admin.configure(create_delay=0.0)
    wait_snapshot(cfs, snap_id)
    copied = cfs.ok(
        "CopyFileSystemSnapshotCrossRegion",
        SnapshotId=snap_id,
        DestinationRegion="ap-beijing-fsi",
        SnapshotName="conf_copy",
    )["Snapshots"][0]
    assert copied["RegionName"] == "ap-beijing-fsi" and copied["SnapId"].startswith("cfssnap-")
    beijing = sdk_client(ref)
    beijing.region = "ap-beijing-fsi"
    assert (
        call(beijing, "DescribeCfsSnapshots", SnapshotId=copied["SnapId"])["Snapshots"][0]["FileSystemId"]
        == fs_id
    )
    cfs.fails(
        "UnsupportedRegion",
        "CopyFileSystemSnapshotCrossRegion",
        SnapshotId=snap_id,
        DestinationRegion="ap-nowhere",
    )


# ---- automatic snapshot policies ----


def test_policies_crud_bind_and_errors(cfs):
    fs_a, fs_b = new_fs(cfs, "conf_pol_a"), new_fs(cfs, "conf_pol_b")
    policy_id = cfs.ok(
        "CreateAutoSnapshotPolicy", PolicyName="conf_policy", DayOfWeek="7,1", Hour="23,0", AliveDays=7
    )["AutoSnapshotPolicyId"]
    cfs.ok("BindAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id, FileSystemIds=f"{fs_a},{fs_b}")
    shown = cfs.ok("DescribeAutoSnapshotPolicies", AutoSnapshotPolicyId=policy_id)["AutoSnapshotPolicies"][0]
    assert (shown["DayOfWeek"], shown["Hour"], shown["AliveDays"], shown["FileSystemNums"]) == (
        "1,7",
        "0,23",
        7,
        2,
    )
    assert shown["NextActiveTime"] and set(shown) == AUTO_SNAPSHOT_POLICY_INFO
    assert sorted(f["FileSystemId"] for f in shown["FileSystems"]) == sorted([fs_a, fs_b])
    cfs.ok("UpdateAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id, Hour="3", IsActive=0)
    shown = cfs.ok(
        "DescribeAutoSnapshotPolicies",
        Filters=[{"Name": "AutoSnapshotPolicyName", "Values": ["conf_policy"]}],
    )["AutoSnapshotPolicies"][0]
    assert (shown["Hour"], shown["IsActive"]) == ("3", 0)
    cfs.ok("UnbindAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id, FileSystemIds=fs_a)
    shown = cfs.ok("DescribeAutoSnapshotPolicies", AutoSnapshotPolicyId=policy_id)["AutoSnapshotPolicies"][0]
    assert [f["FileSystemId"] for f in shown["FileSystems"]] == [fs_b]
    cfs.fails(
        "ResourceNotFound", "UnbindAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id, FileSystemIds=fs_a
    )
    cfs.fails(
        "ResourceNotFound.FileSystemNotFound",
        "BindAutoSnapshotPolicy",
        AutoSnapshotPolicyId=policy_id,
        FileSystemIds="cfs-00000000",
    )
    cfs.fails("InvalidParameterValue", "CreateAutoSnapshotPolicy", DayOfWeek="8", Hour="1")
    cfs.fails("InvalidParameterValue", "CreateAutoSnapshotPolicy", DayOfWeek="1", Hour="24")
    cfs.fails("InvalidParameterValue", "UpdateAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id, IsActive=2)
    cfs.ok("DeleteAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id)
    # the deleted policy's file system is free for another one
    other = cfs.ok("CreateAutoSnapshotPolicy", DayOfWeek="2", Hour="1")["AutoSnapshotPolicyId"]
    cfs.ok("BindAutoSnapshotPolicy", AutoSnapshotPolicyId=other, FileSystemIds=fs_b)
    assert (
        cfs.ok("DescribeAutoSnapshotPolicies", AutoSnapshotPolicyId=other)["AutoSnapshotPolicies"][0][
            "FileSystemNums"
        ]
        == 1
    )
    cfs.ok("DeleteAutoSnapshotPolicy", AutoSnapshotPolicyId=other)
    cfs.fails("ResourceNotFound", "DeleteAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id)


def test_policy_limits_thirty_policies_two_hundred_file_systems(cfs):
    existing = cfs.ok("DescribeAutoSnapshotPolicies", Limit=100)["TotalCount"]
    created = [
        cfs.ok("CreateAutoSnapshotPolicy", DayOfWeek="1", Hour="1")["AutoSnapshotPolicyId"]
        for _ in range(30 - existing)
    ]
    assert "30" in cfs.fails("LimitExceeded", "CreateAutoSnapshotPolicy", DayOfWeek="1", Hour="1")
    page = cfs.ok("DescribeAutoSnapshotPolicies", Offset=0, Limit=10)
    assert page["TotalCount"] == 30 and len(page["AutoSnapshotPolicies"]) == 10
    fs_ids = [new_fs(cfs, f"conf_bulk{n}", VpcId="vpc-bulk") for n in range(201)]
    cfs.ok("BindAutoSnapshotPolicy", AutoSnapshotPolicyId=created[0], FileSystemIds=",".join(fs_ids[:200]))
    assert "200" in cfs.fails(
        "LimitExceeded", "BindAutoSnapshotPolicy", AutoSnapshotPolicyId=created[0], FileSystemIds=fs_ids[200]
    )
    # binding moves a file system from its previous policy
    cfs.ok("BindAutoSnapshotPolicy", AutoSnapshotPolicyId=created[1], FileSystemIds=fs_ids[0])
    first = cfs.ok("DescribeAutoSnapshotPolicies", AutoSnapshotPolicyId=created[0])["AutoSnapshotPolicies"][0]
    assert first["FileSystemNums"] == 199
    for policy_id in created:
        cfs.ok("DeleteAutoSnapshotPolicy", AutoSnapshotPolicyId=policy_id)
    for fs_id in fs_ids:
        cfs.ok("DeleteCfsFileSystem", FileSystemId=fs_id)


# ---- service ----


def test_service_zones_tags_and_sign_up(cfs):
    assert cfs.ok("DescribeCfsServiceStatus")["CfsServiceStatus"] == "none"
    assert cfs.ok("SignUpCfsService")["CfsServiceStatus"] in ("creating", "created")
    assert cfs.ok("DescribeCfsServiceStatus")["CfsServiceStatus"] == "created"
    regions = cfs.ok("DescribeAvailableZoneInfo")["RegionZones"]
    shanghai = next(r for r in regions if r["Region"] == "ap-shanghai-fsi")
    zone = next(z for z in shanghai["Zones"] if z["Zone"] == ZONE)
    assert {t["Type"] for t in zone["Types"]} == {"SD", "HP"}
    tags = cfs.ok("DescribeCfsTags", ZoneId=zone["ZoneId"])["Tags"]
    assert tags[0]["ZoneId"] == zone["ZoneId"] and tags[0]["ISNFS"] == 1
    cfs.fails("InvalidParameterValue.InvalidZoneId", "DescribeCfsTags", ZoneId=1)


def test_every_2019_action_was_exercised(cfs):
    """Runs last in this module (pytest keeps file order): the catalogue is fully covered."""
    assert sorted(set(ACTIONS_2019) - cfs.exercised) == []
