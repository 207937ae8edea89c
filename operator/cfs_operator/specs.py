"""Custom-resource specs parsed into typed desired state, with the checks a schema cannot make.

Every check names the offending field (``spec.rules[2].clientIp``) so the Ready condition tells
the user exactly what to fix. The CRD schemas repeat the simple checks (enums, ranges) for the
API server; they are repeated here because the operator must not trust that a schema ran.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cfs_cloud.rules import RW_PERMISSIONS, USER_PERMISSIONS, normalize_client

DELETION_POLICIES = ("Delete", "Retain")
PRIORITY_RANGE = (1, 100)
# The CRD caps spec.rules at the same number (maxItems).
MAX_RULES_PER_GROUP = 100
# Documented snapshot limit: one policy binds at most 200 file systems.
MAX_FILE_SYSTEMS_PER_POLICY = 200
GROUP_NAME_MAX_BYTES = 64
GROUP_DESCRIPTION_MAX_BYTES = 255
POLICY_NAME_MAX_CHARS = 64
ALIVE_DAYS_RANGE = (1, 65535)

# Permission group names: Chinese characters, letters, digits, '_' and '-' (vendor docs).
_GROUP_NAME = re.compile(r"^[\u4e00-\u9fa5A-Za-z0-9_-]+$")
_FILE_SYSTEM_ID = re.compile(r"^cfs-[0-9a-z]+$")


class SpecError(ValueError):
    """A spec that can never work as written; ``field`` is the path of the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class RuleSpec:
    """One permission rule, normalised so that equal rules compare equal."""

    client_ip: str
    rw_permission: str
    user_permission: str
    priority: int


@dataclass(frozen=True)
class GroupSpec:
    name: str | None  # None: keep the adopted group's name
    description: str | None  # None: leave the description alone
    rules: tuple[RuleSpec, ...] | None  # None: leave the adopted group's rules alone
    adopt_id: str | None
    deletion_policy: str


@dataclass(frozen=True)
class LabelSelector:
    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class ClaimSelector:
    namespace_selector: LabelSelector
    label_selector: LabelSelector


@dataclass(frozen=True)
class PolicySpec:
    policy_name: str | None
    day_of_week: tuple[int, ...] | None
    hour: tuple[int, ...] | None
    alive_days: int | None
    is_active: bool | None
    file_system_ids: tuple[str, ...] | None
    claim_selector: ClaimSelector | None
    adopt_id: str | None
    deletion_policy: str

    @property
    def manages_bindings(self) -> bool:
        return self.file_system_ids is not None or self.claim_selector is not None


def normalize_client_ip(value: Any, field: str) -> str:
    """'*', one IPv4 address, or an IPv4 CIDR whose host bits are zero; '/32' collapses to the address.

    The vendor docs allow "单个 IP 或者单个网段" of the clients' (IPv4) VPC addresses.
    """
    if not isinstance(value, str) or not value.strip():
        raise SpecError(field, "must be a single IPv4 address, a CIDR such as 10.0.0.0/24, or '*'")
    text = value.strip()
    try:
        return normalize_client(text)
    except ValueError as exc:
        raise SpecError(field, f"{text!r} is not a valid IPv4 address or CIDR ({exc})") from None


