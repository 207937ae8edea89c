"""API 2018-04-16 (`Query*` actions) over the same state as 2019-07-19.

Differences from 2019-07-19 that the docs state: numeric VpcId/SubnetId (with UnVpcId /
UnSubnetId strings), Zone or ZoneId, rule defaults rw + no_root_squash, RWPermission spelled
ro/rw, FsLimit 1-1073741824, and the smaller 2018 data structures.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from cfs_reference.api import v20190719 as v2019
from cfs_reference.api import views
from cfs_reference.backend import Backend
from cfs_reference.backend.file_systems import NewFileSystem
from cfs_reference.backend.limits import STORAGE_TYPES_2018

Params = dict[str, Any]
FILE_SYSTEM_INFO_2018 = (
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
)
MOUNT_INFO_2018 = (
    "FileSystemId",
    "MountTargetId",
    "IpAddress",
    "FSID",
    "LifeCycleState",
    "NetworkInterface",
    "VpcId",
    "VpcName",
    "SubnetId",
    "SubnetName",
)


def _pick(info: Params, fields: tuple[str, ...]) -> Params:
    return {name: info[name] for name in fields}


def _network_id(number: int | None, unified: str | None) -> str | None:
    """2018 takes a numeric id (VpcId / SubnetId) or the unified string id (UnVpcId / UnSubnetId)."""
    return unified or (str(number) if number is not None else None)


def create_cfs_file_system(backend: Backend, region: str, p: Params) -> Params:
    fs = backend.create_file_system(
        region,
        NewFileSystem(
            zone=p.get("Zone"),
            zone_id=p.get("ZoneId"),
            net_interface=p["NetInterface"],
            pgroup_id=p["PGroupId"],
            vpc_id=_network_id(p.get("VpcId"), p.get("UnVpcId")),
            subnet_id=_network_id(p.get("SubnetId"), p.get("UnSubnetId")),
            mount_ip=p.get("MountIP"),
            name=p.get("FsName") or p.get("CreationToken") or "",
            protocol=p.get("Protocol"),
            storage_type=p.get("StorageType"),
            storage_types=STORAGE_TYPES_2018,
            storage_package_id=p.get("StorageResourcePkgId", ""),
            encrypted=p.get("Encrypted", False),
            kms_key_id=p.get("KmsKeyId", ""),
        ),
    )
    return v2019.created_reply(fs)


def query_cfs_file_system(backend: Backend, region: str, p: Params) -> Params:
    lang = views.language(p.get("InternationalFlag"))
    found = backend.file_systems.describe(region, p.get("FileSystemId"))
    return {
        "FileSystems": [
            _pick(views.file_system_info(backend, fs, lang), FILE_SYSTEM_INFO_2018) for fs in found
        ]
    }


def query_mount_target(backend: Backend, region: str, p: Params) -> Params:
    targets = backend.file_systems.mount_targets(region, p["FileSystemId"])
    return {
        "MountTargets": [_pick(views.mount_info(backend, fs), MOUNT_INFO_2018) for fs in targets],
        "NumberOfMountTargets": len(targets),
    }


def query_mount_targets_with_region(backend: Backend, region: str, p: Params) -> Params:
    found = [
        fs
        for fs in backend.file_systems.describe(region, p.get("FileSystemId"))
        if fs["state"] == "available"
    ]
    return {
        "MountTargetCollection": [
            {
                "NumberOfMountTargets": 1,
                "FileSystemId": fs["id"],
                "MountTargets": [{"VpcId": fs["vpc_id"], "IpAddress": fs["ip"]}],
            }
            for fs in found
        ]
    }


def update_cfs_file_system_size_limit(backend: Backend, region: str, p: Params) -> Params:
    backend.file_systems.set_size_limit(region, p["FileSystemId"], p["FsLimit"], minimum=1)
    return {}


def query_cfs_pgroup(backend: Backend, region: str, p: Params) -> Params:
    lang = views.language(p.get("InternationalFlag"))
    return {
        "PGroupList": [views.pgroup_info(backend, region, g, lang) for g in backend.groups.describe(region)]
    }


def create_cfs_rule(backend: Backend, region: str, p: Params) -> Params:
    # 2018-04-16 defaults: "不填默认为读写", "不填默认为no_root_squash"
    rule = backend.groups.create_rule(region, p["PGroupId"], v2019.rule_fields(p, "RW", "no_root_squash"))
    return v2019.rule_reply(rule, lower_case_access=True)


def update_cfs_rule(backend: Backend, region: str, p: Params) -> Params:
    rule = backend.groups.update_rule(region, p["PGroupId"], p["RuleId"], v2019.rule_fields(p, None, None))
    return v2019.rule_reply(rule, lower_case_access=True)


def query_cfs_rule(backend: Backend, region: str, p: Params) -> Params:
    rules = backend.groups.rules(region, p["PGroupId"])
    return {"RuleList": [views.rule_info(r, lower_case_access=True) for r in rules]}


def query_available_zone_info(backend: Backend, region: str, p: Params) -> Params:
    # VersionCtrlType: 2018-04-16 sells "SD" 标准、"EP" 极速型、"HP" 高性能、"IA" 低频
    regions = v2019.region_zones(backend, STORAGE_TYPES_2018)
    return {
        "RegionZones": [
            {
                "Region": r["Region"],
                "RegionName": r["RegionName"],
                "RegionStatus": r["RegionStatus"],
                "Zones": [_pick(z, ("Zone", "ZoneId", "ZoneCnName", "Types")) for z in r["Zones"]],
            }
            for r in regions
        ]
    }


HANDLERS = MappingProxyType(
    {
        "CreateCfsFileSystem": create_cfs_file_system,
        "CreateCfsPGroup": v2019.create_cfs_pgroup,
        "CreateCfsRule": create_cfs_rule,
        "DeleteCfsFileSystem": v2019.delete_cfs_file_system,
        "DeleteCfsPGroup": v2019.delete_cfs_pgroup,
        "DeleteCfsRule": v2019.delete_cfs_rule,
        "QueryAvailableZoneInfo": query_available_zone_info,
        "QueryCfsFileSystem": query_cfs_file_system,
        "QueryCfsPGroup": query_cfs_pgroup,
        "QueryCfsRule": query_cfs_rule,
        "QueryCfsServiceStatus": v2019.describe_cfs_service_status,
        "QueryMountTarget": query_mount_target,
        "QueryMountTargetsWithRegion": query_mount_targets_with_region,
        "SignUpCfsService": v2019.sign_up_cfs_service,
        "UpdateCfsFileSystemName": v2019.update_cfs_file_system_name,
        "UpdateCfsFileSystemPGroup": v2019.update_cfs_file_system_pgroup,
        "UpdateCfsFileSystemSizeLimit": update_cfs_file_system_size_limit,
        "UpdateCfsPGroup": v2019.update_cfs_pgroup,
        "UpdateCfsRule": update_cfs_rule,
    }
)
