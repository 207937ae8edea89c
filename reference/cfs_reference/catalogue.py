"""Every action the service answers, with its parameters, as the vendor docs list them.

One table per API version (2018-04-16 `Query*` and 2019-07-19 `Describe*`). It is the single
source for: which actions exist per version, which parameters each takes (name, type,
required), and each action's documented default rate limit (requests per second). The
snapshot actions are not in the docs' 2019-07-19 list; their names and parameters follow the
2019-07-19 API as the product pages describe the features (create / describe / delete /
update a snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

V2018 = "2018-04-16"
V2019 = "2019-07-19"
VERSIONS = (V2018, V2019)
SERVICE = "cfs"

# Parameter types, spelled as the docs' "类型" column.
STRING = "String"
UINT64 = "Uint64"
INT64 = "Int64"
BOOL = "Bool"
STRINGS = "Array of String"
FILTERS = "Array of Filter"
RESOURCE_TAGS = "Array of ResourceTags"

# Fields of the structures that appear inside array parameters (docs "数据结构").
STRUCTURES = MappingProxyType(
    {
        FILTERS: (("Name", STRING, True), ("Values", STRINGS, True)),
        RESOURCE_TAGS: (("TagKey", STRING, True), ("TagValue", STRING, True)),
    }
)

DEFAULT_RATE_LIMIT = 20  # "默认接口请求频率限制 : 20次/秒" on every page except CreateCfsFileSystem


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    required: bool = False


@dataclass(frozen=True)
class Action:
    name: str
    version: str
    params: tuple[Param, ...]
    rate_limit: int = DEFAULT_RATE_LIMIT

    def param(self, name: str) -> Param | None:
        for param in self.params:
            if param.name == name:
                return param
        return None


def _req(name: str, type_: str = STRING) -> Param:
    return Param(name, type_, required=True)


def _opt(name: str, type_: str = STRING) -> Param:
    return Param(name, type_)


def _table(version: str, *actions: tuple) -> MappingProxyType:
    built = {}
    for name, params, *limit in actions:
        built[name] = Action(name, version, tuple(params), *limit)
    return MappingProxyType(built)


_PGROUP_ID = _req("PGroupId")
_FS_ID = _req("FileSystemId")
_RULE_FIELDS = (_opt("RWPermission"), _opt("UserPermission"))
# CreateCfsFileSystem parameters spelled the same in both versions.
_CREATE_FS_COMMON = (
    _opt("MountIP"),
    _opt("StorageResourcePkgId"),
    _opt("BandwidthResourcePkgId"),
    _opt("FsName"),
    _opt("Encrypted", BOOL),
    _opt("KmsKeyId"),
)

ACTIONS_2019 = _table(
    V2019,
    ("BindAutoSnapshotPolicy", [_req("AutoSnapshotPolicyId"), _req("FileSystemIds")]),
    (
        "DescribeAutoSnapshotPolicies",
        [
            _opt("AutoSnapshotPolicyId"),
            _opt("Offset", UINT64),
            _opt("Limit", UINT64),
            _opt("Filters", FILTERS),
            _opt("Order"),
            _opt("OrderField"),
        ],
    ),
    ("DescribeCfsTags", [_opt("InternationalFlag", INT64), _req("ZoneId", UINT64)]),
    (
        "CopyFileSystemSnapshotCrossRegion",
        [_req("DestinationRegion"), _req("SnapshotId"), _opt("SnapshotName")],
    ),
    (
        "CreateAutoSnapshotPolicy",
        [_opt("PolicyName"), _req("DayOfWeek"), _req("Hour"), _opt("AliveDays", UINT64)],
    ),
    ("DeleteAutoSnapshotPolicy", [_req("AutoSnapshotPolicyId")]),
    ("UnbindAutoSnapshotPolicy", [_req("FileSystemIds"), _req("AutoSnapshotPolicyId")]),
    (
        "CreateCfsFileSystem",
        [
            _opt("ZoneId", UINT64),
            _req("Zone"),
            _opt("CreationToken"),
            _opt("Protocol"),
            _opt("StorageType"),
            _req("NetInterface"),
            _PGROUP_ID,
            _opt("VpcId"),
            _opt("UnVpcId"),
            _opt("SubnetId"),
            _opt("UnSubnetId"),
            *_CREATE_FS_COMMON,
            _opt("TagId", UINT64),
            _opt("SnapId"),
            _opt("ResourceTags", RESOURCE_TAGS),
            _opt("ProjectId"),
        ],
        10,
    ),
    ("DeleteCfsFileSystem", [_FS_ID]),
    ("DescribeCfsFileSystemClients", [_FS_ID]),
    (
        "DescribeCfsFileSystems",
        [
            _opt("FileSystemId"),
            _opt("InternationalFlag", UINT64),
            _opt("VpcId"),
            _opt("SubnetId"),
            _opt("Offset", UINT64),
            _opt("Limit", UINT64),
            _opt("CreationToken"),
        ],
    ),
    ("DescribeCfsFileSystemsByVpc", [_req("VpcId"), _opt("SubnetId")]),
    ("DescribeMountTargets", [_FS_ID]),
    (
        "UpdateAutoSnapshotPolicy",
        [
            _req("AutoSnapshotPolicyId"),
            _opt("PolicyName"),
            _opt("DayOfWeek"),
            _opt("Hour"),
            _opt("AliveDays", UINT64),
            _opt("IsActive", UINT64),
        ],
    ),
    ("UpdateCfsFileSystemName", [_opt("CreationToken"), _FS_ID, _opt("FsName")]),
    ("UpdateCfsFileSystemPGroup", [_PGROUP_ID, _FS_ID]),
    ("UpdateCfsFileSystemSizeLimit", [_req("FsLimit", UINT64), _FS_ID]),
    ("DescribeAvailableZoneInfo", []),
    ("DescribeCfsServiceStatus", []),
    ("SignUpCfsService", []),
    ("CreateCfsPGroup", [_req("Name"), _opt("DescInfo")]),
    (
        "CreateCfsRule",
        [_PGROUP_ID, *_RULE_FIELDS, _req("AuthClientIp"), _req("Priority", INT64)],
    ),
    ("DeleteCfsPGroup", [_PGROUP_ID]),
    ("DeleteCfsRule", [_PGROUP_ID, _req("RuleId")]),
    (
        "DescribeCfsPGroups",
        [
            _opt("InternationalFlag", INT64),
            _opt("PGroupId"),
            _opt("Name"),
            _opt("DescInfo"),
            _opt("OrderBy"),
            _opt("OrderByType"),
            _opt("Offset", UINT64),
            _opt("Limit", UINT64),
        ],
    ),
    ("DescribeCfsRules", [_PGROUP_ID]),
    ("UpdateCfsPGroup", [_opt("Name"), _PGROUP_ID, _opt("DescInfo")]),
    (
        "UpdateCfsRule",
        [_PGROUP_ID, _req("RuleId"), _opt("AuthClientIp"), *_RULE_FIELDS, _opt("Priority", INT64)],
    ),
    # Snapshot actions (product pages "管理快照"; 2019-07-19 names and parameters).
    (
        "CreateCfsSnapshot",
        [_FS_ID, _opt("SnapshotName"), _opt("ResourceTags", RESOURCE_TAGS)],
    ),
    (
        "DescribeCfsSnapshots",
        [
            _opt("FileSystemId"),
            _opt("SnapshotId"),
            _opt("Offset", UINT64),
            _opt("Limit", UINT64),
            _opt("Filters", FILTERS),
            _opt("OrderField"),
            _opt("Order"),
        ],
    ),
    ("DeleteCfsSnapshot", [_opt("SnapshotId"), _opt("SnapshotIds", STRINGS)]),
    (
        "UpdateCfsSnapshotAttribute",
        [_req("SnapshotId"), _opt("SnapshotName"), _opt("AliveDays", UINT64)],
    ),
)

ACTIONS_2018 = _table(
    V2018,
    (
        "CreateCfsFileSystem",
        [
            _opt("ZoneId", UINT64),
            _opt("Zone"),
            _opt("CreationToken"),
            _opt("Protocol"),
            _opt("StorageType"),
            _req("NetInterface"),
            _PGROUP_ID,
            _opt("VpcId", UINT64),
            _opt("UnVpcId"),
            _opt("SubnetId", UINT64),
            _opt("UnSubnetId"),
            *_CREATE_FS_COMMON,
        ],
        10,
    ),
    ("CreateCfsPGroup", [_req("Name"), _opt("DescInfo")]),
    (
        "CreateCfsRule",
        [_PGROUP_ID, *_RULE_FIELDS, _req("AuthClientIp"), _req("Priority", INT64)],
    ),
    ("DeleteCfsFileSystem", [_FS_ID]),
    ("DeleteCfsPGroup", [_PGROUP_ID]),
    ("DeleteCfsRule", [_PGROUP_ID, _req("RuleId")]),
    ("QueryAvailableZoneInfo", []),
    ("QueryCfsFileSystem", [_opt("FileSystemId"), _opt("InternationalFlag", UINT64)]),
    ("QueryCfsPGroup", [_opt("InternationalFlag", INT64)]),
    ("QueryCfsRule", [_PGROUP_ID]),
    ("QueryCfsServiceStatus", []),
    ("QueryMountTarget", [_FS_ID]),
    ("SignUpCfsService", []),
    ("UpdateCfsFileSystemName", [_opt("CreationToken"), _FS_ID, _opt("FsName")]),
    ("UpdateCfsFileSystemPGroup", [_PGROUP_ID, _FS_ID]),
    ("UpdateCfsFileSystemSizeLimit", [_req("FsLimit", UINT64), _FS_ID]),
    ("UpdateCfsPGroup", [_opt("Name"), _PGROUP_ID, _opt("DescInfo")]),
    (
        "UpdateCfsRule",
        [_PGROUP_ID, _req("RuleId"), _opt("AuthClientIp"), *_RULE_FIELDS, _opt("Priority", INT64)],
    ),
    # "查询区域挂载点情况"; its error codes name FileSystemId, so it is accepted as a filter.
    ("QueryMountTargetsWithRegion", [_opt("FileSystemId")]),
)

CATALOGUE = MappingProxyType({V2018: ACTIONS_2018, V2019: ACTIONS_2019})


def documented_rate_limits() -> dict[str, int]:
    """Action name -> documented requests per second (the same name has one limit in both versions)."""
    limits: dict[str, int] = {}
    for actions in CATALOGUE.values():
        for action in actions.values():
            limits[action.name] = action.rate_limit
    return limits
