"""What a failed reconciliation means: retry soon, retry much later, or never (fix the spec).

One table from error to (condition reason, permanence, field). Messages come from SpecError or
from `str(CfsError)`, which cfs_cloud guarantees to be free of secrets.
"""

from __future__ import annotations

from dataclasses import dataclass

from cfs_cloud import (
    CfsAuthError, CfsError, CfsInternalError, CfsInUse, CfsInvalidParameter, CfsNetworkError,
    CfsNotFound, CfsResourceExhausted, CfsThrottled,
)

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
}
BUSY_CODES = frozenset({"FailedOperation.PgroupIsUpdating"})


@dataclass(frozen=True)
class Failure:
    reason: str          # condition reason
    message: str
    permanent: bool      # the spec must change before a retry can succeed
    slow_retry: bool     # waiting on something outside the operator (quota, credentials, users)


def classify(error: Exception) -> Failure:
    if isinstance(error, SpecError):
        return Failure("InvalidSpec", str(error), permanent=True, slow_retry=False)
    if isinstance(error, BindingFailed):
        return Failure("BindFailed", str(error), permanent=False, slow_retry=True)
    if not isinstance(error, CfsError):
        return Failure("OperatorError", f"{type(error).__name__}: {error}", permanent=False, slow_retry=False)
    field = FIELD_OF_CODE.get(error.code)
    if field is not None or isinstance(error, CfsInvalidParameter):
        return Failure("CloudRejected", f"{field or 'spec'}: the CFS API rejected it: {error}",
                       permanent=True, slow_retry=False)
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
