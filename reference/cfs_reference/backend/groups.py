"""Permission groups and their rules (docs "权限管理")."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cfs_reference import ids
from cfs_reference.backend import limits
from cfs_reference.backend.state import ALL_REGIONS, FILE_SYSTEM, PGROUP, RULE, State
from cfs_reference.errors import ApiError, not_found, require

DEFAULT_PGROUP_NAMES = MappingProxyType({"zh": "默认权限组", "en": "Default permission group"})
# The default group lets every client in, read-write, root kept as root.
DEFAULT_RULE = MappingProxyType({"client": "*", "access": "RW", "squash": "no_root_squash", "priority": 1})


@dataclass(frozen=True)
class RuleFields:
    """A rule as the API states it (any of them may be absent on update)."""

    client: str | None = None
    access: str | None = None
    squash: str | None = None
    priority: int | None = None


class Groups:
    def __init__(self, state: State):
        self.state = state

    def ensure_default(self) -> None:
        """Create the default permission group (and its allow-all rule) on first start."""
        if ids.DEFAULT_PGROUP_ID in self.state.tables[PGROUP]:
            return
        with self.state.change() as change:
            change.save(
                PGROUP,
                {
                    "id": ids.DEFAULT_PGROUP_ID,
                    "region": ALL_REGIONS,
                    "name": DEFAULT_PGROUP_NAMES["zh"],
                    "desc": "",
                    "created_at": self.state.now(),
                    "seq": self.state.take_seq(change),
                },
            )
            change.save(
                RULE,
                {
                    "id": ids.new_id(ids.RULE, self.state.taken_ids()),
                    "pgroup_id": ids.DEFAULT_PGROUP_ID,
                    **DEFAULT_RULE,
                    "seq": self.state.take_seq(change),
                },
            )

    # ---- groups ----

    def create(self, region: str, name: str, desc: str) -> dict[str, Any]:
        self._check_name(region, name, own_id=None)
        limits.check_description(desc)
        require(
            len([g for g in self.state.in_region(PGROUP, region) if g["region"] == region])
            < limits.PGROUPS_PER_REGION,
            "ResourceInsufficient.PgroupNumberLimitExceeded",
            f"a region holds at most {limits.PGROUPS_PER_REGION} permission groups",
        )
        with self.state.change() as change:
            record = {
                "id": ids.new_id(ids.PERMISSION_GROUP, self.state.taken_ids()),
                "region": region,
                "name": name,
                "desc": desc,
                "created_at": self.state.now(),
                "seq": self.state.take_seq(change),
            }
            change.save(PGROUP, record)
        return record

    def update(self, region: str, pgroup_id: str, name: str | None, desc: str | None) -> dict[str, Any]:
        record = self._own_group(region, pgroup_id)
        if not name and not desc:
            raise ApiError("InvalidParameterValue.MissingNameOrDescinfo", "give Name or DescInfo (or both)")
        if name:
            self._check_name(region, name, own_id=pgroup_id)
        if desc:
            limits.check_description(desc)
        record = dict(record, name=name or record["name"], desc=desc if desc is not None else record["desc"])
        with self.state.change() as change:
            change.save(PGROUP, record)
        return record

    def delete(self, region: str, pgroup_id: str) -> dict[str, Any]:
        record = self._own_group(region, pgroup_id)
        users = self.bound_file_systems(region, pgroup_id)
        require(
            not users,
            "FailedOperation.PgroupInUse",
            f"permission group {pgroup_id} is used by {', '.join(users)}",
        )
        with self.state.change() as change:
            for rule in self.state.rules_of(pgroup_id):
                change.remove(RULE, rule["id"])
            change.remove(PGROUP, pgroup_id)
        return record

    def describe(self, region: str) -> list[dict[str, Any]]:
        return sorted(self.state.in_region(PGROUP, region), key=lambda g: g["seq"])

    def bound_file_systems(self, region: str, pgroup_id: str) -> list[str]:
        return [fs["id"] for fs in self.state.in_region(FILE_SYSTEM, region) if fs["pgroup_id"] == pgroup_id]

    # ---- rules ----

    def rules(self, region: str, pgroup_id: str) -> list[dict[str, Any]]:
        self.state.pgroup(region, pgroup_id)
        return self.state.rules_of(pgroup_id)

    def create_rule(self, region: str, pgroup_id: str, fields: RuleFields) -> dict[str, Any]:
        self._own_group(region, pgroup_id)
        rule = self._checked_rule(pgroup_id, fields, own_id=None)
        require(
            len(self.state.rules_of(pgroup_id)) < limits.RULES_PER_PGROUP,
            "ResourceInsufficient.RuleLimitExceeded",
            f"a permission group holds at most {limits.RULES_PER_PGROUP} rules",
        )
        with self.state.change() as change:
            record = {
                "id": ids.new_id(ids.RULE, self.state.taken_ids()),
                "pgroup_id": pgroup_id,
                **rule,
                "seq": self.state.take_seq(change),
            }
            change.save(RULE, record)
        return record

    def update_rule(self, region: str, pgroup_id: str, rule_id: str, fields: RuleFields) -> dict[str, Any]:
        self._own_group(region, pgroup_id)
        current = self._rule(pgroup_id, rule_id)
        merged = RuleFields(
            client=fields.client if fields.client is not None else current["client"],
            access=fields.access if fields.access is not None else current["access"],
            squash=fields.squash if fields.squash is not None else current["squash"],
            priority=fields.priority if fields.priority is not None else current["priority"],
        )
        record = dict(current, **self._checked_rule(pgroup_id, merged, own_id=rule_id))
        with self.state.change() as change:
            change.save(RULE, record)
        return record

    def delete_rule(self, region: str, pgroup_id: str, rule_id: str) -> dict[str, Any]:
        self._own_group(region, pgroup_id)
        record = self._rule(pgroup_id, rule_id)
        with self.state.change() as change:
            change.remove(RULE, rule_id)
        return record

    # ---- helpers ----

    def _own_group(self, region: str, pgroup_id: str) -> dict[str, Any]:
        """A group this account may change: the default group is read-only."""
        record = self.state.pgroup(region, pgroup_id)
        require(
            pgroup_id != ids.DEFAULT_PGROUP_ID,
            "UnsupportedOperation",
            f"the default permission group {ids.DEFAULT_PGROUP_ID} cannot be changed",
        )
        return record

    def _check_name(self, region: str, name: str, own_id: str | None) -> None:
        if not name:
            raise ApiError("InvalidParameterValue.MissingPgroupName", "Name must not be empty")
        limits.check_name(
            name,
            "Name",
            "InvalidParameterValue.PgroupNameLimitExceeded",
            "InvalidParameterValue.InvalidPgroupName",
        )
        for group in self.state.in_region(PGROUP, region):
            if group["name"] == name and group["id"] != own_id:
                raise ApiError(
                    "InvalidParameterValue.DuplicatedPgroupName",
                    f"a permission group named {name!r} already exists ({group['id']})",
                )

    def _rule(self, pgroup_id: str, rule_id: str) -> dict[str, Any]:
        record = self.state.tables[RULE].get(rule_id)
        if record is None:
            raise not_found("ResourceNotFound.RuleNotFound", "rule", rule_id)
        require(
            record["pgroup_id"] == pgroup_id,
            "InvalidParameterValue.RuleNotMatchPgroup",
            f"rule {rule_id} belongs to another permission group, not {pgroup_id}",
        )
        return record

    def _checked_rule(self, pgroup_id: str, fields: RuleFields, own_id: str | None) -> dict[str, Any]:
        client = limits.check_client(fields.client or "")
        for rule in self.state.rules_of(pgroup_id):
            if rule["client"] == client and rule["id"] != own_id:
                raise ApiError(
                    "InvalidParameterValue.DuplicatedRuleAuthClientIp",
                    f"permission group {pgroup_id} already has a rule for {client} ({rule['id']})",
                )
        return {
            "client": client,
            "access": limits.check_choice(
                fields.access or "",
                "RWPermission",
                limits.ACCESS,
                "InvalidParameterValue.InvalidRwPermission",
            ),
            "squash": limits.check_choice(
                fields.squash or "",
                "UserPermission",
                limits.SQUASH,
                "InvalidParameterValue.InvalidUserPermission",
            ),
            "priority": limits.check_priority(fields.priority if fields.priority is not None else 0),
        }
