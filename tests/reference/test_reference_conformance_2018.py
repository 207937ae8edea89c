"""Conformance, API 2018-04-16 (`Query*`), through the SDK's generic JSON call, over the same state
as 2019-07-19: numeric VpcId/SubnetId, Zone or ZoneId, rule defaults rw + no_root_squash in
lower case, FsLimit 1-1073741824, and the smaller 2018 data structures."""

from __future__ import annotations

import pytest

from cfs_reference.catalogue import ACTIONS_2018
from tests.support.reference import RecordingClient, call, running_reference, sdk_client

FILE_SYSTEM_2018_FIELDS = {
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
}


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    with running_reference(
        tmp_path_factory.mktemp("reference"), create_delay=0.0, extra_args=["--no-rate-limits"]
    ) as reference:
        yield reference


@pytest.fixture(scope="module")
def old(ref):
    return RecordingClient(sdk_client(ref, version="2018-04-16"))


@pytest.fixture(scope="module")
def new(ref):
    return sdk_client(ref)


def zone_id(old) -> int:
    regions = old.ok("QueryAvailableZoneInfo")["RegionZones"]
    zone = regions[0]["Zones"][0]
    assert set(zone) == {"Zone", "ZoneId", "ZoneCnName", "Types"}
    # VersionCtrlType: the 2018-04-16 storage types, all of which its CreateCfsFileSystem accepts
    assert [t["Type"] for t in zone["Types"]] == ["SD", "EP", "HP", "IA"]
    return zone["ZoneId"]


def test_file_system_with_numeric_vpc_and_zone_id(old, new):
    created = old.ok(
        "CreateCfsFileSystem",
        ZoneId=zone_id(old),
        NetInterface="VPC",
        PGroupId="pgroupbasic",
        VpcId=1001,
        SubnetId=2002,
        FsName="old_fs",
    )
    assert set(created) == {
        "CreationTime",
        "CreationToken",
        "FileSystemId",
        "LifeCycleState",
        "SizeByte",
        "ZoneId",
        "FsName",
        "Encrypted",
        "RequestId",
    }
    fs_id = created["FileSystemId"]
    shown = old.ok("QueryCfsFileSystem", FileSystemId=fs_id)["FileSystems"]
    assert len(shown) == 1 and set(shown[0]) == FILE_SYSTEM_2018_FIELDS
    assert shown[0]["LifeCycleState"] == "available"
    # the same state through 2019-07-19
    assert call(new, "DescribeCfsFileSystems", FileSystemId=fs_id)["FileSystems"][0]["VpcId"] == "1001"
    target = old.ok("QueryMountTarget", FileSystemId=fs_id)
    assert target["NumberOfMountTargets"] == 1 and "PGroupName" not in target["MountTargets"][0]
    collection = old.ok("QueryMountTargetsWithRegion", FileSystemId=fs_id)["MountTargetCollection"]
    assert collection == [
        {
            "NumberOfMountTargets": 1,
            "FileSystemId": fs_id,
            "MountTargets": [{"VpcId": "1001", "IpAddress": target["MountTargets"][0]["IpAddress"]}],
        }
    ]
    old.ok("UpdateCfsFileSystemName", FileSystemId=fs_id, CreationToken="old_renamed")
    assert old.ok("QueryCfsFileSystem", FileSystemId=fs_id)["FileSystems"][0]["FsName"] == "old_renamed"
    old.ok("UpdateCfsFileSystemSizeLimit", FileSystemId=fs_id, FsLimit=1)
    message = old.fails(
        "InvalidParameterValue.InvalidFsSizeLimit",
        "UpdateCfsFileSystemSizeLimit",
        FileSystemId=fs_id,
        FsLimit=0,
    )  # 2018-04-16: "输入范围1-1073741824"
    assert "FsLimit" in message
    old.ok("DeleteCfsFileSystem", FileSystemId=fs_id)
    old.fails("ResourceNotFound.FileSystemNotFound", "QueryMountTarget", FileSystemId=fs_id)
    assert old.ok("QueryCfsFileSystem", FileSystemId=fs_id)["FileSystems"] == []
    old.fails("InvalidParameterValue.InvalidFileSystemId", "QueryCfsFileSystem", FileSystemId="fs-1")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"VpcId": "vpc-string"}, "InvalidParameter"),  # Uint64 in 2018-04-16
        ({"Zone": None}, "InvalidParameterValue.MissingZoneOrZoneId"),
        ({"Zone": "ap-shanghai-fsi-9"}, "InvalidParameterValue.InvalidZoneOrZoneId"),
        ({"NetInterface": None}, "MissingParameter"),
        ({"SnapId": "cfssnap-00000000"}, "UnknownParameter"),  # 2019-07-19 only
        ({"StorageType": "IA"}, "InvalidParameterValue.MissingStorageResourcePkg"),
        ({"StorageType": "XX"}, "InvalidParameterValue.InvalidStorageType"),
    ],
)
def test_create_file_system_2018_errors(old, params, code):
    base = {
        "Zone": "ap-shanghai-fsi-1",
        "NetInterface": "VPC",
        "PGroupId": "pgroupbasic",
        "UnVpcId": "vpc-a",
        "UnSubnetId": "subnet-a",
    }
    old.fails(code, "CreateCfsFileSystem", **{k: v for k, v in {**base, **params}.items() if v is not None})


