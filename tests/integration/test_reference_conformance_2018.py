"""Conformance, API 2018-04-16 (`Query*`), through the SDK's generic JSON call, over the same state
as 2019-07-19: numeric VpcId/SubnetId, Zone or ZoneId, rule defaults rw + no_root_squash in
lower case, FsLimit 1-1073741824, and the smaller 2018 data structures."""

from __future__ import annotations

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from cfs_reference.catalogue import ACTIONS_2018
from tests.support.reference import call, running_reference, sdk_client

EXERCISED: set[str] = set()
FILE_SYSTEM_2018_FIELDS = {
    "CreationTime", "CreationToken", "FileSystemId", "LifeCycleState", "SizeByte", "SizeLimit", "ZoneId", "Zone",
    "Protocol", "StorageType", "StorageResourcePkg", "BandwidthResourcePkg", "PGroup", "FsName", "Encrypted",
    "KmsKeyId",
}


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    with running_reference(tmp_path_factory.mktemp("reference"), create_delay=0.0,
                           extra_args=["--no-rate-limits"]) as reference:
        yield reference


@pytest.fixture(scope="module")
def old(ref):
    return sdk_client(ref, version="2018-04-16")


@pytest.fixture(scope="module")
def new(ref):
    return sdk_client(ref)


def ok(client, action: str, **params) -> dict:
    EXERCISED.add(action)
    return call(client, action, **params)


def fails(client, code: str, action: str, **params) -> str:
    EXERCISED.add(action)
    with pytest.raises(TencentCloudSDKException) as caught:
        call(client, action, **params)
    assert caught.value.code == code, caught.value.message
    return caught.value.message


def zone_id(old) -> int:
    regions = ok(old, "QueryAvailableZoneInfo")["RegionZones"]
    zone = regions[0]["Zones"][0]
    assert set(zone) == {"Zone", "ZoneId", "ZoneCnName", "Types"}
    return zone["ZoneId"]


def test_file_system_with_numeric_vpc_and_zone_id(old, new):
    created = ok(old, "CreateCfsFileSystem", ZoneId=zone_id(old), NetInterface="VPC", PGroupId="pgroupbasic",
                 VpcId=1001, SubnetId=2002, FsName="old_fs")
    assert set(created) == {"CreationTime", "CreationToken", "FileSystemId", "LifeCycleState", "SizeByte",
                            "ZoneId", "FsName", "Encrypted", "RequestId"}
    fs_id = created["FileSystemId"]
    shown = ok(old, "QueryCfsFileSystem", FileSystemId=fs_id)["FileSystems"]
    assert len(shown) == 1 and set(shown[0]) == FILE_SYSTEM_2018_FIELDS
    assert shown[0]["LifeCycleState"] == "available"
    # the same state through 2019-07-19
    assert call(new, "DescribeCfsFileSystems", FileSystemId=fs_id)["FileSystems"][0]["VpcId"] == "1001"
    target = ok(old, "QueryMountTarget", FileSystemId=fs_id)
    assert target["NumberOfMountTargets"] == 1 and "PGroupName" not in target["MountTargets"][0]
    collection = ok(old, "QueryMountTargetsWithRegion", FileSystemId=fs_id)["MountTargetCollection"]
    assert collection == [{"NumberOfMountTargets": 1, "FileSystemId": fs_id,
                           "MountTargets": [{"VpcId": "1001", "IpAddress": target["MountTargets"][0]["IpAddress"]}]}]
    ok(old, "UpdateCfsFileSystemName", FileSystemId=fs_id, CreationToken="old_renamed")
    assert ok(old, "QueryCfsFileSystem", FileSystemId=fs_id)["FileSystems"][0]["FsName"] == "old_renamed"
    ok(old, "UpdateCfsFileSystemSizeLimit", FileSystemId=fs_id, FsLimit=1)
    message = fails(old, "InvalidParameterValue.InvalidFsSizeLimit", "UpdateCfsFileSystemSizeLimit",
                    FileSystemId=fs_id, FsLimit=0)  # 2018-04-16: "输入范围1-1073741824"
    assert "FsLimit" in message
    ok(old, "DeleteCfsFileSystem", FileSystemId=fs_id)
    fails(old, "ResourceNotFound.FileSystemNotFound", "QueryMountTarget", FileSystemId=fs_id)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"VpcId": "vpc-string"}, "InvalidParameter"),  # Uint64 in 2018-04-16
        ({"Zone": None}, "InvalidParameterValue.MissingZoneOrZoneId"),
        ({"Zone": "ap-shanghai-fsi-9"}, "InvalidParameterValue.InvalidZoneOrZoneId"),
        ({"NetInterface": None}, "MissingParameter"),
        ({"SnapId": "cfssnap-00000000"}, "UnknownParameter"),  # 2019-07-19 only
    ],
)
def test_create_file_system_2018_errors(old, params, code):
    base = {"Zone": "ap-shanghai-fsi-1", "NetInterface": "VPC", "PGroupId": "pgroupbasic", "UnVpcId": "vpc-a",
            "UnSubnetId": "subnet-a"}
    fails(old, code, "CreateCfsFileSystem", **{k: v for k, v in {**base, **params}.items() if v is not None})


