"""Which paths the node plugin may mount on, unmount or remove: the kubelet's, and only those.

The node plugin runs privileged in the host's mount namespace, so a path in a request is an
order to change the host. Every staging and target path passes `PathPolicy.check` before any
mount, unmount or removal:
- present, without a NUL byte, absolute and normalised (no `.`, `..`, `//` or trailing `/`);
- strictly inside the kubelet root (`--kubelet-dir`, the chart's `node.kubeletDir`), never the
  root itself;
- after resolving symlinks (of the part of the path that exists), still strictly inside the
  resolved kubelet root: a link cannot carry a mount or a removal elsewhere. The path itself is
  not stat-ed when it is a mount point (a mount point is no symlink, and stat-ing the mount of
  a server that stopped answering would hang): only its parent directories are resolved.
A violation is INVALID_ARGUMENT naming the field, the path and the rule.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable

import grpc

from cfs_csi.status import RpcError


class PathPolicy:
    def __init__(self, kubelet_dir: str, is_mount_point: Callable[[str], bool]):
        self.root = posixpath.normpath(kubelet_dir)
        self.resolved_root = os.path.realpath(self.root)  # the kubelet's root is fixed for our life
        self.is_mount_point = is_mount_point

    def check(self, path: str, field: str, *, mounted: bool | None = None) -> str:
        """`path` when the plugin may act on it; RpcError(INVALID_ARGUMENT) naming the rule.
        `mounted`: whether `path` is a mount point, when the caller already looked it up."""
        if not path:
            raise _invalid(f"{field} missing in request")
        if "\0" in path:
            raise _invalid(f"{field} {path!r} contains a NUL byte")
        if not posixpath.isabs(path):
            raise _invalid(f"{field} {path!r} is not an absolute path")
        if posixpath.normpath(path) != path or path.startswith("//"):
            raise _invalid(
                f"{field} {path!r} is not a normalised path (no '.', '..', '//' or trailing '/'; "
                f"normalised: {posixpath.normpath(path)!r})"
            )
        if not _strictly_inside(path, self.root):
            raise _invalid(f"{field} {path!r} is outside the kubelet directory {self.root} (--kubelet-dir)")
        parent, name = posixpath.split(path)
        if self.is_mount_point(path) if mounted is None else mounted:
            resolved = posixpath.join(os.path.realpath(parent), name)
        else:
            resolved = os.path.realpath(path)
        if not _strictly_inside(resolved, self.resolved_root):
            raise _invalid(
                f"{field} {path!r} resolves through a symlink to {resolved!r}, outside the kubelet "
                f"directory {self.root}"
            )
        return path


def _strictly_inside(path: str, root: str) -> bool:
    return path != root and path.startswith(root.rstrip("/") + "/")


def _invalid(message: str) -> RpcError:
    return RpcError(grpc.StatusCode.INVALID_ARGUMENT, message)
