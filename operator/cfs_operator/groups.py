"""Make one CFS permission group and its rules match a GroupSpec (blocking cloud calls).

Runs in a worker thread. Planning is in plans.py; this module only observes, executes the
plan and records each change.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from cfs_cloud import CfsClient, CfsInvalidParameter, CfsNotFound
from cfs_operator.changes import ChangeLog
from cfs_operator.lookup import locate
from cfs_operator.plans import (
    CloudGroup,
    CloudRule,
    CreateRule,
    DeleteRule,
    UpdateRule,
    group_from_cloud,
    plan_group_update,
    plan_rules,
    rule_from_cloud,
    rule_params,
)
from cfs_operator.specs import GroupSpec, RuleSpec, SpecError

DUPLICATED_NAME = "InvalidParameterValue.DuplicatedPgroupName"


@dataclass(frozen=True)
class GroupState:
    group: CloudGroup
    rules: tuple[CloudRule, ...]
    adopted: bool


def describe_group(client: CfsClient, pgroup_id: str) -> CloudGroup | None:
    raw = client.find_item("DescribeCfsPGroups", "PGroupList", "PGroupId", pgroup_id, PGroupId=pgroup_id)
    return None if raw is None else group_from_cloud(raw)


def find_group_by_name(client: CfsClient, name: str) -> CloudGroup | None:
    raw = client.find_item("DescribeCfsPGroups", "PGroupList", "Name", name, Name=name)
    return None if raw is None else group_from_cloud(raw)


def describe_rules(client: CfsClient, pgroup_id: str) -> list[CloudRule]:
    reply = client.call("DescribeCfsRules", {"PGroupId": pgroup_id})
    return [rule_from_cloud(raw) for raw in reply.get("RuleList") or ()]


def _create_group(
    client: CfsClient, spec: GroupSpec, resumed_create: bool, log: ChangeLog
) -> tuple[CloudGroup, bool]:
    """(the group, whether it was created just now rather than found from an earlier attempt)."""
    if spec.name is None:  # parse_group_spec allows no name only when a group is adopted
        raise SpecError("spec.name", "is required to create a permission group")
    params: dict[str, Any] = {"Name": spec.name}
    if spec.description is not None:
        params["DescInfo"] = spec.description
    try:
        reply = client.call("CreateCfsPGroup", params)
    except CfsInvalidParameter as err:
        if err.code != DUPLICATED_NAME:
            raise
        # Our own earlier create may have succeeded without its reply reaching us: then the
        # status carries the name we were creating, and the existing group is ours.
        existing = find_group_by_name(client, spec.name) if resumed_create else None
        if existing is None:
            raise SpecError(
                "spec.name",
                f"a permission group named {spec.name!r} already exists; "
                "set spec.pGroupId to adopt it or choose another name",
            ) from None
        log.cloud_id = existing.pgroup_id
        log.add("Adopted", f"found permission group {existing.pgroup_id} from an interrupted create")
        return existing, False
    log.cloud_id = reply["PGroupId"]
    log.add("Created", f"created permission group {reply['PGroupId']} ({spec.name})")
    return CloudGroup(reply["PGroupId"], spec.name, spec.description or "", 0), True


def _apply_rules(
    client: CfsClient, group: CloudGroup, spec: GroupSpec, observed: list[CloudRule], log: ChangeLog
) -> tuple[CloudRule, ...]:
    if spec.rules is None:
        return tuple(observed)
    result = {rule.rule_id: rule for rule in observed}
    for action in plan_rules(spec.rules, observed):
        if isinstance(action, DeleteRule):
            try:
                client.call("DeleteCfsRule", {"PGroupId": group.pgroup_id, "RuleId": action.rule_id})
            except CfsNotFound:
                pass  # already gone: the outcome we wanted
            del result[action.rule_id]
            log.add("RuleDeleted", f"deleted rule {action.rule_id} for {action.previous.client_ip}")
        elif isinstance(action, UpdateRule):
            client.call(
                "UpdateCfsRule",
                {"PGroupId": group.pgroup_id, "RuleId": action.rule_id, **rule_params(action.rule)},
            )
            result[action.rule_id] = CloudRule(action.rule_id, action.rule)
            log.add(
                "RuleUpdated",
                f"updated rule {action.rule_id}: {_describe(action.previous)} -> {_describe(action.rule)}",
            )
        elif isinstance(action, CreateRule):
            reply = client.call("CreateCfsRule", {"PGroupId": group.pgroup_id, **rule_params(action.rule)})
            result[reply["RuleId"]] = CloudRule(reply["RuleId"], action.rule)
            log.add("RuleCreated", f"created rule {reply['RuleId']}: {_describe(action.rule)}")
    order = {rule.client_ip: index for index, rule in enumerate(spec.rules)}
    return tuple(sorted(result.values(), key=lambda r: order.get(r.rule.client_ip, len(order))))


def _describe(rule: RuleSpec) -> str:
    return f"{rule.client_ip} {rule.rw_permission} {rule.user_permission} priority {rule.priority}"


def reconcile_group(client: CfsClient, spec: GroupSpec, status: dict[str, Any], log: ChangeLog) -> GroupState:
    """Create or adopt the group if needed, then converge its name, description and rules.

    ``status`` is the resource's current status (the group id and any interrupted create).
    """
    group, adopted = locate(
        functools.partial(describe_group, client),
        known_id=status.get("pGroupId"),
        adopt_id=spec.adopt_id,
        adopted_before=bool(status.get("adopted")),
        adopt_field="spec.pGroupId",
        noun="permission group",
        log=log,
    )
    fresh = False
    if group is None:
        group, fresh = _create_group(client, spec, status.get("creating") == spec.name, log)
    else:
        log.cloud_id = group.pgroup_id
    # A group created just now has no rules yet: no need to ask.
    observed = [] if fresh else describe_rules(client, group.pgroup_id)
    changes = plan_group_update(spec, group)
    if changes:
        client.call("UpdateCfsPGroup", {"PGroupId": group.pgroup_id, **changes})
        group = CloudGroup(
            group.pgroup_id,
            changes.get("Name", group.name),
            changes.get("DescInfo", group.description),
            group.bind_cfs_num,
        )
        log.add("GroupUpdated", f"updated permission group {group.pgroup_id}: {', '.join(sorted(changes))}")
    rules = _apply_rules(client, group, spec, observed, log)
    return GroupState(group, rules, adopted)


def delete_group(client: CfsClient, pgroup_id: str, log: ChangeLog) -> None:
    """Delete the group (its rules go with it). Raises CfsInUse while file systems use it."""
    try:
        client.call("DeleteCfsPGroup", {"PGroupId": pgroup_id})
    except CfsNotFound:
        return
    log.add("Deleted", f"deleted permission group {pgroup_id}")
