"""NFS data plane of the reference service: serves each file system over nfs-ganesha.

The backend builds one ExportSpec per file system and calls DataPlane.apply() with the full
desired state whenever file systems, groups or rules change.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from cfs_reference.nfs.ganesha_server import exact_bind_problem
from cfs_reference.nfs.in_cluster import InClusterSettings, KubernetesDataPlane, kubernetes_data_plane
from cfs_reference.nfs.model import (
    ACCESS_MODES,
    SQUASH_MODES,
    DataPlane,
    DataPlaneError,
    DataPlaneUnavailable,
    ExportRule,
    ExportSpec,
    MountTargetRefused,
    NullDataPlane,
)
from cfs_reference.nfs.plane import GaneshaDataPlane

__all__ = [
    "ACCESS_MODES",
    "MOUNT_TARGET_MODES",
    "SQUASH_MODES",
    "DataPlane",
    "DataPlaneError",
    "DataPlaneUnavailable",
    "ExportRule",
    "ExportSpec",
    "GaneshaDataPlane",
    "InClusterSettings",
    "KubernetesDataPlane",
    "MountTargetRefused",
    "NullDataPlane",
    "make_data_plane",
]

GANESHA_BINARY = "ganesha.nfsd"
MODES = ("auto", "on", "off")
# local: one ganesha per mount-target IP on :2049 (loopback addresses);
# kubernetes: a port per file system on the pod, a Service per file system (InClusterSettings)
MOUNT_TARGET_MODES = ("local", "kubernetes")

log = logging.getLogger(__name__)


def make_data_plane(
    mode: str,
    state_dir: Path,
    nfsv3: bool = False,
    in_cluster: InClusterSettings | None = None,
) -> DataPlane:
    """mode "off": serve nothing; "auto": ganesha when it can run here; "on": ganesha or
    DataPlaneUnavailable. in_cluster selects the kubernetes mount-target mode (else local).

    ganesha's files go under <state_dir>/nfs/."""
    if mode not in MODES:
        raise ValueError(f"nfs mode must be one of {', '.join(MODES)}, not {mode!r}")
    if nfsv3 and in_cluster is not None:
        raise ValueError(
            "--nfs-v3 needs the local mount-target mode: in a cluster one rpcbind cannot "
            "announce a different port per file system"
        )
    if mode == "off":
        return NullDataPlane()
    binary = shutil.which(GANESHA_BINARY)
    reason: str | None
    if binary is None:
        reason = f"{GANESHA_BINARY} is not installed (Debian packages nfs-ganesha nfs-ganesha-vfs)"
    elif in_cluster is None:
        reason = exact_bind_problem()
    else:
        reason = None  # a port per file system on every address: nothing to bind exactly
    if reason is None and binary is not None:
        if in_cluster is not None:
            return kubernetes_data_plane(Path(state_dir) / "nfs", binary, in_cluster)
        return GaneshaDataPlane(Path(state_dir) / "nfs", binary=binary, nfsv3=nfsv3)
    if mode == "on":
        raise DataPlaneUnavailable(f"--nfs on: {reason}")
    log.warning("NFS data plane disabled: %s", reason)
    return NullDataPlane()
