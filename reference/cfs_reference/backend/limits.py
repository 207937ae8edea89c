"""Documented limits and value checks shared by both API versions."""

from __future__ import annotations

import ipaddress
import re

from cfs_reference.errors import ApiError, invalid_value

# Names: "1-64个字符且只能为中文，字母，数字，下划线或横线"; length errors speak of bytes.
NAME_PATTERN = re.compile(r"[\u4e00-\u9fa5A-Za-z0-9_-]+")
NAME_MAX_BYTES = 64
DESCRIPTION_MAX_BYTES = 255
FS_LIMIT_MAX_GB = 1073741824  # UpdateCfsFileSystemSizeLimit "输入范围0-1073741824, 单位为GB"
SNAPSHOTS_PER_FILE_SYSTEM = 100  # "每个文件系统拥有100个快照额度"
POLICIES_PER_ACCOUNT = 30  # "定期快照策略数 30个"
FILE_SYSTEMS_PER_POLICY = 200  # "定期快照策略支持绑定文件系统个数 200个"
PRIORITY_RANGE = (1, 100)  # "规则优先级，参数范围1-100"
TAGS_PER_RESOURCE = 50  # "每个文件系统允许的最大标签数是50"
TAG_TEXT = re.compile(r"[0-9A-Za-z+=.@-]+")  # "只能为 数字、字母、+=.@-"
TAG_KEY_MAX_CHARS = 255
TAG_VALUE_MAX_CHARS = 127
RESERVED_TAG_KEY_PREFIXES = ("qcloud", "tencent", "project")  # "系统预留标签键，禁止创建"
# Not stated in the docs; generous quotas so the documented error codes can still be reached.
PGROUPS_PER_REGION = 1000
RULES_PER_PGROUP = 100
FILE_SYSTEMS_PER_REGION = 1000

ACCESS = ("RO", "RW")
SQUASH = ("all_squash", "no_all_squash", "root_squash", "no_root_squash")
NET_INTERFACES = ("VPC", "BASIC")
PROTOCOLS = ("NFS", "CIFS")
STORAGE_TYPES = ("SD", "HP")  # 2019-07-19 (AvailableType: "SD 标准型存储、HP 性能型存储")
STORAGE_TYPES_2018 = ("SD", "EP", "HP", "IA")  # 2018-04-16 VersionCtrlType: 标准、极速型、高性能、低频
INFREQUENT_ACCESS = "IA"  # "低频文件系统该字段 (StorageResourcePkgId) 为必填"
WEEK_DAYS = range(1, 8)
HOURS = range(0, 24)


def check_name(value: str, field: str, too_long: str, invalid: str) -> str:
    if len(value.encode("utf-8")) > NAME_MAX_BYTES:
        raise ApiError(too_long, f"{field} is longer than {NAME_MAX_BYTES} bytes")
    if not NAME_PATTERN.fullmatch(value):
        raise invalid_value(
            invalid,
            field,
            value,
            "1-64 characters: Chinese characters, letters, digits, underscore or hyphen",
        )
    return value


def check_tags(tags) -> None:
    """ResourceTags, docs "使用标签 / 使用限制": at most 50 per resource; keys non-empty, at most
    255 characters of digits, letters and +=.@-, not starting with a reserved prefix; values empty
    or at most 127 such characters."""
    if len(tags) > TAGS_PER_RESOURCE:
        raise ApiError(
            "ResourceInsufficient.TagLimitExceeded",
            f"ResourceTags holds {len(tags)} tags; a resource has at most {TAGS_PER_RESOURCE}",
        )
    for index, (key, value) in enumerate(tags):
        field = f"ResourceTags.{index}"
        if not key.strip():
            raise ApiError("InvalidParameter.InvalidTagKey", f"{field}.TagKey must not be empty")
        if len(key) > TAG_KEY_MAX_CHARS or not TAG_TEXT.fullmatch(key):
            raise invalid_value(
                "InvalidParameter.InvalidTagKey",
                f"{field}.TagKey",
                key,
                f"1-{TAG_KEY_MAX_CHARS} characters: digits, letters and +=.@-",
            )
        if key.lower().startswith(RESERVED_TAG_KEY_PREFIXES):
            raise invalid_value(
                "InvalidParameter.InvalidTagKey",
                f"{field}.TagKey",
                key,
                "keys starting with " + ", ".join(RESERVED_TAG_KEY_PREFIXES) + " are reserved",
            )
        if value and (len(value) > TAG_VALUE_MAX_CHARS or not TAG_TEXT.fullmatch(value)):
            raise invalid_value(
                "InvalidParameterValue",
                f"{field}.TagValue",
                value,
                f"empty or 1-{TAG_VALUE_MAX_CHARS} characters: digits, letters and +=.@-",
            )


def check_description(value: str) -> str:
    if len(value.encode("utf-8")) > DESCRIPTION_MAX_BYTES:
        raise ApiError(
            "InvalidParameterValue.PgroupDescinfoLimitExceeded",
            f"DescInfo is longer than {DESCRIPTION_MAX_BYTES} bytes",
        )
    return value


def check_choice(value: str, field: str, choices: tuple[str, ...], code: str) -> str:
    """Case-insensitive match against the documented values; returns the canonical spelling."""
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise invalid_value(code, field, value, "allowed values: " + ", ".join(choices))


def check_client(value: str) -> str:
    """AuthClientIp: '*', one IP or one CIDR (e.g. 10.1.10.11 or 10.10.1.0/24)."""
    if value == "*":
        return value
    try:
        if "/" in value:
            ipaddress.IPv4Network(value, strict=True)
        else:
            ipaddress.IPv4Address(value)
    except ValueError:
        raise invalid_value(
            "InvalidParameterValue.InvalidAuthClientIp",
            "AuthClientIp",
            value,
            "'*', one IPv4 address (10.1.10.11) or one network (10.10.1.0/24)",
        ) from None
    return value


def check_priority(value: int) -> int:
    low, high = PRIORITY_RANGE
    if not low <= value <= high:
        raise invalid_value(
            "InvalidParameterValue.InvalidPriority", "Priority", value, f"an integer {low}-{high}, 1 highest"
        )
    return value


def check_schedule(value: str, field: str, allowed: range) -> str:
    """DayOfWeek '1,3,5' (1-7) or Hour '0,12' (0-23): comma-separated, no repeats."""
    items = value.split(",")
    if not all(item.isdigit() and int(item) in allowed for item in items) or len(set(items)) != len(items):
        raise invalid_value(
            "InvalidParameterValue",
            field,
            value,
            f"comma-separated distinct numbers {allowed.start}-{allowed.stop - 1}",
        )
    return ",".join(str(n) for n in sorted(int(item) for item in items))


def split_ids(value: str, field: str) -> list[str]:
    """FileSystemIds 'cfs-1,cfs-2' (a String in the docs) -> ['cfs-1', 'cfs-2']."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise ApiError("InvalidParameterValue", f"{field} must list at least one id, comma-separated")
    return list(dict.fromkeys(items))
