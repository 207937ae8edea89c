"""cfs_cloud: the one CFS API client shared by the CSI driver and the operator.

See docs/ARCHITECTURE.md ("cfs_cloud") for the contract.
"""

from cfs_cloud.client import CfsClient
from cfs_cloud.config import CloudConfig, CloudConfigError
from cfs_cloud.errors import (
    CallTimeout, CfsAuthError, CfsError, CfsInternalError, CfsInUse, CfsInvalidParameter,
    CfsNetworkError, CfsNotFound, CfsResourceExhausted, CfsThrottled, FileSystemCreateFailed,
    SnapshotCreateFailed, WaitTimeout, grpc_status_for,
)

__all__ = [
    "CallTimeout", "CfsAuthError", "CfsClient", "CfsError", "CfsInUse", "CfsInternalError",
    "CfsInvalidParameter", "CfsNetworkError", "CfsNotFound", "CfsResourceExhausted",
    "CfsThrottled", "CloudConfig", "CloudConfigError", "FileSystemCreateFailed",
    "SnapshotCreateFailed", "WaitTimeout", "grpc_status_for",
]
