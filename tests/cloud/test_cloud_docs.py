"""cfs_cloud's tables checked against the vendor's documentation (cfs-docs.txt).

Every error code the docs list (公共错误码 and each action's 错误码 table) is mapped here to the
error class and gRPC status we mean it to have; the list is embedded so this runs anywhere, and a
separate test re-extracts it from the docs when they are present so the two cannot drift. The
per-action rate limits are compared with each 2019-07-19 action's "默认接口请求频率限制" line.
"""

import os
import re
from pathlib import Path

import pytest
from grpc import StatusCode

from cfs_cloud.errors import (
    CfsAuthError,
    CfsError,
    CfsInternalError,
    CfsInUse,
    CfsInvalidParameter,
    CfsNotFound,
    CfsResourceExhausted,
    CfsThrottled,
    error_for,
)
from cfs_cloud.limits import DOCUMENTED_RATE_LIMITS
from cfs_csi.controller.errors import grpc_status_for

DOCS = Path(os.environ.get("CFS_DOCS", Path(__file__).resolve().parents[3] / "shared" / "cfs-docs.txt"))
needs_docs = pytest.mark.skipif(not DOCS.is_file(), reason=f"vendor docs not found at {DOCS} (set CFS_DOCS)")

# family prefix -> (error class, gRPC status); a code belongs to the longest matching family.
FAMILIES = {
    "AuthFailure": (CfsAuthError, StatusCode.UNAUTHENTICATED),
    "UnauthorizedOperation": (CfsAuthError, StatusCode.PERMISSION_DENIED),
    "ResourceNotFound": (CfsNotFound, StatusCode.NOT_FOUND),
    "InvalidParameter": (CfsInvalidParameter, StatusCode.INVALID_ARGUMENT),
    "InvalidParameterValue": (CfsInvalidParameter, StatusCode.INVALID_ARGUMENT),
    "MissingParameter": (CfsInvalidParameter, StatusCode.INVALID_ARGUMENT),
    "UnknownParameter": (CfsInvalidParameter, StatusCode.INVALID_ARGUMENT),
    "ResourceInsufficient": (CfsResourceExhausted, StatusCode.RESOURCE_EXHAUSTED),
    "LimitExceeded": (CfsResourceExhausted, StatusCode.RESOURCE_EXHAUSTED),
    "ResourceInUse": (CfsInUse, StatusCode.FAILED_PRECONDITION),
    "RequestLimitExceeded": (CfsThrottled, StatusCode.UNAVAILABLE),
    "InternalError": (CfsInternalError, StatusCode.UNAVAILABLE),
    "ResourceUnavailable": (CfsError, StatusCode.UNAVAILABLE),
    "UnsupportedOperation": (CfsError, StatusCode.FAILED_PRECONDITION),
    "FailedOperation": (CfsError, StatusCode.INTERNAL),
}
# Codes whose meaning differs from their family's, and codes outside any family.
EXCEPTIONS = {
    "AuthFailure.UnauthorizedOperation": (CfsAuthError, StatusCode.PERMISSION_DENIED),
    "UnsupportedOperation.UnauthorizedCfsQcsRole": (CfsError, StatusCode.PERMISSION_DENIED),
    "UnsupportedOperation.MissingKmsAccessPermission": (CfsError, StatusCode.PERMISSION_DENIED),
    "InvalidParameterValue.FsSizeLimitExceeded": (CfsInvalidParameter, StatusCode.OUT_OF_RANGE),
    # Transient states: the same request succeeds later.
    "InvalidParameterValue.InvalidFsStatus": (CfsInvalidParameter, StatusCode.ABORTED),
    "InvalidParameterValue.InvalidSnapStatus": (CfsInvalidParameter, StatusCode.ABORTED),
    "InvalidParameterValue.SnapSrcFsBusy": (CfsInvalidParameter, StatusCode.ABORTED),
    "FailedOperation.PgroupIsUpdating": (CfsError, StatusCode.ABORTED),
    "FailedOperation.ClientTokenInUse": (CfsError, StatusCode.ABORTED),
    # Still referenced: the caller must remove the reference first.
    "FailedOperation.PgroupInUse": (CfsInUse, StatusCode.FAILED_PRECONDITION),
    "FailedOperation.MountTargetExists": (CfsError, StatusCode.FAILED_PRECONDITION),
    "InvalidAction": (CfsError, StatusCode.UNIMPLEMENTED),
    "NoSuchVersion": (CfsError, StatusCode.UNIMPLEMENTED),
    "UnsupportedRegion": (CfsError, StatusCode.FAILED_PRECONDITION),
    "DryRunOperation": (CfsError, StatusCode.INTERNAL),
    "UnsupportedProtocol": (CfsError, StatusCode.INTERNAL),
}

