"""NFS data plane of the reference service: serves each file system over nfs-ganesha.

The backend builds one ExportSpec per file system and calls DataPlane.apply() with the full
desired state whenever file systems, groups or rules change.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from cfs_reference.nfs.ganesha_server import exact_bind_problem
from cfs_reference.nfs.model import (
    ACCESS_MODES,
    SQUASH_MODES,
    DataPlane,
    DataPlaneError,
    DataPlaneUnavailable,
    ExportRule,
    ExportSpec,
    NullDataPlane,
)
from cfs_reference.nfs.plane import GaneshaDataPlane

__all__ = [
    "ACCESS_MODES",
    "SQUASH_MODES",
    "DataPlane",
    "DataPlaneError",
    "DataPlaneUnavailable",
    "ExportRule",
    "ExportSpec",
    "GaneshaDataPlane",
    "NullDataPlane",
    "make_data_plane",
]

GANESHA_BINARY = "ganesha.nfsd"
MODES = ("auto", "on", "off")

log = logging.getLogger(__name__)


def make_data_plane(mode: str, state_dir: Path) -> DataPlane:
    """mode "off": serve nothing; "auto": ganesha when it can run here; "on": ganesha or an error.

    ganesha's files go under <state_dir>/nfs/."""
    if mode not in MODES:
        raise ValueError(f"nfs mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "off":
        return NullDataPlane()
    binary = shutil.which(GANESHA_BINARY)
    if binary is None:
        reason = f"{GANESHA_BINARY} is not installed (Debian packages nfs-ganesha nfs-ganesha-vfs)"
    else:
        reason = exact_bind_problem()
    if reason is None:
        return GaneshaDataPlane(Path(state_dir) / "nfs", binary=binary)
    if mode == "on":
        raise DataPlaneUnavailable(f"--nfs on: {reason}")
    log.warning("NFS data plane disabled: %s", reason)
    return NullDataPlane()
