"""kopf handlers: thin adapters from Kubernetes causes to the reconcile functions.

Everything registers into a registry passed to `register()` (no import-time global registry).
Handlers are async: they read kopf's in-memory indices on the event loop and run the blocking
cloud work in the runtime's worker pool. One asyncio lock per object keeps change handlers and
timers of the same object from reconciling at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import kopf

from cfs_cloud import CfsInUse
from cfs_operator import metrics
from cfs_operator.changes import ChangeLog
from cfs_operator.conditions import (
    IN_USE,
    READY,
    SYNCED,
    Condition,
    merge_conditions,
    now_iso,
    without_condition,
)
from cfs_operator.config import OperatorConfig
from cfs_operator.failures import classify, create_may_have_happened, failed_permanently, failure_conditions
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
from cfs_operator.specs import PolicySpec, SpecError, deletion_policy_of, parse_group_spec, parse_policy_spec

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

# work(changes, status): one reconciliation given the resource's latest status; returns status fields.
Work = Callable[[ChangeLog, dict[str, Any]], Awaitable[dict[str, Any]]]
# Per-object memo keys: the cloud id the last reconciliation of this object ended with; the
# file systems a policy's last reconciliation was asked to bind; the newest generation of the
# spec found unworkable. The memo is current where a handler's `status` may not be: kopf applies
# a handler's status patch after it returns, and a timer can tick in between (or just before a
# change handler) with the object as it was.
LATEST_CLOUD_ID = "latest_cloud_id"
LAST_SELECTION = "last_selection"
UNWORKABLE_GENERATION = "unworkable_generation"


def _lock(memo: kopf.Memo) -> asyncio.Lock:
    return memo.setdefault("reconcile_lock", asyncio.Lock())


def _known_unworkable(memo: kopf.Memo, generation: int | None) -> bool:
    """Whether this generation of the spec (or a newer one) was already found unworkable."""
    unworkable = memo.get(UNWORKABLE_GENERATION)
    return unworkable is not None and generation is not None and unworkable >= generation


def _timer_may_reconcile(status: kopf.Status, meta: kopf.Meta, memo: kopf.Memo, id_field: str) -> bool:
    """Timers only maintain: creation belongs to the change handlers, a busy object is checked on
    the next tick, and a spec found unworkable waits for its next change."""
    generation = meta.get("generation")
    return (
        bool(status.get(id_field))
        and not _lock(memo).locked()
        and not failed_permanently(status, generation)
        and not _known_unworkable(memo, generation)
    )


def _latest_status(status: kopf.Status, memo: kopf.Memo, id_field: str) -> dict[str, Any]:
    """The status as it is now, for a handler that may have waited for the object's lock.

    A handler's `status` is read before it waits; meanwhile another handler of the same object
    (the drift timer recreating a group deleted in the console) may have changed the cloud id and
    not yet had its status patch applied. Acting on the stale id would create a second group.
    """
    latest = dict(status)
    if memo.get(LATEST_CLOUD_ID):
        latest[id_field] = memo[LATEST_CLOUD_ID]
    return latest


def _emit(body: kopf.Body, kind: str, changes: ChangeLog) -> None:
    """One Normal Event per kind of change, listing each change (five new rules: one Event)."""
    messages: dict[str, list[str]] = {}
    for change in changes.changes:
        metrics.CLOUD_CHANGES.labels(kind, change.reason).inc()
        messages.setdefault(change.reason, []).append(change.message)
    for reason, texts in messages.items():
        kopf.event(body, type="Normal", reason=reason, message="; ".join(texts))


async def _converge(
    *,
    kind: str,
    id_field: str,
    trigger: str,
    work: Work,
    body: kopf.Body,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int = 0,
) -> None:
    """Run one reconciliation and record its outcome in status, conditions, Events and metrics.

    Change handlers raise kopf's Temporary/PermanentError so kopf retries (or stops); timers
    only record the failure, since they run again anyway.
    """
    runtime: OperatorRuntime = memo.runtime
    generation = meta.get("generation")
    changes = ChangeLog()
    async with _lock(memo):
        latest = _latest_status(status, memo, id_field)
        try:
            fields = await work(changes, latest)
        except Exception as error:  # every failure becomes a condition, whatever its kind
            _emit(body, kind, changes)
            failure = classify(error)
            cloud_id = changes.cloud_id or latest.get(id_field)
            if changes.cloud_id:
                memo[LATEST_CLOUD_ID] = changes.cloud_id
                patch.status[id_field] = changes.cloud_id
            elif not cloud_id and not status.get("creating") and not create_may_have_happened(error):
                # This attempt's "creating" mark would later make a same-named object found in
                # the cloud look like ours; nothing was created, so drop it.
                patch.status["creating"] = None
            patch.status["conditions"] = merge_conditions(
                status.get("conditions"),
                failure_conditions(failure, bool(cloud_id), status.get("conditions")),
                generation,
            )
            metrics.RECONCILES.labels(kind, trigger, "error").inc()
            metrics.ERRORS.labels(kind, failure.reason).inc()
            # One Warning per unworkable generation, whichever handler (change or timer) met it first.
            if not (failure.permanent and _known_unworkable(memo, generation)):
                kopf.event(body, type="Warning", reason=failure.reason, message=failure.message)
            if failure.permanent:
                memo[UNWORKABLE_GENERATION] = generation
            if trigger in ("drift", "selection"):
                log.warning("%s %s: %s", kind, meta.get("name"), failure.message)
                return
            if failure.permanent:
                raise kopf.PermanentError(failure.message) from None
            raise kopf.TemporaryError(
                failure.message, delay=runtime.config.retry_after(retry, failure.slow_retry)
            ) from None
        memo[LATEST_CLOUD_ID] = fields[id_field]
        if not _known_unworkable(memo, generation):
            memo.pop(UNWORKABLE_GENERATION, None)
    _emit(body, kind, changes)
    repaired = trigger == "drift" and bool(changes)
    if repaired:
        metrics.DRIFT_REPAIRS.labels(kind).inc()
        kopf.event(
            body,
            type="Warning",
            reason="DriftRepaired",
            message=f"the cloud differed from the spec; made {len(changes.changes)} change(s)",
        )
    metrics.RECONCILES.labels(kind, trigger, "ok").inc()
    patch.status.update(fields)
    patch.status.update({"observedGeneration": generation, "lastSyncTime": now_iso(), "creating": None})
    synced = Condition(
        SYNCED,
        True,
        "DriftRepaired" if repaired else "InSync",
        "repaired drift: " + "; ".join(c.message for c in changes.changes)
        if repaired
        else "the cloud matches the spec",
    )
    ready = Condition(READY, True, "Reconciled", f"{kind} {fields[id_field]} is in place")
    patch.status["conditions"] = merge_conditions(
        without_condition(status.get("conditions"), IN_USE), [ready, synced], generation
    )


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

    await _converge(
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
    if not _timer_may_reconcile(status, meta, memo, PGROUP_ID):
        return
    await _reconcile_group("drift", body=body, spec=spec, status=status, meta=meta, patch=patch, memo=memo)


async def _delete(
    *,
    kind: str,
    id_field: str,
    adopt_field: str,
    remove: Callable[..., None],
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
) -> None:
    runtime: OperatorRuntime = memo.runtime
    changes = ChangeLog()
    async with _lock(memo):
        cloud_id = _latest_status(status, memo, id_field).get(id_field)
        if not cloud_id:
            return
        if deletion_policy_of(spec, adopt_field) == "Retain":
            kopf.event(
                body,
                type="Normal",
                reason="Retained",
                message=f"left {cloud_id} in the cloud (deletionPolicy Retain)",
            )
            metrics.RECONCILES.labels(kind, "delete", "ok").inc()
            return
        try:
            await runtime.run(remove, runtime.client, cloud_id, changes)
        except Exception as error:
            _emit(body, kind, changes)
            failure = classify(error)
            metrics.RECONCILES.labels(kind, "delete", "error").inc()
            metrics.ERRORS.labels(kind, failure.reason).inc()
            if isinstance(error, CfsInUse):
                message = (
                    f"{cloud_id} is still used by {status.get('bindCfsNum', 'some')} file system(s); "
                    "deletion waits until they use another permission group"
                )
                patch.status["conditions"] = merge_conditions(
                    status.get("conditions"),
                    [Condition(IN_USE, True, "BoundToFileSystems", message)],
                    meta.get("generation"),
                )
                kopf.event(body, type="Warning", reason="InUse", message=message)
            else:
                kopf.event(body, type="Warning", reason=failure.reason, message=failure.message)
            # Never give up on a delete: the finalizer stays until the cloud object is gone.
            raise kopf.TemporaryError(
                failure.message, delay=runtime.config.retry_after(retry, failure.slow_retry)
            ) from None
    _emit(body, kind, changes)
    metrics.RECONCILES.labels(kind, "delete", "ok").inc()


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
    await _delete(
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

    await _converge(
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
    if not _timer_may_reconcile(status, meta, memo, POLICY_ID):
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
    if not _timer_may_reconcile(status, meta, memo, POLICY_ID):
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
    await _delete(
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
