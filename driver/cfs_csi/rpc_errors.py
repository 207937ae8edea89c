"""How controller failures become gRPC statuses: one place, one table.

Helpers raise; `abort_on_error` turns what they raise into `context.abort(code, message)`:
- `ControllerError` carries its own status (ALREADY_EXISTS, NOT_FOUND, OUT_OF_RANGE, ...);
- `ParameterError` / `MountOptionError` → INVALID_ARGUMENT;
- `CfsError` → `cfs_cloud.errors.grpc_status_for` (the project's single CFS→gRPC table); its
  text is "<code>: <message> (RequestId <id>)" and is already scrubbed of secrets;
- share problems of subdir mode → UNAVAILABLE / FAILED_PRECONDITION.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from cfs_cloud.errors import CfsError, grpc_status_for

from cfs_csi.mount_options import MountOptionError
from cfs_csi.params import ParameterError
from cfs_csi.subdir import ShareUnavailable, UnsafePath


class ControllerError(Exception):
    """Ends the RPC with this status code and message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def invalid(message: str) -> ControllerError:
    return ControllerError(grpc.StatusCode.INVALID_ARGUMENT, message)


def status_for(err: Exception) -> grpc.StatusCode | None:
    """The status for an error a controller helper may raise; None for a bug."""
    if isinstance(err, ControllerError):
        return err.code
    if isinstance(err, (ParameterError, MountOptionError)):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(err, CfsError):
        return grpc_status_for(err)
    if isinstance(err, ShareUnavailable):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(err, UnsafePath):
        return grpc.StatusCode.FAILED_PRECONDITION
    return None


@contextmanager
def abort_on_error(context: grpc.ServicerContext) -> Iterator[None]:
    try:
        yield
    except (ControllerError, ParameterError, MountOptionError, CfsError, ShareUnavailable,
            UnsafePath) as err:
        context.abort(status_for(err), str(err))