# Extracted from cfs-docs.txt by `documented_error_codes` (test_embedded_codes_match_the_docs).
DOCUMENTED_ERROR_CODES = """
AuthFailure AuthFailure.InvalidSecretId AuthFailure.MFAFailure AuthFailure.SecretIdNotFound
AuthFailure.SignatureExpire AuthFailure.SignatureFailure AuthFailure.TokenFailure
AuthFailure.UnauthorizedOperation DryRunOperation FailedOperation
FailedOperation.BindResourcePkgFailed FailedOperation.ClientTokenInUse
FailedOperation.MountTargetExists FailedOperation.PgroupInUse FailedOperation.PgroupIsUpdating
FailedOperation.UntagResourceFailed InternalError InternalError.CreateFsFailed
InternalError.GetAccountStatusFailed InternalError.Timeout InvalidAction InvalidParameter
InvalidParameter.ClientTokenLimitExceeded InvalidParameter.InvalidClientToken
InvalidParameter.InvalidTagKey InvalidParameterValue InvalidParameterValue.DuplicatedPgroupName
InvalidParameterValue.DuplicatedRuleAuthClientIp InvalidParameterValue.FsNameLimitExceeded
InvalidParameterValue.FsSizeLimitExceeded InvalidParameterValue.InvalidAuthClientIp
InvalidParameterValue.InvalidEncrypted InvalidParameterValue.InvalidFileSystemId
InvalidParameterValue.InvalidFsName InvalidParameterValue.InvalidFsSizeLimit
InvalidParameterValue.InvalidFsStatus InvalidParameterValue.InvalidMountTargetIp
InvalidParameterValue.InvalidNetInterface InvalidParameterValue.InvalidPerMode
InvalidParameterValue.InvalidPgroup InvalidParameterValue.InvalidPgroupID
InvalidParameterValue.InvalidPgroupId InvalidParameterValue.InvalidPgroupName
InvalidParameterValue.InvalidPriority InvalidParameterValue.InvalidProtocol
InvalidParameterValue.InvalidRegionZoneInfo InvalidParameterValue.InvalidRwPermission
InvalidParameterValue.InvalidSnapStatus InvalidParameterValue.InvalidStorageType
InvalidParameterValue.InvalidSubnetId InvalidParameterValue.InvalidUserPermission
InvalidParameterValue.InvalidVip InvalidParameterValue.InvalidVpcId
InvalidParameterValue.InvalidVpcParameter InvalidParameterValue.InvalidZoneId
InvalidParameterValue.InvalidZoneOrZoneId InvalidParameterValue.MissingAppidOrUin
InvalidParameterValue.MissingFileSystemId InvalidParameterValue.MissingFileSystemIdOrRegion
InvalidParameterValue.MissingFsParameter InvalidParameterValue.MissingKmsKeyId
InvalidParameterValue.MissingNameOrDescinfo InvalidParameterValue.MissingPgroupName
InvalidParameterValue.MissingStorageResourcePkg InvalidParameterValue.MissingSubnetidOrUnsubnetid
InvalidParameterValue.MissingVpcParameter InvalidParameterValue.MissingVpcidOrUnvpcid
InvalidParameterValue.MissingZoneId InvalidParameterValue.MissingZoneOrZoneId
InvalidParameterValue.PgroupDescinfoLimitExceeded InvalidParameterValue.PgroupNameLimitExceeded
InvalidParameterValue.RuleNotMatchPgroup InvalidParameterValue.SnapSrcFsBusy
InvalidParameterValue.UnavailableRegion InvalidParameterValue.UnavailableZone
InvalidParameterValue.ZoneIdRegionNotMatch LimitExceeded MissingParameter NoSuchVersion
RequestLimitExceeded ResourceInUse ResourceInsufficient
ResourceInsufficient.FileSystemLimitExceeded ResourceInsufficient.PgroupNumberLimitExceeded
ResourceInsufficient.RegionSoldOut ResourceInsufficient.RuleLimitExceeded
ResourceInsufficient.SubnetIpAllOccupied ResourceInsufficient.TagLimitExceeded ResourceNotFound
ResourceNotFound.FileSystemNotFound ResourceNotFound.MountTargetNotFound
ResourceNotFound.PgroupNotFound ResourceNotFound.RuleNotFound ResourceNotFound.SnapNotExist
ResourceUnavailable UnauthorizedOperation UnknownParameter UnsupportedOperation
UnsupportedOperation.DisabledCfsEncryptionKey UnsupportedOperation.InvalidEncryptionZone
UnsupportedOperation.MissingKmsAccessPermission UnsupportedOperation.OutOfService
UnsupportedOperation.UnauthorizedCfsQcsRole UnsupportedOperation.UnverifiedUser
UnsupportedProtocol UnsupportedRegion
""".split()

