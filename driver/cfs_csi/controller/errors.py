"""How controller failures become gRPC statuses: one place, one table.

Helpers raise; `abort_on_error` turns what they raise into `context.abort(code, message)`:
- `RpcError` carries its own status (ALREADY_EXISTS, NOT_FOUND, OUT_OF_RANGE, ...);
- `ParameterError` / `MountOptionError` → INVALID_ARGUMENT;
- `CfsError` → `grpc_status_for` (the project's single CFS→gRPC table, below); its text is
  "<code>: <message> (RequestId <id>)" and is already scrubbed of secrets;
- subdir mode: a missing directory → NOT_FOUND, an unreachable share → UNAVAILABLE, a symlink
  or file in the path → FAILED_PRECONDITION.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from cfs_cloud.errors import CfsError, lookup
from cfs_csi.contract import ParameterError
from cfs_csi.controller.subdir import DirectoryMissing, ShareUnavailable, UnsafePath
from cfs_csi.node.mount_options import MountOptionError
from cfs_csi.status import RpcError

# The single CFS-code -> gRPC-status table (cfs_cloud.errors.lookup: "X*" is a family).
_GRPC_STATUS_BY_CODE: tuple[tuple[str, grpc.StatusCode], ...] = (
    # Exact codes whose meaning differs from their family.
    ("AuthFailure.UnauthorizedOperation", grpc.StatusCode.PERMISSION_DENIED),
    # The account lacks a grant (CFS service role, KMS allow-list): an operator must act.
    ("UnsupportedOperation.UnauthorizedCfsQcsRole", grpc.StatusCode.PERMISSION_DENIED),
    ("UnsupportedOperation.MissingKmsAccessPermission", grpc.StatusCode.PERMISSION_DENIED),
    # "文件系统配额设置超出上限": CSI answers a capacity beyond the maximum with OUT_OF_RANGE.
    ("InvalidParameterValue.FsSizeLimitExceeded", grpc.StatusCode.OUT_OF_RANGE),
    ("FailedOperation.PgroupInUse", grpc.StatusCode.FAILED_PRECONDITION),
    ("FailedOperation.MountTargetExists", grpc.StatusCode.FAILED_PRECONDITION),
    # "being updated / being created / wrong transient state": retry later.
    ("FailedOperation.PgroupIsUpdating", grpc.StatusCode.ABORTED),
    ("FailedOperation.ClientTokenInUse", grpc.StatusCode.ABORTED),
    ("InvalidParameterValue.InvalidFsStatus", grpc.StatusCode.ABORTED),
    ("InvalidParameterValue.InvalidSnapStatus", grpc.StatusCode.ABORTED),
    ("InvalidParameterValue.SnapSrcFsBusy", grpc.StatusCode.ABORTED),
    ("WaitTimeout", grpc.StatusCode.ABORTED),
    ("CallTimeout", grpc.StatusCode.DEADLINE_EXCEEDED),
    ("FileSystemCreateFailed", grpc.StatusCode.INTERNAL),
    ("SnapshotCreateFailed", grpc.StatusCode.INTERNAL),
    ("InvalidAction", grpc.StatusCode.UNIMPLEMENTED),
    ("NoSuchVersion", grpc.StatusCode.UNIMPLEMENTED),
    ("UnsupportedRegion", grpc.StatusCode.FAILED_PRECONDITION),
    # Our own request was malformed (DryRun is never sent, GET/POST are the only methods we
    # use), or a generic failure the docs give no cause for: nothing the caller can change.
    ("DryRunOperation", grpc.StatusCode.INTERNAL),
    ("UnsupportedProtocol", grpc.StatusCode.INTERNAL),
    ("FailedOperation*", grpc.StatusCode.INTERNAL),
    # Families.
    ("ResourceNotFound*", grpc.StatusCode.NOT_FOUND),
    ("InvalidParameter*", grpc.StatusCode.INVALID_ARGUMENT),
    ("InvalidParameterValue*", grpc.StatusCode.INVALID_ARGUMENT),
    ("MissingParameter*", grpc.StatusCode.INVALID_ARGUMENT),
    ("UnknownParameter*", grpc.StatusCode.INVALID_ARGUMENT),
    ("ResourceInsufficient*", grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("LimitExceeded*", grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("ResourceInUse*", grpc.StatusCode.FAILED_PRECONDITION),
    ("UnsupportedOperation*", grpc.StatusCode.FAILED_PRECONDITION),
    ("UnauthorizedOperation*", grpc.StatusCode.PERMISSION_DENIED),
    ("AuthFailure*", grpc.StatusCode.UNAUTHENTICATED),
    ("InvalidCredential", grpc.StatusCode.UNAUTHENTICATED),
    ("RequestLimitExceeded*", grpc.StatusCode.UNAVAILABLE),
    ("InternalError*", grpc.StatusCode.UNAVAILABLE),
    ("ResourceUnavailable*", grpc.StatusCode.UNAVAILABLE),
    ("ClientNetworkError", grpc.StatusCode.UNAVAILABLE),
    ("ServerNetworkError", grpc.StatusCode.UNAVAILABLE),
)


def grpc_status_for(err: CfsError) -> grpc.StatusCode:
    """The gRPC status a CSI call should answer with for this CFS error."""
    return lookup(_GRPC_STATUS_BY_CODE, err.code, grpc.StatusCode.INTERNAL)


# Errors of the driver's own modules, by type; checked in order.
_STATUS_BY_TYPE: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (ParameterError, grpc.StatusCode.INVALID_ARGUMENT),
    (MountOptionError, grpc.StatusCode.INVALID_ARGUMENT),
    (DirectoryMissing, grpc.StatusCode.NOT_FOUND),
    (ShareUnavailable, grpc.StatusCode.UNAVAILABLE),
    (UnsafePath, grpc.StatusCode.FAILED_PRECONDITION),
)
_MAPPED_TYPES = tuple(kind for kind, _ in _STATUS_BY_TYPE)


@contextmanager
def abort_on_error(context: grpc.ServicerContext) -> Iterator[None]:
    """Turn what a controller helper raises into `context.abort`; anything else is a bug and
    propagates (the server answers UNKNOWN and logs the traceback)."""
    try:
        yield
    except RpcError as err:
        context.abort(err.code, str(err))
    except CfsError as err:
        context.abort(grpc_status_for(err), str(err))
    except _MAPPED_TYPES as err:
        context.abort(next(code for kind, code in _STATUS_BY_TYPE if isinstance(err, kind)), str(err))
