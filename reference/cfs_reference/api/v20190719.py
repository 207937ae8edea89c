"""API 2019-07-19: one handler per action, (backend, region, validated params) -> Response fields."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from cfs_reference.api import views
from cfs_reference.api.filters import match_filters
from cfs_reference.backend import Backend
from cfs_reference.backend.file_systems import NewFileSystem
from cfs_reference.backend.groups import RuleFields
from cfs_reference.backend.limits import PROTOCOLS, STORAGE_TYPES, split_ids
from cfs_reference.backend.state import timestamp_text
from cfs_reference.errors import ApiError

Params = dict[str, Any]
DEFAULT_SNAPSHOT_PAGE = 20  # DescribeCfsSnapshots "页面长度，默认为20"

# ---- file systems ----


def create_cfs_file_system(backend: Backend, region: str, p: Params) -> Params:
    name = p.get("FsName") or p.get("CreationToken")
    if not name:
        raise ApiError("MissingParameter", "one of FsName or CreationToken is required")
    fs = backend.create_file_system(
        region,
        NewFileSystem(
            zone=p["Zone"],
            zone_id=p.get("ZoneId"),
            net_interface=p["NetInterface"],
            pgroup_id=p["PGroupId"],
            vpc_id=p.get("VpcId") or p.get("UnVpcId"),
            subnet_id=p.get("SubnetId") or p.get("UnSubnetId"),
            mount_ip=p.get("MountIP"),
            name=name,
            protocol=p.get("Protocol"),
            storage_type=p.get("StorageType"),
            snap_id=p.get("SnapId"),
            encrypted=p.get("Encrypted", False),
            kms_key_id=p.get("KmsKeyId", ""),
            tags=tuple((t["TagKey"], t["TagValue"]) for t in p.get("ResourceTags", [])),
        ),
    )
    return {**created_reply(fs), "CfsId": fs["id"]}


def created_reply(fs: Params) -> Params:
    """CreateCfsFileSystem's output fields common to both versions."""
    return {
        "CreationTime": timestamp_text(fs["created_at"]),
        "CreationToken": fs["name"],
        "FileSystemId": fs["id"],
        "LifeCycleState": fs["state"],
        "SizeByte": 0,
        "ZoneId": fs["zone_id"],
        "FsName": fs["name"],
        "Encrypted": fs["encrypted"],
    }


def delete_cfs_file_system(backend: Backend, region: str, p: Params) -> Params:
    backend.file_systems.delete(region, p["FileSystemId"])
    return {}


def describe_cfs_file_systems(backend: Backend, region: str, p: Params) -> Params:
    found = backend.file_systems.describe(
        region, p.get("FileSystemId"), p.get("VpcId"), p.get("SubnetId"), p.get("CreationToken")
    )
    lang = views.language(p.get("InternationalFlag"))
    shown = views.page(found, p.get("Offset"), p.get("Limit"))
    return {
        "FileSystems": [views.file_system_info(backend, fs, lang) for fs in shown],
        "TotalCount": len(found),
    }


def describe_cfs_file_systems_by_vpc(backend: Backend, region: str, p: Params) -> Params:
    found = [
        fs
        for fs in backend.file_systems.describe(region, vpc_id=p["VpcId"], subnet_id=p.get("SubnetId"))
        if fs["state"] == "available"
    ]
    return {
        "MountTargets": [
            {
                "FileSystemId": fs["id"],
                "IpAddress": fs["ip"],
                "FSID": fs["fsid"],
                "LifeCycleState": fs["state"],
                "MountTargetId": fs["id"],
                "NetworkInterface": fs["net_interface"],
                "VpcId": fs["vpc_id"],
                "SubnetId": fs["subnet_id"],
                "ZoneId": fs["zone_id"],
            }
            for fs in found
        ],
        "TotalCount": len(found),
    }


def describe_mount_targets(backend: Backend, region: str, p: Params) -> Params:
    targets = backend.file_systems.mount_targets(region, p["FileSystemId"])
    return {
        "MountTargets": [views.mount_info(backend, fs) for fs in targets],
        "NumberOfMountTargets": len(targets),
    }


def describe_cfs_file_system_clients(backend: Backend, region: str, p: Params) -> Params:
    # InvalidFsStatus is not among this action's codes: a file system still creating has no
    # mount target yet (ResourceNotFound.MountTargetNotFound).
    targets = backend.file_systems.mount_targets(
        region, p["FileSystemId"], while_creating="ResourceNotFound.MountTargetNotFound"
    )
    # The vendor learns clients from a monitoring agent on each of them ("需要客户端安装CFS监控
    # 插件"); here they are the connections ganesha holds. No agent runs, so the clients' own
    # mount paths and NFS versions are unknown: MonitorStatus 2 ("未安装监控").
    return {
        "ClientList": [
            views.file_system_client(fs, client_ip)
            for fs in targets
            for client_ip in backend.exports.data_plane.clients(fs["ip"])
        ]
    }