def _choice(value: Any, field: str, allowed: Sequence[str], default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if value not in allowed:
        raise SpecError(field, f"{value!r} is not allowed; use one of {', '.join(allowed)}")
    return value


def _int_in(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(field, f"{value!r} is not allowed; use an integer from {low} to {high}")
    return value


def _optional_str(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise SpecError(field, "must be a non-empty string")
    return value


def parse_rules(raw_rules: Any) -> tuple[RuleSpec, ...]:
    if not isinstance(raw_rules, list):
        raise SpecError("spec.rules", "must be a list of rules")
    if len(raw_rules) > MAX_RULES_PER_GROUP:
        raise SpecError(
            "spec.rules",
            f"{len(raw_rules)} rules given; a permission group allows at most {MAX_RULES_PER_GROUP}",
        )
    rules: list[RuleSpec] = []
    first_index_of: dict[str, int] = {}
    for index, raw in enumerate(raw_rules):
        where = f"spec.rules[{index}]"
        if not isinstance(raw, Mapping):
            raise SpecError(where, "must be an object with clientIp, rwPermission, userPermission, priority")
        client_ip = normalize_client_ip(raw.get("clientIp"), f"{where}.clientIp")
        if client_ip in first_index_of:
            raise SpecError(
                f"{where}.clientIp",
                f"{client_ip} duplicates spec.rules[{first_index_of[client_ip]}].clientIp; "
                "each client may appear once per group",
            )
        first_index_of[client_ip] = index
        rules.append(
            RuleSpec(
                client_ip=client_ip,
                rw_permission=_choice(raw.get("rwPermission"), f"{where}.rwPermission", RW_PERMISSIONS, "RO"),
                user_permission=_choice(
                    raw.get("userPermission"), f"{where}.userPermission", USER_PERMISSIONS, "root_squash"
                ),
                priority=_int_in(raw.get("priority"), f"{where}.priority", *PRIORITY_RANGE),
            )
        )
    return tuple(rules)


def _group_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _GROUP_NAME.match(value):
        raise SpecError(
            field, f"{value!r} is not allowed; use Chinese characters, letters, digits, '_' or '-'"
        )
    if len(value.encode()) > GROUP_NAME_MAX_BYTES:
        raise SpecError(field, f"{value!r} is longer than {GROUP_NAME_MAX_BYTES} bytes")
    return value


def _deletion_policy(value: Any, adopting: bool) -> str:
    # Adopted cloud objects existed before this resource, so by default they outlive it too.
    default = "Retain" if adopting else "Delete"
    return _choice(value, "spec.deletionPolicy", DELETION_POLICIES, default)


def deletion_policy_of(spec: Mapping[str, Any], adopt_field: str) -> str:
    """The effective deletionPolicy, readable even when the rest of the spec is invalid."""
    policy = spec.get("deletionPolicy")
    if policy is None:
        return "Retain" if spec.get(adopt_field) else "Delete"
    # An unreadable policy must not destroy anything.
    return policy if policy in DELETION_POLICIES else "Retain"


def parse_group_spec(spec: Mapping[str, Any], resource_name: str) -> GroupSpec:
    adopt_id = _optional_str(spec.get("pGroupId"), "spec.pGroupId")
    raw_name = spec.get("name")
    if raw_name is not None:
        name: str | None = _group_name(raw_name, "spec.name")
    elif adopt_id is None:
        name = _group_name(resource_name, "spec.name (defaulted from metadata.name)")
    else:
        name = None
    description = spec.get("description")
    if description is not None:
        if not isinstance(description, str) or not description:
            raise SpecError("spec.description", "must be a non-empty string (omit it for none)")
        if len(description.encode()) > GROUP_DESCRIPTION_MAX_BYTES:
            raise SpecError("spec.description", f"is longer than {GROUP_DESCRIPTION_MAX_BYTES} bytes")
    raw_rules = spec.get("rules")
    if raw_rules is None and adopt_id is None:
        raw_rules = []
    return GroupSpec(
        name=name,
        description=description,
        rules=None if raw_rules is None else parse_rules(raw_rules),
        adopt_id=adopt_id,
        deletion_policy=_deletion_policy(spec.get("deletionPolicy"), adopt_id is not None),
    )


def _int_set(value: Any, field: str, low: int, high: int) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise SpecError(field, f"must be a non-empty list of integers from {low} to {high}")
    items = [_int_in(item, f"{field}[{index}]", low, high) for index, item in enumerate(value)]
    if len(set(items)) != len(items):
        raise SpecError(field, "contains duplicates")
    return tuple(sorted(items))


def parse_label_selector(raw: Any, field: str) -> LabelSelector:
    if raw is None:
        return LabelSelector()
    if not isinstance(raw, Mapping):
        raise SpecError(field, "must be a label selector (matchLabels, matchExpressions)")
    labels = raw.get("matchLabels") or {}
    if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
        raise SpecError(f"{field}.matchLabels", "must map label keys to string values")
    expressions = []
    for index, expression in enumerate(raw.get("matchExpressions") or []):
        where = f"{field}.matchExpressions[{index}]"
        if not isinstance(expression, Mapping) or not isinstance(expression.get("key"), str):
            raise SpecError(where, "must have a string key and an operator")
        operator = _choice(
            expression.get("operator"), f"{where}.operator", ("In", "NotIn", "Exists", "DoesNotExist")
        )
        values = tuple(expression.get("values") or ())
        if operator in ("In", "NotIn") and not values:
            raise SpecError(f"{where}.values", f"must not be empty for operator {operator}")
        if operator in ("Exists", "DoesNotExist") and values:
            raise SpecError(f"{where}.values", f"must be empty for operator {operator}")
        expressions.append((expression["key"], operator, values))
    return LabelSelector(tuple(sorted(labels.items())), tuple(expressions))


def parse_policy_spec(spec: Mapping[str, Any], resource_name: str) -> PolicySpec:
    adopt_id = _optional_str(spec.get("autoSnapshotPolicyId"), "spec.autoSnapshotPolicyId")
    policy_name = _optional_str(spec.get("policyName"), "spec.policyName")
    if policy_name is None and adopt_id is None:
        policy_name = resource_name
    if policy_name is not None and len(policy_name) > POLICY_NAME_MAX_CHARS:
        raise SpecError("spec.policyName", f"is longer than {POLICY_NAME_MAX_CHARS} characters")
    schedule: dict[str, tuple[int, ...] | None] = {}
    for key, field, low, high in (("dayOfWeek", "spec.dayOfWeek", 1, 7), ("hour", "spec.hour", 0, 23)):
        if spec.get(key) is None:
            if adopt_id is None:
                raise SpecError(field, "is required (it may only be omitted when adopting a policy)")
            schedule[key] = None
        else:
            schedule[key] = _int_set(spec[key], field, low, high)
    alive_days = spec.get("aliveDays")
    if alive_days is not None:
        alive_days = _int_in(alive_days, "spec.aliveDays", *ALIVE_DAYS_RANGE)
    is_active = spec.get("isActive")
    if is_active is None and adopt_id is None:
        is_active = True
    if is_active is not None and not isinstance(is_active, bool):
        raise SpecError("spec.isActive", f"{is_active!r} is not allowed; use true or false")
    file_system_ids = spec.get("fileSystemIds")
    if file_system_ids is not None:
        if not isinstance(file_system_ids, list):
            raise SpecError("spec.fileSystemIds", "must be a list of file system ids")
        for index, fs_id in enumerate(file_system_ids):
            if not isinstance(fs_id, str) or not _FILE_SYSTEM_ID.match(fs_id):
                raise SpecError(f"spec.fileSystemIds[{index}]", f"{fs_id!r} is not a file system id (cfs-…)")
        if len(set(file_system_ids)) > MAX_FILE_SYSTEMS_PER_POLICY:
            raise SpecError(
                "spec.fileSystemIds", f"a policy binds at most {MAX_FILE_SYSTEMS_PER_POLICY} file systems"
            )
        file_system_ids = tuple(sorted(set(file_system_ids)))
    raw_selector = spec.get("persistentVolumeClaimSelector")
    claim_selector = None
    if raw_selector is not None:
        if not isinstance(raw_selector, Mapping):
            raise SpecError("spec.persistentVolumeClaimSelector", "must be an object")
        claim_selector = ClaimSelector(
            namespace_selector=parse_label_selector(
                raw_selector.get("namespaceSelector"), "spec.persistentVolumeClaimSelector.namespaceSelector"
            ),
            label_selector=parse_label_selector(
                raw_selector.get("labelSelector"), "spec.persistentVolumeClaimSelector.labelSelector"
            ),
        )
    return PolicySpec(
        policy_name=policy_name,
        day_of_week=schedule["dayOfWeek"],
        hour=schedule["hour"],
        alive_days=alive_days,
        is_active=is_active,
        file_system_ids=file_system_ids,
        claim_selector=claim_selector,
        adopt_id=adopt_id,
        deletion_policy=_deletion_policy(spec.get("deletionPolicy"), adopt_id is not None),
    )
