"""kopf handlers: thin adapters from Kubernetes causes to the reconcile functions.

Everything registers into a registry passed to `register()` (no import-time global registry).
Handlers are async: they read kopf's in-memory indices on the event loop and run the blocking
cloud work in the runtime's worker pool. One asyncio lock per object keeps change handlers and
timers of the same object from reconciling at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from cfs_operator.changes import ChangeLog
from cfs_operator.config import OperatorConfig
from cfs_operator.convergence import (
    converge,
    delete_from_cloud,
    timer_may_reconcile,
)
from cfs_operator.groups import GroupState, delete_group, reconcile_group
from cfs_operator.policies import BindingFailed, PolicyState, delete_policy, reconcile_policy
from cfs_operator.runtime import OperatorRuntime
from cfs_operator.selection import (
    ClaimRecord,
    VolumeRecord,
    claim_record,
    resolve_file_systems,
    volume_record,
)
from cfs_operator.specs import PolicySpec, SpecError, parse_group_spec, parse_policy_spec

log = logging.getLogger(__name__)

GROUP = "cfs.tencentcloud.com"
VERSION = "v1alpha1"
PGROUPS = "cfspermissiongroups"
POLICIES = "cfsautosnapshotpolicies"
FINALIZER = "cfs.tencentcloud.com/finalizer"
PGROUP_KIND = "CfsPermissionGroup"
POLICY_KIND = "CfsAutoSnapshotPolicy"
PGROUP_ID = "pGroupId"
POLICY_ID = "autoSnapshotPolicyId"
# Per-object memo key: the file systems a policy's last reconciliation was asked to bind.
LAST_SELECTION = "last_selection"

# ---- permission groups ------------------------------------------------------------------------


def _group_status(state: GroupState) -> dict[str, Any]:
    return {
        PGROUP_ID: state.group.pgroup_id,
        "name": state.group.name,
        "bindCfsNum": state.group.bind_cfs_num,
        "ruleCount": len(state.rules),
        "rules": [
            {
                "ruleId": r.rule_id,
                "clientIp": r.rule.client_ip,
                "rwPermission": r.rule.rw_permission,
                "userPermission": r.rule.user_permission,
                "priority": r.rule.priority,
            }
            for r in state.rules
        ],
        "adopted": state.adopted,
    }


def _mark_creating(
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    id_field: str,
    adopt_field: str,
    name_field: str,
) -> None:
    """Remember which name we are about to create, so a create whose reply was lost is recognised."""
    if not status.get(id_field) and not spec.get(adopt_field):
        patch.status["creating"] = spec.get(name_field) or meta["name"]


async def _reconcile_group(
    trigger: str,
    *,
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int = 0,
) -> None:
    runtime: OperatorRuntime = memo.runtime
    _mark_creating(spec, status, meta, patch, PGROUP_ID, "pGroupId", "name")

    async def work(changes: ChangeLog, latest: dict[str, Any]) -> dict[str, Any]:
        parsed = parse_group_spec(spec, meta["name"])
        # The persisted status: a "creating" mark there comes from an earlier, interrupted attempt.
        state = await runtime.run(reconcile_group, runtime.client, parsed, latest, changes)
        return _group_status(state)

    await converge(
        kind=PGROUP_KIND,
        id_field=PGROUP_ID,
        trigger=trigger,
        work=work,
        body=body,
        status=status,
        meta=meta,
        patch=patch,
        memo=memo,
        retry=retry,
    )


async def group_changed(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    **_: Any,
) -> None:
    await _reconcile_group(
        "change", body=body, spec=spec, status=status, meta=meta, patch=patch, memo=memo, retry=retry
    )


async def group_drift(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    if not timer_may_reconcile(status, meta, memo, PGROUP_ID):
        return
    await _reconcile_group("drift", body=body, spec=spec, status=status, meta=meta, patch=patch, memo=memo)


async def group_deleted(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    **_: Any,
) -> None:
    await delete_from_cloud(
        kind=PGROUP_KIND,
        id_field=PGROUP_ID,
        adopt_field="pGroupId",
        remove=delete_group,
        body=body,
        spec=spec,
        status=status,
        meta=meta,
        patch=patch,
        memo=memo,
        retry=retry,
    )


# ---- claim / volume / namespace indices -------------------------------------------------------


def cfs_claims(body: kopf.Body, namespace: str | None, name: str | None, **_: Any) -> dict[Any, Any]:
    # Always return the key, with None for claims not (yet) bound, so a re-bind replaces the entry.
    return {(namespace, name): claim_record(body)}


def cfs_volumes(body: kopf.Body, name: str | None, **_: Any) -> dict[Any, Any]:
    return {name: volume_record(body)}


def cfs_namespaces(name: str | None, labels: kopf.Labels, **_: Any) -> dict[Any, Any]:
    return {name: dict(labels)}


def _single(index: kopf.Index) -> dict[Any, Any]:
    """{key: value} from a kopf index where each key holds one object's value."""
    return {key: value for key, store in index.items() for value in store}


def desired_file_systems(
    spec: PolicySpec, namespaces: kopf.Index, claims: kopf.Index, volumes: kopf.Index
) -> set[str] | None:
    if not spec.manages_bindings:
        return None
    wanted = set(spec.file_system_ids or ())
    if spec.claim_selector is not None:
        claim_records: list[ClaimRecord] = [c for c in _single(claims).values() if c is not None]
        volume_records: dict[str, VolumeRecord] = {k: v for k, v in _single(volumes).items() if v is not None}
        wanted |= resolve_file_systems(
            spec.claim_selector, _single(namespaces), claim_records, volume_records
        )
    return wanted


