"""What a failed reconciliation means: retry soon, retry much later, or never (fix the spec).

One table from error to (condition reason, permanence, field). Messages come from SpecError or
from `str(CfsError)`, which cfs_cloud guarantees to be free of secrets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cfs_cloud import (
    CfsAuthError,
    CfsError,
    CfsInternalError,
    CfsInUse,
    CfsInvalidParameter,
    CfsNetworkError,
    CfsNotFound,
    CfsResourceExhausted,
    CfsThrottled,
)
from cfs_operator.conditions import READY, SYNCED, Condition
from cfs_operator.policies import BindingFailed
from cfs_operator.specs import SpecError

# Cloud rejections that are about one spec field: naming it tells the user what to fix.
FIELD_OF_CODE = {
    "InvalidParameterValue.InvalidAuthClientIp": "spec.rules[].clientIp",
    "InvalidParameterValue.DuplicatedRuleAuthClientIp": "spec.rules[].clientIp",
    "InvalidParameterValue.InvalidPriority": "spec.rules[].priority",
    "InvalidParameterValue.InvalidRwPermission": "spec.rules[].rwPermission",
    "InvalidParameterValue.InvalidUserPermission": "spec.rules[].userPermission",
    "ResourceInsufficient.RuleLimitExceeded": "spec.rules",
    "InvalidParameterValue.DuplicatedPgroupName": "spec.name",
    "InvalidParameterValue.InvalidPgroupName": "spec.name",
    "InvalidParameterValue.PgroupNameLimitExceeded": "spec.name",
    "InvalidParameterValue.MissingPgroupName": "spec.name",
    "InvalidParameterValue.PgroupDescinfoLimitExceeded": "spec.description",
    "InvalidParameterValue.InvalidFileSystemId": "spec.fileSystemIds",
    # An adopted group id that is malformed or another account's.
    "InvalidParameterValue.InvalidPgroupId": "spec.pGroupId",
    "InvalidParameterValue.InvalidPgroupID": "spec.pGroupId",
    "InvalidParameterValue.InvalidPgroup": "spec.pGroupId",
}
# "操作不支持" as such (not its OutOfService / UnverifiedUser subcodes, which the account can
# fix): e.g. changing the account's default permission group. Retrying cannot help.
UNSUPPORTED = "UnsupportedOperation"
BUSY_CODES = frozenset({"FailedOperation.PgroupIsUpdating"})
# Condition reasons of failures that no retry can fix (the spec must change).
PERMANENT_REASONS = frozenset({"InvalidSpec", "CloudRejected"})


@dataclass(frozen=True)
class Failure:
    reason: str  # condition reason
    message: str
    permanent: bool  # the spec must change before a retry can succeed
    slow_retry: bool  # waiting on something outside the operator (quota, credentials, users)


def classify(error: Exception) -> Failure:
    if isinstance(error, SpecError):
        return Failure("InvalidSpec", str(error), permanent=True, slow_retry=False)
    if isinstance(error, BindingFailed):
        return Failure("BindFailed", str(error), permanent=False, slow_retry=True)
    if not isinstance(error, CfsError):
        return Failure("OperatorError", f"{type(error).__name__}: {error}", permanent=False, slow_retry=False)
    field = FIELD_OF_CODE.get(error.code)
    if field is not None or isinstance(error, CfsInvalidParameter) or error.code == UNSUPPORTED:
        return Failure(
            "CloudRejected",
            f"{field or 'spec'}: the CFS API rejected it: {error}",
            permanent=True,
            slow_retry=False,
        )
    if isinstance(error, CfsInUse):
        return Failure("InUse", str(error), permanent=False, slow_retry=True)
    if isinstance(error, CfsResourceExhausted):
        return Failure("QuotaExceeded", str(error), permanent=False, slow_retry=True)
    if isinstance(error, CfsAuthError):
        return Failure("AuthFailure", str(error), permanent=False, slow_retry=True)
    if isinstance(error, CfsThrottled):
        return Failure("Throttled", str(error), permanent=False, slow_retry=False)
    if isinstance(error, (CfsInternalError, CfsNetworkError, CfsNotFound)) or error.code in BUSY_CODES:
        return Failure("CloudBusy", str(error), permanent=False, slow_retry=False)
    return Failure("CloudError", str(error), permanent=False, slow_retry=False)


def failure_conditions(
    failure: Failure, has_cloud_id: bool, current: Iterable[Mapping[str, Any]] | None
) -> list[Condition]:
    """The conditions a failed reconciliation sets.

    Synced always turns False. Ready stays True through transient trouble with an object that
    exists (it still matched the spec at the last success), but turns False for a spec that can
    never work, for an object not created yet, and while Ready is already False: then its
    reason and message must tell today's problem, not the one that was fixed meanwhile.
    """
    updates = [Condition(SYNCED, False, failure.reason, failure.message)]
    ready_now = any(item.get("type") == READY and item.get("status") == "True" for item in current or ())
    if failure.permanent or not has_cloud_id or not ready_now:
        updates.append(Condition(READY, False, failure.reason, failure.message))
    return updates


def failed_permanently(status: Mapping[str, Any], generation: int | None) -> bool:
    """Whether this generation of the spec was already found unworkable (Ready=False, permanent).

    Timers skip such objects: re-running would only repeat the Warning Event; the next spec
    change runs the change handler again.
    """
    for item in status.get("conditions") or ():
        if item.get("type") == READY:
            return (
                item.get("status") == "False"
                and item.get("reason") in PERMANENT_REASONS
                and item.get("observedGeneration") == generation
            )
    return False


def create_may_have_happened(error: Exception) -> bool:
    """Whether a failed attempt may have created the cloud object without learning its id.

    A CFS error reply (throttled, invalid, quota) or a spec error means nothing was created; a
    request lost on the way back, or a failure of the operator itself, might have.
    """
    if isinstance(error, CfsNetworkError):
        return error.maybe_sent
    return not isinstance(error, (CfsError, SpecError))
