"""cfs_cloud: the one CFS API client shared by the CSI driver and the operator.

See docs/ARCHITECTURE.md ("cfs_cloud") for the contract. Failures are plain typed exceptions
(`errors`); the package knows nothing of gRPC or kopf, whose callers map the errors in their own
tables (cfs_csi.controller.errors, cfs_operator.failures).
"""

from cfs_cloud.client import CfsClient
from cfs_cloud.config import CloudConfig, CloudConfigError
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
    SnapshotCreateFailed,
    WaitTimeout,
)

__all__ = [
    "CallTimeout",
    "CfsAuthError",
    "CfsClient",
    "CfsError",
    "CfsInUse",
    "CfsInternalError",
    "CfsInvalidParameter",
    "CfsNetworkError",
    "CfsNotFound",
    "CfsResourceExhausted",
    "CfsThrottled",
    "CloudConfig",
    "CloudConfigError",
    "FileSystemCreateFailed",
    "SnapshotCreateFailed",
    "WaitTimeout",
]