def test_unified_vpc_ids_and_unnamed_file_system(old):
    fs_id = ok(old, "CreateCfsFileSystem", Zone="ap-shanghai-fsi-2", NetInterface="VPC", PGroupId="pgroupbasic",
               UnVpcId="vpc-unified", UnSubnetId="subnet-unified")["FileSystemId"]
    shown = ok(old, "QueryCfsFileSystem", FileSystemId=fs_id, InternationalFlag=1)["FileSystems"][0]
    assert shown["FsName"] == "Unnamed" and shown["Zone"] == "ap-shanghai-fsi-2"
    assert ok(old, "QueryCfsFileSystem", FileSystemId=fs_id)["FileSystems"][0]["FsName"] == "未命名"
    assert fs_id in {f["FileSystemId"] for f in ok(old, "QueryCfsFileSystem")["FileSystems"]}


def test_groups_and_rules_2018_defaults(old, new):
    group = ok(old, "CreateCfsPGroup", Name="old_group", DescInfo="old")
    gid = group["PGroupId"]
    assert {g["PGroupId"] for g in ok(old, "QueryCfsPGroup")["PGroupList"]} >= {"pgroupbasic", gid}
    english = ok(old, "QueryCfsPGroup", InternationalFlag=1)["PGroupList"]
    assert next(g for g in english if g["PGroupId"] == "pgroupbasic")["Name"] == "Default permission group"
    rule = ok(old, "CreateCfsRule", PGroupId=gid, AuthClientIp="192.168.0.0/16", Priority=10)
    assert (rule["RWPermission"], rule["UserPermission"]) == ("rw", "no_root_squash")  # 2018 defaults
    updated = ok(old, "UpdateCfsRule", PGroupId=gid, RuleId=rule["RuleId"], RWPermission="ro")
    assert updated["RWPermission"] == "ro"
    assert [r["RWPermission"] for r in ok(old, "QueryCfsRule", PGroupId=gid)["RuleList"]] == ["ro"]
    assert [r["RWPermission"] for r in call(new, "DescribeCfsRules", PGroupId=gid)["RuleList"]] == ["RO"]
    fails(old, "InvalidParameterValue.InvalidRwPermission", "CreateCfsRule", PGroupId=gid, AuthClientIp="1.2.3.4",
          Priority=1, RWPermission="rx")
    renamed = ok(old, "UpdateCfsPGroup", PGroupId=gid, Name="old_group2")
    assert renamed["Name"] == "old_group2"
    fs_id = ok(old, "CreateCfsFileSystem", Zone="ap-shanghai-fsi-1", NetInterface="BASIC",
               PGroupId="pgroupbasic")["FileSystemId"]
    assert ok(old, "UpdateCfsFileSystemPGroup", FileSystemId=fs_id, PGroupId=gid)["PGroupId"] == gid
    fails(old, "FailedOperation.PgroupInUse", "DeleteCfsPGroup", PGroupId=gid)
    ok(old, "DeleteCfsFileSystem", FileSystemId=fs_id)
    ok(old, "DeleteCfsRule", PGroupId=gid, RuleId=rule["RuleId"])
    assert ok(old, "QueryCfsRule", PGroupId=gid)["RuleList"] == []
    ok(old, "DeleteCfsPGroup", PGroupId=gid)
    fails(old, "ResourceNotFound.PgroupNotFound", "QueryCfsRule", PGroupId=gid)


def test_service_status_and_sign_up(old):
    assert ok(old, "QueryCfsServiceStatus")["CfsServiceStatus"] == "none"
    ok(old, "SignUpCfsService")
    assert ok(old, "QueryCfsServiceStatus")["CfsServiceStatus"] == "created"


def test_2019_only_actions_are_invalid_in_2018(old):
    fails(old, "InvalidAction", "DescribeCfsFileSystems")
    fails(old, "InvalidAction", "CreateCfsSnapshot", FileSystemId="cfs-00000000")


def test_every_2018_action_was_exercised():
    assert sorted(set(ACTIONS_2018) - EXERCISED) == []