def test_unified_vpc_ids_and_unnamed_file_system(old):
    fs_id = old.ok(
        "CreateCfsFileSystem",
        Zone="ap-shanghai-fsi-2",
        NetInterface="VPC",
        PGroupId="pgroupbasic",
        UnVpcId="vpc-unified",
        UnSubnetId="subnet-unified",
        StorageType="IA",
        StorageResourcePkgId="pkg-1",
    )["FileSystemId"]
    assert old.ok("QueryCfsFileSystem", FileSystemId=fs_id)["FileSystems"][0]["StorageType"] == "IA"
    shown = old.ok("QueryCfsFileSystem", FileSystemId=fs_id, InternationalFlag=1)["FileSystems"][0]
    assert shown["FsName"] == "Unnamed" and shown["Zone"] == "ap-shanghai-fsi-2"
    assert old.ok("QueryCfsFileSystem", FileSystemId=fs_id)["FileSystems"][0]["FsName"] == "未命名"
    assert fs_id in {f["FileSystemId"] for f in old.ok("QueryCfsFileSystem")["FileSystems"]}


def test_groups_and_rules_2018_defaults(old, new):
    group = old.ok("CreateCfsPGroup", Name="old_group", DescInfo="old")
    gid = group["PGroupId"]
    assert {g["PGroupId"] for g in old.ok("QueryCfsPGroup")["PGroupList"]} >= {"pgroupbasic", gid}
    english = old.ok("QueryCfsPGroup", InternationalFlag=1)["PGroupList"]
    assert next(g for g in english if g["PGroupId"] == "pgroupbasic")["Name"] == "Default permission group"
    rule = old.ok("CreateCfsRule", PGroupId=gid, AuthClientIp="192.168.0.0/16", Priority=10)
    assert (rule["RWPermission"], rule["UserPermission"]) == ("rw", "no_root_squash")  # 2018 defaults
    updated = old.ok("UpdateCfsRule", PGroupId=gid, RuleId=rule["RuleId"], RWPermission="ro")
    assert updated["RWPermission"] == "ro"
    assert [r["RWPermission"] for r in old.ok("QueryCfsRule", PGroupId=gid)["RuleList"]] == ["ro"]
    assert [r["RWPermission"] for r in call(new, "DescribeCfsRules", PGroupId=gid)["RuleList"]] == ["RO"]
    old.fails(
        "InvalidParameterValue.InvalidRwPermission",
        "CreateCfsRule",
        PGroupId=gid,
        AuthClientIp="1.2.3.4",
        Priority=1,
        RWPermission="rx",
    )
    renamed = old.ok("UpdateCfsPGroup", PGroupId=gid, Name="old_group2")
    assert renamed["Name"] == "old_group2"
    fs_id = old.ok(
        "CreateCfsFileSystem", Zone="ap-shanghai-fsi-1", NetInterface="BASIC", PGroupId="pgroupbasic"
    )["FileSystemId"]
    assert old.ok("UpdateCfsFileSystemPGroup", FileSystemId=fs_id, PGroupId=gid)["PGroupId"] == gid
    old.fails("FailedOperation.PgroupInUse", "DeleteCfsPGroup", PGroupId=gid)
    old.ok("DeleteCfsFileSystem", FileSystemId=fs_id)
    old.ok("DeleteCfsRule", PGroupId=gid, RuleId=rule["RuleId"])
    assert old.ok("QueryCfsRule", PGroupId=gid)["RuleList"] == []
    old.ok("DeleteCfsPGroup", PGroupId=gid)
    old.fails("ResourceNotFound.PgroupNotFound", "QueryCfsRule", PGroupId=gid)


def test_service_status_and_sign_up(old):
    assert old.ok("QueryCfsServiceStatus")["CfsServiceStatus"] == "none"
    old.ok("SignUpCfsService")
    assert old.ok("QueryCfsServiceStatus")["CfsServiceStatus"] == "created"


def test_2019_only_actions_are_invalid_in_2018(old):
    old.fails("InvalidAction", "DescribeCfsFileSystems")
    old.fails("InvalidAction", "CreateCfsSnapshot", FileSystemId="cfs-00000000")


def test_every_2018_action_was_exercised(old):
    assert sorted(set(ACTIONS_2018) - old.exercised) == []