def update_cfs_file_system_name(backend: Backend, region: str, p: Params) -> Params:
    name = p.get("FsName") or p.get("CreationToken")
    if not name:
        raise ApiError("MissingParameter", "one of FsName or CreationToken is required")
    fs = backend.file_systems.rename(region, p["FileSystemId"], name)
    return {"CreationToken": fs["name"], "FileSystemId": fs["id"], "FsName": fs["name"]}


def update_cfs_file_system_pgroup(backend: Backend, region: str, p: Params) -> Params:
    fs = backend.file_systems.set_pgroup(region, p["FileSystemId"], p["PGroupId"])
    return {"PGroupId": fs["pgroup_id"], "FileSystemId": fs["id"]}


def update_cfs_file_system_size_limit(backend: Backend, region: str, p: Params) -> Params:
    backend.file_systems.set_size_limit(region, p["FileSystemId"], p["FsLimit"], minimum=0)
    return {}


# ---- permission groups ----


def create_cfs_pgroup(backend: Backend, region: str, p: Params) -> Params:
    group = backend.groups.create(region, p["Name"], p.get("DescInfo", ""))
    return {
        "PGroupId": group["id"],
        "Name": group["name"],
        "DescInfo": group["desc"],
        "BindCfsNum": 0,
        "CDate": views.timestamp_text(group["created_at"]),
    }


def delete_cfs_pgroup(backend: Backend, region: str, p: Params) -> Params:
    group = backend.groups.delete(region, p["PGroupId"])
    return {"PGroupId": group["id"], "AppId": views.APP_ID}


def update_cfs_pgroup(backend: Backend, region: str, p: Params) -> Params:
    group = backend.groups.update(region, p["PGroupId"], p.get("Name"), p.get("DescInfo"))
    return {"PGroupId": group["id"], "Name": group["name"], "DescInfo": group["desc"]}


PGROUP_ORDER_KEYS = MappingProxyType({"CDate": lambda g: g["CDate"], "BindCfsNum": lambda g: g["BindCfsNum"]})


def describe_cfs_pgroups(backend: Backend, region: str, p: Params) -> Params:
    lang = views.language(p.get("InternationalFlag"))
    groups = [views.pgroup_info(backend, region, g, lang) for g in backend.groups.describe(region)]
    groups = [
        g
        for g in groups
        if p.get("PGroupId") in (None, g["PGroupId"])
        and p.get("Name") in (None, g["Name"])
        and p.get("DescInfo") in (None, g["DescInfo"])
    ]
    groups = views.ordered(
        groups, p.get("OrderBy"), p.get("OrderByType"), PGROUP_ORDER_KEYS, "OrderBy", "OrderByType"
    )
    return {"PGroupList": views.page(groups, p.get("Offset"), p.get("Limit")), "TotalCount": len(groups)}


def rule_fields(p: Params, default_access: str | None, default_squash: str | None) -> RuleFields:
    return RuleFields(
        client=p.get("AuthClientIp"),
        access=p.get("RWPermission", default_access),
        squash=p.get("UserPermission", default_squash),
        priority=p.get("Priority"),
    )


def rule_reply(rule: Params, lower_case_access: bool = False) -> Params:
    return {"PGroupId": rule["pgroup_id"], **views.rule_info(rule, lower_case_access)}


def create_cfs_rule(backend: Backend, region: str, p: Params) -> Params:
    # 2019-07-19 defaults: "不填默认为只读", "不填默认为root_squash"
    rule = backend.groups.create_rule(region, p["PGroupId"], rule_fields(p, "RO", "root_squash"))
    return rule_reply(rule)


def update_cfs_rule(backend: Backend, region: str, p: Params) -> Params:
    rule = backend.groups.update_rule(region, p["PGroupId"], p["RuleId"], rule_fields(p, None, None))
    return rule_reply(rule)


def delete_cfs_rule(backend: Backend, region: str, p: Params) -> Params:
    rule = backend.groups.delete_rule(region, p["PGroupId"], p["RuleId"])
    return {"RuleId": rule["id"], "PGroupId": rule["pgroup_id"]}


def describe_cfs_rules(backend: Backend, region: str, p: Params) -> Params:
    return {"RuleList": [views.rule_info(r) for r in backend.groups.rules(region, p["PGroupId"])]}


# ---- snapshots ----


def create_cfs_snapshot(backend: Backend, region: str, p: Params) -> Params:
    tags = [(t["TagKey"], t["TagValue"]) for t in p.get("ResourceTags", [])]
    snapshot = backend.create_snapshot(region, p["FileSystemId"], p.get("SnapshotName", ""), tags)
    return {"SnapshotId": snapshot["id"]}


