"""How controller failures become gRPC statuses: one place, one table.

Helpers raise; `abort_on_error` turns what they raise into `context.abort(code, message)`:
- `RpcError` carries its own status (ALREADY_EXISTS, NOT_FOUND, OUT_OF_RANGE, ...);
- `ParameterError` / `MountOptionError` → INVALID_ARGUMENT;
- `CfsError` → `cfs_cloud.errors.grpc_status_for` (the project's single CFS→gRPC table); its
  text is "<code>: <message> (RequestId <id>)" and is already scrubbed of secrets;
- subdir mode: a missing directory → NOT_FOUND, an unreachable share → UNAVAILABLE, a symlink
  or file in the path → FAILED_PRECONDITION.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from cfs_cloud.errors import CfsError, grpc_status_for

from cfs_csi.mount_options import MountOptionError
from cfs_csi.params import ParameterError
from cfs_csi.status import RpcError
from cfs_csi.subdir import DirectoryMissing, ShareUnavailable, UnsafePath


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
