"""cfs_cloud: the one CFS API client shared by the CSI driver and the operator.

See docs/ARCHITECTURE.md ("cfs_cloud") for the contract. The names below are loaded on first
use, so importing a light submodule (`cfs_cloud.rules`) does not load the SDK: the node plugin
uses the rule vocabulary and must never load the cloud client.
"""

from importlib import import_module

_EXPORTS = {
    "CfsClient": "cfs_cloud.client",
    "CloudConfig": "cfs_cloud.config",
    "CloudConfigError": "cfs_cloud.config",
    **{name: "cfs_cloud.errors" for name in (
        "CallTimeout", "CfsAuthError", "CfsError", "CfsInternalError", "CfsInUse",
        "CfsInvalidParameter", "CfsNetworkError", "CfsNotFound", "CfsResourceExhausted",
        "CfsThrottled", "FileSystemCreateFailed", "SnapshotCreateFailed", "WaitTimeout",
        "grpc_status_for")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cfs_cloud' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