# ---- automatic snapshot policies --------------------------------------------------------------


def _policy_status(state: PolicyState) -> dict[str, Any]:
    return {
        POLICY_ID: state.policy.policy_id,
        "policyName": state.policy.policy_name,
        "fileSystemIds": list(state.policy.file_system_ids),
        "fileSystemCount": len(state.policy.file_system_ids),
        "nextActiveTime": state.policy.next_active_time,
        "adopted": state.adopted,
    }


async def _reconcile_policy(
    trigger: str,
    *,
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    indices: Mapping[str, kopf.Index],
    retry: int = 0,
) -> None:
    runtime: OperatorRuntime = memo.runtime
    _mark_creating(spec, status, meta, patch, POLICY_ID, "autoSnapshotPolicyId", "policyName")

    async def work(changes: ChangeLog, latest: dict[str, Any]) -> dict[str, Any]:
        parsed = parse_policy_spec(spec, meta["name"])
        desired = desired_file_systems(parsed, **indices)
        try:
            state = await runtime.run(reconcile_policy, runtime.client, parsed, desired, latest, changes)
        except BindingFailed as error:
            # Applied as far as the cloud allows: status shows what is bound, and the selection
            # timer need not retry this same set every tick (the change handler and the drift
            # timer retry it, less often).
            memo[LAST_SELECTION] = desired
            if error.state is not None:
                patch.status.update(_policy_status(error.state))
            raise
        memo[LAST_SELECTION] = desired
        return _policy_status(state)

    await converge(
        kind=POLICY_KIND,
        id_field=POLICY_ID,
        trigger=trigger,
        work=work,
        body=body,
        status=status,
        meta=meta,
        patch=patch,
        memo=memo,
        retry=retry,
    )


async def policy_changed(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    cfs_namespaces: kopf.Index,
    cfs_claims: kopf.Index,
    cfs_volumes: kopf.Index,
    **_: Any,
) -> None:
    indices = {"namespaces": cfs_namespaces, "claims": cfs_claims, "volumes": cfs_volumes}
    await _reconcile_policy(
        "change",
        body=body,
        spec=spec,
        status=status,
        meta=meta,
        patch=patch,
        memo=memo,
        indices=indices,
        retry=retry,
    )


async def policy_drift(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    cfs_namespaces: kopf.Index,
    cfs_claims: kopf.Index,
    cfs_volumes: kopf.Index,
    **_: Any,
) -> None:
    if not timer_may_reconcile(status, meta, memo, POLICY_ID):
        return
    indices = {"namespaces": cfs_namespaces, "claims": cfs_claims, "volumes": cfs_volumes}
    await _reconcile_policy(
        "drift", body=body, spec=spec, status=status, meta=meta, patch=patch, memo=memo, indices=indices
    )


async def policy_selection(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    cfs_namespaces: kopf.Index,
    cfs_claims: kopf.Index,
    cfs_volumes: kopf.Index,
    **_: Any,
) -> None:
    """Follow claims: reconcile only when the selector now resolves to other file systems."""
    if not timer_may_reconcile(status, meta, memo, POLICY_ID):
        return
    try:
        parsed = parse_policy_spec(spec, meta["name"])
    except SpecError:
        return  # already reported by the change handler
    if parsed.claim_selector is None:
        return
    indices = {"namespaces": cfs_namespaces, "claims": cfs_claims, "volumes": cfs_volumes}
    if desired_file_systems(parsed, **indices) == memo.get(
        LAST_SELECTION, set(status.get("fileSystemIds") or ())
    ):
        return
    await _reconcile_policy(
        "selection", body=body, spec=spec, status=status, meta=meta, patch=patch, memo=memo, indices=indices
    )


async def policy_deleted(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    **_: Any,
) -> None:
    await delete_from_cloud(
        kind=POLICY_KIND,
        id_field=POLICY_ID,
        adopt_field="autoSnapshotPolicyId",
        remove=delete_policy,
        body=body,
        spec=spec,
        status=status,
        meta=meta,
        patch=patch,
        memo=memo,
        retry=retry,
    )


# ---- wiring -----------------------------------------------------------------------------------


def operator_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    # Handler progress and the diff base live in annotations, so the status schema stays ours.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Our own Events (kopf.event) describe cloud changes; kopf's log lines only when they warn.
    settings.posting.level = logging.WARNING
    return settings


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """Register every handler of the operator into `registry`."""

    def resource(plural: str, decorator: Callable[..., Any], **options: Any) -> Callable[..., Any]:
        return decorator(GROUP, VERSION, plural, registry=registry, **options)

    for plural, changed, deleted, drift in (
        (PGROUPS, group_changed, group_deleted, group_drift),
        (POLICIES, policy_changed, policy_deleted, policy_drift),
    ):
        for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
            resource(plural, decorator)(changed)
        resource(plural, kopf.on.delete)(deleted)
        resource(plural, kopf.timer, interval=config.drift_interval, initial_delay=config.drift_interval)(
            drift
        )
    resource(
        POLICIES, kopf.timer, interval=config.selection_interval, initial_delay=config.selection_interval
    )(policy_selection)

    def in_claim_namespaces(namespace: str | None, **_: Any) -> bool:
        return not config.claim_namespaces or namespace in config.claim_namespaces

    kopf.index("v1", "persistentvolumeclaims", registry=registry, when=in_claim_namespaces)(cfs_claims)
    kopf.index("v1", "persistentvolumes", registry=registry)(cfs_volumes)
    kopf.index("v1", "namespaces", registry=registry)(cfs_namespaces)
