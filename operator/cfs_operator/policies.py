"""Make one CFS automatic snapshot policy and its bindings match a PolicySpec (blocking calls).

Runs in a worker thread. Planning is in plans.py; this module observes, executes and records.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

from cfs_cloud import CfsClient, CfsError, CfsInvalidParameter, CfsNotFound
from cfs_operator.changes import ChangeLog
from cfs_operator.lookup import locate
from cfs_operator.plans import (
    CloudPolicy,
    create_policy_params,
    plan_bindings,
    plan_policy_update,
    policy_from_cloud,
)
from cfs_operator.specs import MAX_FILE_SYSTEMS_PER_POLICY, PolicySpec, SpecError

LIST_PAGE = 100


@dataclass(frozen=True)
class PolicyState:
    policy: CloudPolicy
    adopted: bool


class BindingFailed(Exception):
    """Some file systems could not be bound; the others were. Retried later.

    ``state`` is the policy as the reconciliation left it, so status can still report it.
    """

    def __init__(self, failures: dict[str, CfsError], state: PolicyState | None = None):
        details = "; ".join(f"{fs_id}: {err.code}" for fs_id, err in sorted(failures.items()))
        super().__init__(f"could not bind {len(failures)} file system(s): {details}")
        self.failures = failures
        self.state = state


def describe_policy(client: CfsClient, policy_id: str) -> CloudPolicy | None:
    raw = client.find_item(
        "DescribeAutoSnapshotPolicies",
        "AutoSnapshotPolicies",
        "AutoSnapshotPolicyId",
        policy_id,
        AutoSnapshotPolicyId=policy_id,
    )
    return None if raw is None else policy_from_cloud(raw)


def find_policy_by_name(client: CfsClient, name: str) -> CloudPolicy | None:
    # An account holds at most 30 policies (vendor limit), so one page covers them all.
    raw = client.find_item(
        "DescribeAutoSnapshotPolicies", "AutoSnapshotPolicies", "PolicyName", name, Limit=LIST_PAGE
    )
    return None if raw is None else policy_from_cloud(raw)


def _create_policy(client: CfsClient, spec: PolicySpec, resumed_create: bool, log: ChangeLog) -> CloudPolicy:
    if spec.policy_name is None:  # parse_policy_spec allows no name only when adopting
        raise SpecError("spec.policyName", "is required to create a policy")
    # A create whose reply was lost left a policy with our name: take it instead of a second one.
    existing = find_policy_by_name(client, spec.policy_name) if resumed_create else None
    if existing is not None:
        log.cloud_id = existing.policy_id
        log.add("Adopted", f"found snapshot policy {existing.policy_id} from an interrupted create")
        return existing
    reply = client.call("CreateAutoSnapshotPolicy", create_policy_params(spec))
    policy_id = reply["AutoSnapshotPolicyId"]
    log.cloud_id = policy_id
    log.add("Created", f"created snapshot policy {policy_id} ({spec.policy_name})")
    created = describe_policy(client, policy_id)
    if created is None:
        raise CfsNotFound("ResourceNotFound", f"snapshot policy {policy_id} vanished right after creation")
    return created


def _bind(client: CfsClient, policy_id: str, fs_ids: list[str]) -> dict[str, CfsError]:
    """Bind all in one call; if the cloud refuses the batch, bind one by one to find the culprits."""
    try:
        client.call(
            "BindAutoSnapshotPolicy", {"AutoSnapshotPolicyId": policy_id, "FileSystemIds": ",".join(fs_ids)}
        )
        return {}
    except (CfsNotFound, CfsInvalidParameter) as err:
        if len(fs_ids) == 1:
            return {fs_ids[0]: err}
    failures: dict[str, CfsError] = {}
    for fs_id in fs_ids:
        try:
            client.call("BindAutoSnapshotPolicy", {"AutoSnapshotPolicyId": policy_id, "FileSystemIds": fs_id})
        except (CfsNotFound, CfsInvalidParameter) as err:
            failures[fs_id] = err
    return failures


def _converge_bindings(
    client: CfsClient, policy: CloudPolicy, desired: Collection[str] | None, log: ChangeLog
) -> tuple[CloudPolicy, dict[str, CfsError]]:
    """(the policy with its bindings as they now are, the file systems that could not be bound)."""
    to_bind, to_unbind = plan_bindings(desired, policy.file_system_ids)
    bound = set(policy.file_system_ids)
    if to_unbind:
        client.call(
            "UnbindAutoSnapshotPolicy",
            {"AutoSnapshotPolicyId": policy.policy_id, "FileSystemIds": ",".join(to_unbind)},
        )
        bound -= set(to_unbind)
        log.add("Unbound", f"unbound {', '.join(to_unbind)} from snapshot policy {policy.policy_id}")
    failures: dict[str, CfsError] = {}
    if to_bind:
        failures = _bind(client, policy.policy_id, to_bind)
        newly_bound = [fs_id for fs_id in to_bind if fs_id not in failures]
        bound |= set(newly_bound)
        if newly_bound:
            log.add("Bound", f"bound {', '.join(newly_bound)} to snapshot policy {policy.policy_id}")
    return replace(policy, file_system_ids=tuple(sorted(bound))), failures


def reconcile_policy(
    client: CfsClient,
    spec: PolicySpec,
    desired_file_systems: Collection[str] | None,
    status: dict[str, Any],
    log: ChangeLog,
) -> PolicyState:
    """Create or adopt the policy if needed, then converge its settings and its bindings.

    ``desired_file_systems`` is spec.fileSystemIds plus what the claim selector resolved to
    (None: bindings are not managed). ``status`` is the resource's current status.
    """
    if desired_file_systems is not None and len(desired_file_systems) > MAX_FILE_SYSTEMS_PER_POLICY:
        raise SpecError(
            "spec.persistentVolumeClaimSelector",
            f"selects {len(desired_file_systems)} file systems; a policy binds at most "
            f"{MAX_FILE_SYSTEMS_PER_POLICY}",
        )
    policy, adopted = locate(
        functools.partial(describe_policy, client),
        known_id=status.get("autoSnapshotPolicyId"),
        adopt_id=spec.adopt_id,
        adopted_before=bool(status.get("adopted")),
        adopt_field="spec.autoSnapshotPolicyId",
        noun="snapshot policy",
        log=log,
    )
    if policy is None:
        policy = _create_policy(client, spec, status.get("creating") == spec.policy_name, log)
    else:
        log.cloud_id = policy.policy_id
    changes = plan_policy_update(spec, policy)
    if changes:
        client.call("UpdateAutoSnapshotPolicy", {"AutoSnapshotPolicyId": policy.policy_id, **changes})
        log.add("PolicyUpdated", f"updated snapshot policy {policy.policy_id}: {', '.join(sorted(changes))}")
        # The next run time depends on the schedule: read it back rather than guess it.
        policy = describe_policy(client, policy.policy_id) or policy
    policy, failures = _converge_bindings(client, policy, desired_file_systems, log)
    if failures:
        raise BindingFailed(failures, PolicyState(policy, adopted))
    return PolicyState(policy, adopted)


def delete_policy(client: CfsClient, policy_id: str, log: ChangeLog) -> None:
    """Unbind every file system, then delete the policy."""
    policy = describe_policy(client, policy_id)
    if policy is None:
        return
    if policy.file_system_ids:
        client.call(
            "UnbindAutoSnapshotPolicy",
            {"AutoSnapshotPolicyId": policy_id, "FileSystemIds": ",".join(policy.file_system_ids)},
        )
        log.add("Unbound", f"unbound {', '.join(policy.file_system_ids)} from snapshot policy {policy_id}")
    try:
        client.call("DeleteAutoSnapshotPolicy", {"AutoSnapshotPolicyId": policy_id})
    except CfsNotFound:
        return
    log.add("Deleted", f"deleted snapshot policy {policy_id}")
