"""Backend records rendered as the docs' data structures (FileSystemInfo, MountInfo, PGroupInfo, ...)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from cfs_reference import ids
from cfs_reference.backend import Backend
from cfs_reference.backend.groups import DEFAULT_PGROUP_NAMES
from cfs_reference.backend.limits import FS_LIMIT_MAX_GB
from cfs_reference.backend.state import FILE_SYSTEM, PGROUP, SNAPSHOT, timestamp_text
from cfs_reference.errors import invalid_value

APP_ID = 1250000000  # the one account this service serves
UNNAMED = MappingProxyType({"zh": "未命名", "en": "Unnamed"})
MIB = 1024 * 1024
# FileSystemClient: LinkStatus 1 "已链接"; MonitorStatus 2 "未安装监控".
LINK_CONNECTED = 1
MONITOR_NOT_INSTALLED = 2


def language(international_flag: int | None) -> str:
    """InternationalFlag=1: default names in English ("此选项值为1时 ... 使用英文")."""
    return "en" if international_flag == 1 else "zh"


def pgroup_name(group: dict[str, Any], lang: str) -> str:
    return DEFAULT_PGROUP_NAMES[lang] if group["id"] == ids.DEFAULT_PGROUP_ID else group["name"]


def file_system_info(backend: Backend, fs: dict[str, Any], lang: str = "zh") -> dict[str, Any]:
    """FileSystemInfo (2019-07-19), exactly the documented fields; the 2018-04-16 structure is a
    subset of it."""
    group = backend.state.tables[PGROUP].get(fs["pgroup_id"], {"id": fs["pgroup_id"], "name": ""})
    name = fs["name"] or UNNAMED[lang]
    snapshot = backend.state.tables[SNAPSHOT].get(fs["snap_id"])
    return {
        "CreationTime": timestamp_text(fs["created_at"]),
        "CreationToken": name,
        "FileSystemId": fs["id"],
        "LifeCycleState": fs["state"],
        "SizeByte": backend.file_systems.size_bytes(fs),
        "SizeLimit": fs["size_limit_gb"],
        "ZoneId": fs["zone_id"],
        "Zone": fs["zone"],
        "Protocol": fs["protocol"],
        "StorageType": fs["storage_type"],
        "StorageResourcePkg": "",
        "BandwidthResourcePkg": "",
        "PGroup": {"PGroupId": group["id"], "Name": pgroup_name(group, lang)},
        "FsName": name,
        "Encrypted": fs["encrypted"],
        "KmsKeyId": fs["kms_key_id"],
        "SizeLimitMax": FS_LIMIT_MAX_GB,
        "VpcId": fs["vpc_id"],
        "IpAddress": fs["ip"],
        "AllocedSpace": 0,
        "TagId": 0,
        "TagName": "",
        "SnapId": fs["snap_id"],
        "SnapStatus": snapshot["state"] if snapshot else "",
        "BandwidthLimit": 0,
        "AppId": APP_ID,
    }


def tag_list(tags: list) -> list[dict[str, str]]:
    """Stored (key, value) pairs as TagInfo items."""
    return [{"TagKey": key, "TagValue": value} for key, value in tags]


def mount_info(backend: Backend, fs: dict[str, Any]) -> dict[str, Any]:
    group = backend.state.tables[PGROUP].get(fs["pgroup_id"], {"id": "", "name": ""})
    return {
        "FileSystemId": fs["id"],
        "MountTargetId": fs["id"],
        "IpAddress": fs["ip"],
        "FSID": fs["fsid"],
        "LifeCycleState": fs["state"],
        "NetworkInterface": fs["net_interface"],
        "VpcId": fs["vpc_id"],
        "VpcName": fs["vpc_id"],
        "SubnetId": fs["subnet_id"],
        "SubnetName": fs["subnet_id"],
        "PGroupName": pgroup_name(group, "zh"),
    }


def file_system_client(fs: dict[str, Any], client_ip: str) -> dict[str, Any]:
    """FileSystemClient of a connected client (cfs_reference.nfs.clients)."""
    return {
        "CfsVip": fs["ip"],
        "ClientIp": client_ip,
        "VpcId": fs["vpc_id"],
        "Zone": fs["zone"],
        "ZoneName": fs["zone"],
        "MountDirectory": "",
        "ZoneId": fs["zone_id"],
        "LinkStatus": LINK_CONNECTED,
        "MonitorStatus": MONITOR_NOT_INSTALLED,
        "Protocol": "",
    }


def pgroup_info(backend: Backend, region: str, group: dict[str, Any], lang: str = "zh") -> dict[str, Any]:
    return {
        "PGroupId": group["id"],
        "Name": pgroup_name(group, lang),
        "DescInfo": group["desc"],
        "CDate": timestamp_text(group["created_at"]),
        "BindCfsNum": len(backend.groups.bound_file_systems(region, group["id"])),
    }


def rule_info(rule: dict[str, Any], lower_case_access: bool = False) -> dict[str, Any]:
    """PGroupRuleInfo; 2018-04-16 spells RWPermission ro/rw, 2019-07-19 RO/RW."""
    return {
        "RuleId": rule["id"],
        "AuthClientIp": rule["client"],
        "RWPermission": rule["access"].lower() if lower_case_access else rule["access"],
        "UserPermission": rule["squash"],
        "Priority": rule["priority"],
    }


def snapshot_info(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {
        "CreationTime": timestamp_text(snapshot["created_at"]),
        "SnapshotName": snapshot["name"],
        "SnapshotId": snapshot["id"],
        "Status": snapshot["state"],
        "RegionName": snapshot["region"],
        "FileSystemId": snapshot["fs_id"],
        "Size": snapshot["size_bytes"] // MIB,  # "快照大小 单位：MiB"
        "AliveDay": snapshot["alive_days"],
        "Percent": 100 if snapshot["state"] == "available" else 0,
        "AppId": APP_ID,
        "DeleteTime": "",
        "FsName": snapshot["fs_name"],
        "Tags": tag_list(snapshot["tags"]),
        "SnapshotType": "general",
        "SnapshotTime": timestamp_text(snapshot["created_at"]),
    }


def snap_list(snapshot: dict[str, Any]) -> dict[str, Any]:
    """SnapList (CopyFileSystemSnapshotCrossRegion)."""
    return {
        "RegionName": snapshot["region"],
        "SnapId": snapshot["id"],
        "SnapName": snapshot["name"],
        "FileSystemId": snapshot["fs_id"],
        "FsName": snapshot["fs_name"],
        "Size": snapshot["size_bytes"],
        "StorageType": "SD",
        "AliveDay": snapshot["alive_days"],
        "CreateTime": timestamp_text(snapshot["created_at"]),
        "UpdateTime": timestamp_text(snapshot["created_at"]),
        "Status": 1 if snapshot["state"] == "available" else 0,
        "Percent": 100 if snapshot["state"] == "available" else 0,
        "JobHistorys": [],
        "JobId": "",
    }


def policy_info(backend: Backend, policy: dict[str, Any]) -> dict[str, Any]:
    file_systems = [
        backend.state.tables[FILE_SYSTEM][f]
        for f in policy["fs_ids"]
        if f in backend.state.tables[FILE_SYSTEM]
    ]
    return {
        "AutoSnapshotPolicyId": policy["id"],
        "PolicyName": policy["name"],
        "CreationTime": timestamp_text(policy["created_at"]),
        "FileSystemNums": len(file_systems),
        "DayOfWeek": policy["day_of_week"],
        "Hour": policy["hour"],
        "IsActive": policy["active"],
        "NextActiveTime": timestamp_text(policy["next_run_at"]),
        "Status": "available",
        "AliveDays": policy["alive_days"],
        "RegionName": policy["region"],
        "FileSystems": [
            {
                "CreationToken": fs["name"],
                "FileSystemId": fs["id"],
                "SizeByte": backend.file_systems.size_bytes(fs),
                "StorageType": fs["storage_type"],
                "TotalSnapshotSize": sum(s["size_bytes"] for s in backend.snapshots.of_file_system(fs["id"])),
                "Protocol": fs["protocol"],
            }
            for fs in file_systems
        ],
    }


def page(items: list, offset: int | None, limit: int | None, default_limit: int | None = None) -> list:
    """Offset/Limit pagination; without Limit, `default_limit` (None = everything)."""
    start = offset or 0
    limit = limit if limit is not None else default_limit
    return items[start:] if limit is None else items[start : start + limit]


def ordered(
    items: list,
    field: str | None,
    order: str | None,
    keys: Mapping[str, Callable[[Any], Any]],
    field_param: str,
    order_param: str,
) -> list:
    """Sort by one of `keys` (API field name -> record key function), ASC unless DESC."""
    if order is not None and order.upper() not in ("ASC", "DESC"):
        raise invalid_value("InvalidParameterValue", order_param, order, "ASC or DESC")
    if field is None:
        return list(reversed(items)) if order and order.upper() == "DESC" else items
    if field not in keys:
        raise invalid_value("InvalidParameterValue", field_param, field, "one of " + ", ".join(keys))
    return sorted(items, key=keys[field], reverse=order is not None and order.upper() == "DESC")
