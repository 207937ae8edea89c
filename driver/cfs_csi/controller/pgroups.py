"""Managed permission groups: one CFS permission group per distinct rule set.

A StorageClass without `pGroupId` describes its clients (`allowedClients`, `rwPermission`,
`userPermission`). The group's name is a hash of those rules, so every volume of the class -
from any controller replica, before or after a restart - lands in the same group without any
stored state. Creation is race-safe without locks: a concurrent creator's group is found again
after `DuplicatedPgroupName`, and a duplicate rule (`DuplicatedRuleAuthClientIp`) is already there.

A managed group is deleted when the last file system using it is deleted; CFS refuses while
the group is still bound (`FailedOperation.PgroupInUse`), which simply means "not the last".
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading

from cfs_cloud import CfsClient
from cfs_cloud.errors import CfsInUse, CfsInvalidParameter, CfsNotFound
from cfs_csi.controller.params import AccessRule

log = logging.getLogger(__name__)

MANAGED_PREFIX = "cfs-csi-"
MANAGED_NAME_RE = re.compile(r"^cfs-csi-[0-9a-f]{20}$")
DUPLICATED_GROUP = "InvalidParameterValue.DuplicatedPgroupName"
DUPLICATED_RULE = "InvalidParameterValue.DuplicatedRuleAuthClientIp"


def managed_group_name(rules: tuple[AccessRule, ...]) -> str:
    """Deterministic name for a rule set; rule order is part of it (it sets the priorities)."""
    canonical = json.dumps([[r.client, r.rw_permission, r.user_permission] for r in rules])
    return MANAGED_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[:20]


def is_managed(group_name: str) -> bool:
    return bool(MANAGED_NAME_RE.match(group_name or ""))


class ManagedGroups:
    """Ensures and releases managed groups. Remembers groups it verified (a cache, not state:
    a stale entry shows up as `PgroupNotFound` on create and is dropped with `forget`)."""

    def __init__(self) -> None:
        self._verified: dict[str, str] = {}  # group name -> PGroupId
        self._flights: dict[str, threading.Lock] = {}  # group name -> held while one caller ensures it
        self._guard = threading.Lock()

    def ensure(self, client: CfsClient, rules: tuple[AccessRule, ...]) -> str:
        """Single flight per rule set: a batch of claims of one class makes one find/create and
        one rule per client, not one race per claim; the others wait for that result."""
        name = managed_group_name(rules)
        with self._guard:
            flight = self._flights.setdefault(name, threading.Lock())
        with flight:
            with self._guard:
                known = self._verified.get(name)
            if known:
                return known
            group_id = self._find(client, name) or self._create(client, name, rules)
            self._ensure_rules(client, group_id, rules)
            with self._guard:
                self._verified[name] = group_id
            return group_id

    def forget(self, group_id: str) -> None:
        with self._guard:
            for name, known in list(self._verified.items()):
                if known == group_id:
                    del self._verified[name]

    def release(self, client: CfsClient, group_id: str, group_name: str) -> bool:
        """Delete a managed group that no file system uses any more; True when it is gone."""
        if not is_managed(group_name):
            return False
        self.forget(group_id)
        try:
            client.call("DeleteCfsPGroup", {"PGroupId": group_id})
        except CfsInUse:
            log.debug("permission group %s still in use; kept", group_id)
            return False
        except CfsNotFound:
            pass
        log.info("deleted managed permission group %s (%s)", group_id, group_name)
        return True

    def sweep_unused(self, client: CfsClient) -> None:
        """Delete managed groups bound to no file system.

        Used when a delete finds its file system already gone (e.g. a retry after the
        controller died mid-delete), so the group it used is unknown but must not leak.
        """
        for group in client.paginate("DescribeCfsPGroups", "PGroupList"):
            if is_managed(group.get("Name", "")) and not group.get("BindCfsNum"):
                self.release(client, group["PGroupId"], group["Name"])

    def _find(self, client: CfsClient, name: str) -> str | None:
        for group in client.paginate("DescribeCfsPGroups", "PGroupList", Name=name):
            if group.get("Name") == name:  # the API's Name filter may match fuzzily
                return group["PGroupId"]
        return None

    def _create(self, client: CfsClient, name: str, rules: tuple[AccessRule, ...]) -> str:
        clients = ", ".join(r.client for r in rules)
        try:
            reply = client.call(
                "CreateCfsPGroup", {"Name": name, "DescInfo": f"managed by cfs-csi for {clients}"[:255]}
            )
        except CfsInvalidParameter as err:
            found = self._find(client, name) if err.code == DUPLICATED_GROUP else None
            if found is None:
                raise
            return found
        log.info("created managed permission group %s (%s) for %s", reply["PGroupId"], name, clients)
        return reply["PGroupId"]

    @staticmethod
    def _ensure_rules(client: CfsClient, group_id: str, rules: tuple[AccessRule, ...]) -> None:
        existing = client.call("DescribeCfsRules", {"PGroupId": group_id}).get("RuleList") or []
        present = {rule.get("AuthClientIp") for rule in existing}
        for priority, rule in enumerate(rules, start=1):
            if rule.client in present:
                continue
            try:
                client.call(
                    "CreateCfsRule",
                    {
                        "PGroupId": group_id,
                        "AuthClientIp": rule.client,
                        "Priority": priority,
                        "RWPermission": rule.rw_permission,
                        "UserPermission": rule.user_permission,
                    },
                )
            except CfsInvalidParameter as err:
                if err.code != DUPLICATED_RULE:
                    raise