_CODE_ROW = re.compile(r"^([A-Z][A-Za-z]+(?:\.[A-Za-z0-9]+)*)\t")
_ACTION_HEADING = re.compile(r"^[A-Z][A-Za-z]+$")
_RATE_LINE = re.compile(r"默认接口请求频率限制\s*:\s*(\d+)次/秒")
_VERSION_LINE = re.compile(r"^Version\t.*本接口取值\s*[:：]\s*(\d{4}-\d\d-\d\d)")


def documented_error_codes(text: str) -> set[str]:
    """The first column of every error-code table (a table starts at its "错误码\t..."
    header row and ends at the first line that is not a code row)."""
    found, in_table = set(), False
    for line in text.splitlines():
        if line.startswith("错误码\t"):
            in_table = True
            continue
        row = _CODE_ROW.match(line) if in_table else None
        if row:
            found.add(row.group(1))
        else:
            in_table = False
    return found


def documented_rate_limits(text: str, version: str) -> dict[str, float]:
    """{action: calls per second} of every action page of `version`."""
    limits, action, rate = {}, None, None
    for line in text.splitlines():
        if _ACTION_HEADING.match(line):
            action, rate = line, None
        elif (match := _RATE_LINE.search(line)) and action:
            rate = float(match.group(1))
        elif (match := _VERSION_LINE.match(line)) and action and rate is not None:
            if match.group(1) == version:
                limits[action] = rate
            action = None
    return limits


def expected_mapping(code: str):
    if code in EXCEPTIONS:
        return EXCEPTIONS[code]
    families = [family for family in FAMILIES if code == family or code.startswith(family + ".")]
    assert families, f"{code} belongs to no family: decide its mapping in EXCEPTIONS"
    return FAMILIES[max(families, key=len)]


@pytest.mark.parametrize("code", DOCUMENTED_ERROR_CODES)
def test_every_documented_code_has_its_intended_class_and_status(code):
    err = error_for(code, "m", "r")
    assert (type(err), grpc_status_for(err)) == expected_mapping(code)


def test_every_exception_is_a_documented_code():
    assert set(EXCEPTIONS) <= set(DOCUMENTED_ERROR_CODES)


@needs_docs
def test_embedded_codes_match_the_docs():
    assert documented_error_codes(DOCS.read_text()) == set(DOCUMENTED_ERROR_CODES)


@needs_docs
def test_rate_limits_are_the_documented_ones():
    documented = documented_rate_limits(DOCS.read_text(), "2019-07-19")
    assert len(documented) >= 28
    assert dict(DOCUMENTED_RATE_LIMITS) == documented
