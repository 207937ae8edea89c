"""Desired vs observed → the fewest cloud changes. Pure functions, no I/O.

The cloud side is described by the small ``Cloud*`` records built from API replies here, so
the planning can be unit-tested with plain data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cfs_cloud.rules import EVERY_CLIENT
from cfs_operator.specs import GroupSpec, PolicySpec, RuleSpec, SpecError, normalize_client_ip


@dataclass(frozen=True)
class CloudRule:
    rule_id: str
    rule: RuleSpec


@dataclass(frozen=True)
class CloudGroup:
    pgroup_id: str
    name: str
    description: str
    bind_cfs_num: int


@dataclass(frozen=True)
class CloudPolicy:
    policy_id: str
    policy_name: str
    day_of_week: tuple[int, ...]
    hour: tuple[int, ...]
    alive_days: int
    is_active: bool
    next_active_time: str
    file_system_ids: tuple[str, ...]


@dataclass(frozen=True)
class CreateRule:
    rule: RuleSpec


@dataclass(frozen=True)
class UpdateRule:
    rule_id: str
    rule: RuleSpec
    previous: RuleSpec


@dataclass(frozen=True)
class DeleteRule:
    rule_id: str
    previous: RuleSpec


RuleAction = CreateRule | UpdateRule | DeleteRule


def _cloud_client_ip(value: str) -> str:
    # The cloud may report an address differently from how the spec wrote it (10.0.0.1/32);
    # compare normalised forms, but keep anything unparsable verbatim so it is simply "extra".
    try:
        return normalize_client_ip(value, "AuthClientIp")
    except SpecError:
        return value


def rule_from_cloud(raw: Mapping[str, Any]) -> CloudRule:
    return CloudRule(
        rule_id=raw["RuleId"],
        rule=RuleSpec(
            client_ip=_cloud_client_ip(raw.get("AuthClientIp") or EVERY_CLIENT),
            # PGroupRuleInfo documents lower-case ro/rw; the spec and the write calls use RO/RW.
            rw_permission=str(raw.get("RWPermission", "")).upper(),
            user_permission=str(raw.get("UserPermission", "")),
            priority=int(raw.get("Priority", 0)),
        ),
    )


def group_from_cloud(raw: Mapping[str, Any]) -> CloudGroup:
    return CloudGroup(
        pgroup_id=raw["PGroupId"],
        name=raw.get("Name", ""),
        description=raw.get("DescInfo") or "",
        bind_cfs_num=int(raw.get("BindCfsNum") or 0),
    )


def _int_list(text: Any) -> tuple[int, ...]:
    return tuple(sorted({int(part) for part in str(text or "").split(",") if part.strip()}))


def format_int_list(values: Iterable[int]) -> str:
    """The API's list encoding for DayOfWeek / Hour: '1,3,5'."""
    return ",".join(str(value) for value in sorted(values))


def policy_from_cloud(raw: Mapping[str, Any]) -> CloudPolicy:
    return CloudPolicy(
        policy_id=raw["AutoSnapshotPolicyId"],
        policy_name=raw.get("PolicyName", ""),
        day_of_week=_int_list(raw.get("DayOfWeek")),
        hour=_int_list(raw.get("Hour")),
        alive_days=int(raw.get("AliveDays") or 0),
        is_active=bool(int(raw.get("IsActive") or 0)),
        next_active_time=raw.get("NextActiveTime") or "",
        file_system_ids=tuple(sorted(fs["FileSystemId"] for fs in raw.get("FileSystems") or ())),
    )


def plan_rules(desired: Iterable[RuleSpec], observed: Iterable[CloudRule]) -> list[RuleAction]:
    """Rules are keyed by client: unchanged ones are kept, changed ones updated in place.

    A cloud rule whose client is no longer wanted is re-pointed at a wanted client that has no
    rule yet (one update instead of a delete and a create); what is left over is deleted or
    created. Deletes come first so the group never holds more rules than it will in the end.
    """
    desired_by_ip = {rule.client_ip: rule for rule in desired}
    matched: dict[str, CloudRule] = {}
    leftovers: list[CloudRule] = []
    for cloud_rule in observed:
        ip = cloud_rule.rule.client_ip
        if ip in desired_by_ip and ip not in matched:
            matched[ip] = cloud_rule
        else:
            leftovers.append(cloud_rule)
    missing = [rule for ip, rule in desired_by_ip.items() if ip not in matched]

    updates: list[RuleAction] = [
        UpdateRule(cloud_rule.rule_id, desired_by_ip[ip], cloud_rule.rule)
        for ip, cloud_rule in matched.items()
        if cloud_rule.rule != desired_by_ip[ip]
    ]
    reused = min(len(leftovers), len(missing))
    updates += [
        UpdateRule(cloud_rule.rule_id, rule, cloud_rule.rule)
        for cloud_rule, rule in zip(leftovers[:reused], missing[:reused], strict=True)
    ]
    deletes: list[RuleAction] = [DeleteRule(r.rule_id, r.rule) for r in leftovers[reused:]]
    creates: list[RuleAction] = [CreateRule(rule) for rule in missing[reused:]]
    return deletes + updates + creates


def rule_params(rule: RuleSpec) -> dict[str, Any]:
    return {
        "AuthClientIp": rule.client_ip,
        "RWPermission": rule.rw_permission,
        "UserPermission": rule.user_permission,
        "Priority": rule.priority,
    }


def plan_group_update(spec: GroupSpec, cloud: CloudGroup) -> dict[str, Any]:
    """UpdateCfsPGroup parameters for what differs (empty: nothing to do)."""
    changes: dict[str, Any] = {}
    if spec.name is not None and spec.name != cloud.name:
        changes["Name"] = spec.name
    if spec.description is not None and spec.description != cloud.description:
        changes["DescInfo"] = spec.description
    return changes


def create_policy_params(spec: PolicySpec) -> dict[str, Any]:
    params: dict[str, Any] = {
        "PolicyName": spec.policy_name,
        "DayOfWeek": format_int_list(spec.day_of_week or ()),
        "Hour": format_int_list(spec.hour or ()),
    }
    if spec.alive_days is not None:
        params["AliveDays"] = spec.alive_days
    return params


def plan_policy_update(spec: PolicySpec, cloud: CloudPolicy) -> dict[str, Any]:
    """UpdateAutoSnapshotPolicy parameters for what differs (empty: nothing to do)."""
    changes: dict[str, Any] = {}
    if spec.policy_name is not None and spec.policy_name != cloud.policy_name:
        changes["PolicyName"] = spec.policy_name
    if spec.day_of_week is not None and spec.day_of_week != cloud.day_of_week:
        changes["DayOfWeek"] = format_int_list(spec.day_of_week)
    if spec.hour is not None and spec.hour != cloud.hour:
        changes["Hour"] = format_int_list(spec.hour)
    if spec.alive_days is not None and spec.alive_days != cloud.alive_days:
        changes["AliveDays"] = spec.alive_days
    if spec.is_active is not None and spec.is_active != cloud.is_active:
        changes["IsActive"] = int(spec.is_active)
    return changes


def plan_bindings(desired: Iterable[str] | None, observed: Iterable[str]) -> tuple[list[str], list[str]]:
    """(file systems to bind, file systems to unbind); desired None means bindings are unmanaged."""
    if desired is None:
        return [], []
    wanted, present = set(desired), set(observed)
    return sorted(wanted - present), sorted(present - wanted)