SNAPSHOT_FILTERS = MappingProxyType(
    {
        "SnapshotId": "SnapshotId",
        "SnapshotName": "SnapshotName",
        "FileSystemId": "FileSystemId",
        "FsName": "FsName",
        "Status": "Status",
    }
)
SNAPSHOT_ORDER_KEYS = MappingProxyType(
    {
        "CreationTime": lambda s: s["CreationTime"],
        "SnapshotName": lambda s: s["SnapshotName"],
        "FileSystemId": lambda s: s["FileSystemId"],
        "Size": lambda s: s["Size"],
    }
)


def describe_cfs_snapshots(backend: Backend, region: str, p: Params) -> Params:
    snapshots = [views.snapshot_info(s) for s in backend.snapshots.describe(region)]
    snapshots = [
        s
        for s in snapshots
        if p.get("FileSystemId") in (None, s["FileSystemId"])
        and p.get("SnapshotId") in (None, s["SnapshotId"])
    ]
    snapshots = match_filters(snapshots, p.get("Filters", []), SNAPSHOT_FILTERS)
    snapshots = views.ordered(
        snapshots, p.get("OrderField"), p.get("Order"), SNAPSHOT_ORDER_KEYS, "OrderField", "Order"
    )
    return {
        "TotalCount": len(snapshots),
        "Snapshots": views.page(snapshots, p.get("Offset"), p.get("Limit"), DEFAULT_SNAPSHOT_PAGE),
        "TotalSize": sum(s["Size"] for s in snapshots),
    }


def delete_cfs_snapshot(backend: Backend, region: str, p: Params) -> Params:
    wanted = ([p["SnapshotId"]] if p.get("SnapshotId") else []) + p.get("SnapshotIds", [])
    if not wanted:
        raise ApiError("MissingParameter", "one of SnapshotId or SnapshotIds is required")
    backend.snapshots.delete(region, list(dict.fromkeys(wanted)))
    return {"SnapshotId": wanted[0]}


def update_cfs_snapshot_attribute(backend: Backend, region: str, p: Params) -> Params:
    snapshot = backend.snapshots.update(region, p["SnapshotId"], p.get("SnapshotName"), p.get("AliveDays"))
    return {"SnapshotId": snapshot["id"]}


def copy_file_system_snapshot_cross_region(backend: Backend, region: str, p: Params) -> Params:
    copy = backend.copy_snapshot(region, p["SnapshotId"], p["DestinationRegion"], p.get("SnapshotName"))
    return {"Snapshots": [views.snap_list(copy)]}


# ---- automatic snapshot policies ----


def create_auto_snapshot_policy(backend: Backend, region: str, p: Params) -> Params:
    policy = backend.policies.create(
        region, p.get("PolicyName", ""), p["DayOfWeek"], p["Hour"], p.get("AliveDays", 0)
    )
    return {"AutoSnapshotPolicyId": policy["id"]}


def update_auto_snapshot_policy(backend: Backend, region: str, p: Params) -> Params:
    policy = backend.policies.update(
        region,
        p["AutoSnapshotPolicyId"],
        p.get("PolicyName"),
        p.get("DayOfWeek"),
        p.get("Hour"),
        p.get("AliveDays"),
        p.get("IsActive"),
    )
    return {"AutoSnapshotPolicyId": policy["id"]}


def delete_auto_snapshot_policy(backend: Backend, region: str, p: Params) -> Params:
    return {"AutoSnapshotPolicyId": backend.policies.delete(region, p["AutoSnapshotPolicyId"])["id"]}


def bind_auto_snapshot_policy(backend: Backend, region: str, p: Params) -> Params:
    fs_ids = split_ids(p["FileSystemIds"], "FileSystemIds")
    return {"AutoSnapshotPolicyId": backend.policies.bind(region, p["AutoSnapshotPolicyId"], fs_ids)["id"]}


def unbind_auto_snapshot_policy(backend: Backend, region: str, p: Params) -> Params:
    fs_ids = split_ids(p["FileSystemIds"], "FileSystemIds")
    return {"AutoSnapshotPolicyId": backend.policies.unbind(region, p["AutoSnapshotPolicyId"], fs_ids)["id"]}


POLICY_FILTERS = MappingProxyType(
    {
        "AutoSnapshotPolicyId": "AutoSnapshotPolicyId",
        "AutoSnapshotPolicyName": "PolicyName",
    }
)
POLICY_ORDER_KEYS = MappingProxyType(
    {
        "CreationTime": lambda s: s["CreationTime"],
        "FileSystemNums": lambda s: s["FileSystemNums"],
    }
)


