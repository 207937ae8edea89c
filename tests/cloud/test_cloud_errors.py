"""Typed CFS errors and the CFS-code -> gRPC-status table."""

import copy
import pickle

import grpc
import pytest

from cfs_cloud.errors import (
    CallTimeout,
    CfsAuthError,
    CfsError,
    CfsInternalError,
    CfsInUse,
    CfsInvalidParameter,
    CfsNetworkError,
    CfsNotFound,
    CfsResourceExhausted,
    CfsThrottled,
    FileSystemCreateFailed,
    WaitTimeout,
    error_for,
)
from cfs_csi.controller.errors import grpc_status_for


@pytest.mark.parametrize(
    "code, cls",
    [
        ("ResourceNotFound.FileSystemNotFound", CfsNotFound),
        ("ResourceNotFound", CfsNotFound),
        ("InvalidParameter", CfsInvalidParameter),
        ("InvalidParameterValue.InvalidFsName", CfsInvalidParameter),
        ("MissingParameter", CfsInvalidParameter),
        ("UnknownParameter", CfsInvalidParameter),
        ("AuthFailure.SignatureFailure", CfsAuthError),
        ("UnauthorizedOperation", CfsAuthError),
        ("RequestLimitExceeded", CfsThrottled),
        ("InternalError.CreateFsFailed", CfsInternalError),
        ("ResourceInsufficient.RegionSoldOut", CfsResourceExhausted),
        ("LimitExceeded", CfsResourceExhausted),
        ("FailedOperation.PgroupInUse", CfsInUse),
        ("ResourceInUse", CfsInUse),
        ("ClientNetworkError", CfsNetworkError),
        ("ServerNetworkError", CfsNetworkError),
        ("FailedOperation.MountTargetExists", CfsError),
        ("InvalidParameterValueX", CfsError),  # a family prefix must end at a dot
    ],
)
def test_error_class_is_chosen_by_code(code, cls):
    err = error_for(code, "msg", "req-1")
    assert type(err) is cls
    assert (err.code, err.message, err.request_id) == (code, "msg", "req-1")


def test_str_holds_code_message_and_request_id():
    err = error_for("ResourceNotFound.FileSystemNotFound", "no such fs", "3f2a")
    assert str(err) == "ResourceNotFound.FileSystemNotFound: no such fs (RequestId 3f2a)"
    assert str(CfsError("InternalError", "x")) == "InternalError: x (RequestId -)"


@pytest.mark.parametrize(
    "code, status",
    [
        ("ResourceNotFound.FileSystemNotFound", grpc.StatusCode.NOT_FOUND),
        ("ResourceNotFound.PgroupNotFound", grpc.StatusCode.NOT_FOUND),
        ("InvalidParameterValue.InvalidFsName", grpc.StatusCode.INVALID_ARGUMENT),
        ("InvalidParameter", grpc.StatusCode.INVALID_ARGUMENT),
        ("MissingParameter", grpc.StatusCode.INVALID_ARGUMENT),
        ("UnknownParameter", grpc.StatusCode.INVALID_ARGUMENT),
        ("ResourceInsufficient.FileSystemLimitExceeded", grpc.StatusCode.RESOURCE_EXHAUSTED),
        ("LimitExceeded", grpc.StatusCode.RESOURCE_EXHAUSTED),
        ("FailedOperation.PgroupInUse", grpc.StatusCode.FAILED_PRECONDITION),
        ("FailedOperation.MountTargetExists", grpc.StatusCode.FAILED_PRECONDITION),
        ("FailedOperation.PgroupIsUpdating", grpc.StatusCode.ABORTED),
        ("InvalidParameterValue.InvalidFsStatus", grpc.StatusCode.ABORTED),
        ("AuthFailure.SignatureFailure", grpc.StatusCode.UNAUTHENTICATED),
        ("AuthFailure.SecretIdNotFound", grpc.StatusCode.UNAUTHENTICATED),
        ("AuthFailure.UnauthorizedOperation", grpc.StatusCode.PERMISSION_DENIED),
        ("UnauthorizedOperation", grpc.StatusCode.PERMISSION_DENIED),
        ("RequestLimitExceeded", grpc.StatusCode.UNAVAILABLE),
        ("InternalError", grpc.StatusCode.UNAVAILABLE),
        ("ClientNetworkError", grpc.StatusCode.UNAVAILABLE),
        ("InvalidAction", grpc.StatusCode.UNIMPLEMENTED),
        ("FailedOperation", grpc.StatusCode.INTERNAL),
        ("SomethingNew", grpc.StatusCode.INTERNAL),
    ],
)
def test_grpc_status_table(code, status):
    assert grpc_status_for(error_for(code, "m")) == status


def test_waiter_errors_map_to_retry_and_internal():
    assert grpc_status_for(WaitTimeout("fs cfs-1 not yet available")) == grpc.StatusCode.ABORTED
    assert grpc_status_for(CallTimeout("no slot")) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert grpc_status_for(FileSystemCreateFailed("fs cfs-1 create_failed")) == grpc.StatusCode.INTERNAL


@pytest.mark.parametrize(
    "err",
    [
        WaitTimeout("file system cfs-1 did not become available within 5s"),
        CallTimeout("DescribeCfsFileSystems: no rate-limit slot within the caller's timeout of 1s"),
        FileSystemCreateFailed("file system cfs-1 is create_failed"),
        CfsNetworkError("ClientNetworkError", "refused", None, maybe_sent=False),
        error_for("ResourceNotFound.FileSystemNotFound", "gone", "req-2"),
    ],
)
def test_errors_survive_copy_and_pickle(err):
    for clone in (copy.copy(err), pickle.loads(pickle.dumps(err))):
        assert type(clone) is type(err) and str(clone) == str(err)
        assert getattr(clone, "maybe_sent", None) == getattr(err, "maybe_sent", None)
