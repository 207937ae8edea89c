"""One reconciliation of a custom resource, whatever its kind: the bookkeeping around the work.

`converge` runs a change handler's or a timer's work under the object's lock and records the
outcome in status, conditions, Events and metrics, raising kopf's Temporary/PermanentError as
`failures.classify` decides; `delete_from_cloud` does the same for a finalizer. The per-object
memo carries what must be current across handlers (handlers.py registers the handlers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
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
from cfs_operator.failures import classify, create_may_have_happened, failed_permanently, failure_conditions
from cfs_operator.runtime import OperatorRuntime
from cfs_operator.specs import deletion_policy_of

log = logging.getLogger(__name__)

# work(changes, status): one reconciliation given the resource's latest status; returns status fields.
Work = Callable[[ChangeLog, dict[str, Any]], Awaitable[dict[str, Any]]]
# Per-object memo keys: the cloud id the last reconciliation of this object ended with; the
# newest generation of the spec found unworkable. The memo is current where a handler's `status`
# may not be: kopf applies a handler's status patch after it returns, and a timer can tick in
# between (or just before a change handler) with the object as it was.
LATEST_CLOUD_ID = "latest_cloud_id"
UNWORKABLE_GENERATION = "unworkable_generation"


def object_lock(memo: kopf.Memo) -> asyncio.Lock:
    return memo.setdefault("reconcile_lock", asyncio.Lock())


def known_unworkable(memo: kopf.Memo, generation: int | None) -> bool:
    """Whether this generation of the spec (or a newer one) was already found unworkable."""
    unworkable = memo.get(UNWORKABLE_GENERATION)
    return unworkable is not None and generation is not None and unworkable >= generation


def timer_may_reconcile(status: kopf.Status, meta: kopf.Meta, memo: kopf.Memo, id_field: str) -> bool:
    """Timers only maintain: creation belongs to the change handlers, a busy object is checked on
    the next tick, and a spec found unworkable waits for its next change."""
    generation = meta.get("generation")
    return (
        bool(status.get(id_field))
        and not object_lock(memo).locked()
        and not failed_permanently(status, generation)
        and not known_unworkable(memo, generation)
    )


def latest_status(status: kopf.Status, memo: kopf.Memo, id_field: str) -> dict[str, Any]:
    """The status as it is now, for a handler that may have waited for the object's lock.

    A handler's `status` is read before it waits; meanwhile another handler of the same object
    (the drift timer recreating a group deleted in the console) may have changed the cloud id and
    not yet had its status patch applied. Acting on the stale id would create a second group.
    """
    latest = dict(status)
    if memo.get(LATEST_CLOUD_ID):
        latest[id_field] = memo[LATEST_CLOUD_ID]
    return latest


def emit_changes(body: kopf.Body, kind: str, changes: ChangeLog) -> None:
    """One Normal Event per kind of change, listing each change (five new rules: one Event)."""
    messages: dict[str, list[str]] = {}
    for change in changes.changes:
        metrics.CLOUD_CHANGES.labels(kind, change.reason).inc()
        messages.setdefault(change.reason, []).append(change.message)
    for reason, texts in messages.items():
        kopf.event(body, type="Normal", reason=reason, message="; ".join(texts))


async def converge(
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
    async with object_lock(memo):
        latest = latest_status(status, memo, id_field)
        try:
            fields = await work(changes, latest)
        except Exception as error:  # every failure becomes a condition, whatever its kind
            emit_changes(body, kind, changes)
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
            if not (failure.permanent and known_unworkable(memo, generation)):
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
        if not known_unworkable(memo, generation):
            memo.pop(UNWORKABLE_GENERATION, None)
    emit_changes(body, kind, changes)
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


async def delete_from_cloud(
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
    async with object_lock(memo):
        cloud_id = latest_status(status, memo, id_field).get(id_field)
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
            emit_changes(body, kind, changes)
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
    emit_changes(body, kind, changes)
    metrics.RECONCILES.labels(kind, "delete", "ok").inc()