def describe_auto_snapshot_policies(backend: Backend, region: str, p: Params) -> Params:
    policies = [
        views.policy_info(backend, x)
        for x in backend.policies.describe(region)
        if p.get("AutoSnapshotPolicyId") in (None, x["id"])
    ]
    policies = match_filters(policies, p.get("Filters", []), POLICY_FILTERS)
    policies = views.ordered(
        policies, p.get("OrderField"), p.get("Order"), POLICY_ORDER_KEYS, "OrderField", "Order"
    )
    return {
        "TotalCount": len(policies),
        "AutoSnapshotPolicies": views.page(policies, p.get("Offset"), p.get("Limit")),
    }


# ---- service ----


def describe_available_zone_info(backend: Backend, region: str, p: Params) -> Params:
    return {"RegionZones": region_zones(backend, STORAGE_TYPES)}


def region_zones(backend: Backend, storage_types: tuple[str, ...]) -> list[Params]:
    """AvailableRegion / VersionCtrlRegion items; `storage_types` are those the API version sells."""
    return [
        {
            "Region": name,
            "RegionName": name,
            "RegionStatus": "AVAILABLE",
            "RegionCnName": name,
            "Zones": [
                {
                    "Zone": zone.name,
                    "ZoneId": zone.zone_id,
                    "ZoneCnName": zone.name,
                    "ZoneEnName": zone.name,
                    "Types": [
                        {
                            "Type": storage,
                            "Protocols": [
                                {"Protocol": protocol, "SaleStatus": "saling"} for protocol in PROTOCOLS
                            ],
                        }
                        for storage in storage_types
                    ],
                }
                for zone in backend.regions.zones_of(name)
            ],
        }
        for name in backend.regions.names
    ]


def describe_cfs_service_status(backend: Backend, region: str, p: Params) -> Params:
    return {"CfsServiceStatus": backend.service_status()}


def sign_up_cfs_service(backend: Backend, region: str, p: Params) -> Params:
    return {"CfsServiceStatus": backend.sign_up()}


def describe_cfs_tags(backend: Backend, region: str, p: Params) -> Params:
    zone = backend.regions.zone_by_id(p["ZoneId"])
    return {
        "Tags": [
            {
                "TagId": zone.zone_id,
                "TagName": "default",
                "Status": 1,
                "SdSaleStatus": "saling",
                "HpSaleStatus": "saling",
                "ZoneId": zone.zone_id,
                "ISSMB": 1,
                "ISNFS": 1,
            }
        ]
    }


HANDLERS = MappingProxyType(
    {
        "BindAutoSnapshotPolicy": bind_auto_snapshot_policy,
        "CopyFileSystemSnapshotCrossRegion": copy_file_system_snapshot_cross_region,
        "CreateAutoSnapshotPolicy": create_auto_snapshot_policy,
        "CreateCfsFileSystem": create_cfs_file_system,
        "CreateCfsPGroup": create_cfs_pgroup,
        "CreateCfsRule": create_cfs_rule,
        "CreateCfsSnapshot": create_cfs_snapshot,
        "DeleteAutoSnapshotPolicy": delete_auto_snapshot_policy,
        "DeleteCfsFileSystem": delete_cfs_file_system,
        "DeleteCfsPGroup": delete_cfs_pgroup,
        "DeleteCfsRule": delete_cfs_rule,
        "DeleteCfsSnapshot": delete_cfs_snapshot,
        "DescribeAutoSnapshotPolicies": describe_auto_snapshot_policies,
        "DescribeAvailableZoneInfo": describe_available_zone_info,
        "DescribeCfsFileSystemClients": describe_cfs_file_system_clients,
        "DescribeCfsFileSystems": describe_cfs_file_systems,
        "DescribeCfsFileSystemsByVpc": describe_cfs_file_systems_by_vpc,
        "DescribeCfsPGroups": describe_cfs_pgroups,
        "DescribeCfsRules": describe_cfs_rules,
        "DescribeCfsServiceStatus": describe_cfs_service_status,
        "DescribeCfsSnapshots": describe_cfs_snapshots,
        "DescribeCfsTags": describe_cfs_tags,
        "DescribeMountTargets": describe_mount_targets,
        "SignUpCfsService": sign_up_cfs_service,
        "UnbindAutoSnapshotPolicy": unbind_auto_snapshot_policy,
        "UpdateAutoSnapshotPolicy": update_auto_snapshot_policy,
        "UpdateCfsFileSystemName": update_cfs_file_system_name,
        "UpdateCfsFileSystemPGroup": update_cfs_file_system_pgroup,
        "UpdateCfsFileSystemSizeLimit": update_cfs_file_system_size_limit,
        "UpdateCfsPGroup": update_cfs_pgroup,
        "UpdateCfsRule": update_cfs_rule,
        "UpdateCfsSnapshotAttribute": update_cfs_snapshot_attribute,
    }
)
