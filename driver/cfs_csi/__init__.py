"""cfs-csi: the CSI plugin for Tencent Cloud CFS."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

try:
    __version__ = _dist_version("cfs-csi")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
