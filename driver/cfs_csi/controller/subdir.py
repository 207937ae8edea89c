"""Subdir mode: volumes are directories of one shared CFS file system.

The controller reaches a share through a `ShareAccess`: in a cluster, `MountedShareAccess`
mounts the share over NFS with the node plugin's mounter for the duration of one operation; a
`LocalShareAccess` serves shares that are already directories on this machine (pre-mounted
shares, and tests, which point it at the reference service's data directories).

Paths come from params.render_subdir (safe components only); on top of that every operation
walks the path without following symlinks, so a symlink planted inside the share cannot send
a create, delete or archive outside it.

CFS has no directory quota API, so capacity is not enforced: the requested size is recorded in
`<share>/.cfs-csi/volumes/<hash>.json` and reported back, nothing more.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from cfs_csi import contract
from cfs_csi.contract import Share
from cfs_csi.controller import params
from cfs_csi.node import mount_options
from cfs_csi.node.mounter import CommandFailed, CommandTimeout, Mounter

log = logging.getLogger(__name__)

METADATA_DIR = ".cfs-csi/volumes"
ARCHIVE_PREFIX = "archived-"


class ShareUnavailable(Exception):
    """The share cannot be reached (not mounted, unknown file system, mount failed)."""


class DirectoryMissing(Exception):
    """The volume's directory does not exist in the share."""


class UnsafePath(Exception):
    """A path component inside the share is a symlink or not a directory."""


class ShareAccess(Protocol):
    def open(self, share: Share) -> AbstractContextManager[Path]:
        """Context manager yielding the share's root directory as a local Path."""


class LocalShareAccess:
    """Shares that are local directories: `<root>/<FileSystemId>` or `<root>/<server>_<fsid>`."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @contextmanager
    def open(self, share: Share) -> Iterator[Path]:
        name = share.file_system_id or f"{share.server}_{share.fsid}"
        path = self.root / name
        if not path.is_dir():
            raise ShareUnavailable(f"share {share} is not available at {path}")
        yield path


class MountedShareAccess:
    """Mounts the share under `mount_root` over NFS for one operation, then unmounts it.

    `locate(share)` returns (server, export path, vers) - for a FileSystemId from
    DescribeMountTargets, for a static share from its server and fsid.
    """

    def __init__(
        self, mounter: Mounter, mount_root: str | os.PathLike, locate: Callable[[Share], tuple[str, str, str]]
    ):
        self.mounter = mounter
        self.mount_root = Path(mount_root)
        self.locate = locate

    @contextmanager
    def open(self, share: Share) -> Iterator[Path]:
        server, export_path, vers = self.locate(share)
        # One mount point per operation: concurrent operations on one share never unmount
        # each other's view of it.
        share_key = hashlib.sha256(str(share).encode()).hexdigest()[:16]
        target = self.mount_root / f"{share_key}-{uuid.uuid4().hex[:8]}"
        try:
            self.mounter.mount_nfs(
                server, export_path, str(target), list(mount_options.nfs_mount_options(vers).options)
            )
        except (CommandFailed, CommandTimeout) as err:
            raise ShareUnavailable(f"mounting share {share} failed: {err}") from err
        try:
            yield target
        finally:
            self.mounter.unmount(str(target))
            target.rmdir()


def _open_dir_nofollow(root: Path, parts: list[str], create_mode: int | None) -> int:
    """Open root/parts... as a directory fd, never following a symlink; optionally mkdir."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            if create_mode is not None:
                try:
                    os.mkdir(part, create_mode, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                raise
            except OSError as err:
                if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                raise UnsafePath(f"{part!r} inside the share is a symlink or not a directory") from None
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _metadata_path(root: Path, path: str) -> Path:
    return root / METADATA_DIR / (hashlib.sha256(path.encode()).hexdigest()[:32] + ".json")


def record_capacity(root: Path, path: str, capacity_bytes: int) -> None:
    require_directory(root, path)
    meta = _metadata_path(root, path)
    meta.parent.mkdir(parents=True, exist_ok=True)
    temporary = meta.with_suffix(".tmp")
    temporary.write_text(json.dumps({"path": path, "capacity_bytes": capacity_bytes}))
    temporary.replace(meta)


def recorded_capacity(root: Path, path: str) -> int:
    require_directory(root, path)
    try:
        return json.loads(_metadata_path(root, path).read_text())["capacity_bytes"]
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def create_directory(root: Path, path: str, sub: params.SubdirParams, capacity_bytes: int) -> None:
    """Create the volume directory (idempotent) with the class's mode and owner."""
    contract.validate_relative_path(path, "subdir path")
    fd = _open_dir_nofollow(root, path.split("/"), create_mode=sub.mount_permissions)
    try:
        os.chmod(fd, sub.mount_permissions)  # mkdir's mode is filtered by the umask
        if sub.uid is not None or sub.gid is not None:
            os.chown(fd, -1 if sub.uid is None else sub.uid, -1 if sub.gid is None else sub.gid)
    finally:
        os.close(fd)
    record_capacity(root, path, capacity_bytes)


def require_directory(root: Path, path: str) -> None:
    try:
        os.close(_open_dir_nofollow(root, path.split("/"), create_mode=None))
    except FileNotFoundError:
        raise DirectoryMissing(f"directory {path} does not exist in the share") from None


def delete_directory(root: Path, path: str, on_delete: str) -> None:
    """Apply the delete policy; a missing directory is already deleted."""
    *parents, leaf = path.split("/")
    try:
        parent_fd = _open_dir_nofollow(root, parents, create_mode=None)
    except FileNotFoundError:
        parent_fd = None
    if parent_fd is not None:
        try:
            _apply_policy(parent_fd, leaf, on_delete)
        finally:
            os.close(parent_fd)
    _metadata_path(root, path).unlink(missing_ok=True)


def _apply_policy(parent_fd: int, leaf: str, on_delete: str) -> None:
    try:
        info = os.stat(leaf, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafePath(f"{leaf!r} inside the share is a symlink or not a directory")
    if on_delete == contract.ON_DELETE_RETAIN:
        return
    if on_delete == contract.ON_DELETE_ARCHIVE:
        # Only the leaf is renamed; parents (e.g. the namespace directory) stay.
        os.rename(leaf, _free_archive_name(parent_fd, leaf), src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        return
    child_fd = os.open(leaf, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    try:
        _remove_tree(child_fd)
    finally:
        os.close(child_fd)
    os.rmdir(leaf, dir_fd=parent_fd)


def _remove_tree(dir_fd: int) -> None:
    """Remove everything inside dir_fd without following symlinks (rmtree's fd-based walk)."""
    for entry in os.scandir(dir_fd):
        if entry.is_dir(follow_symlinks=False):
            child = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            try:
                _remove_tree(child)
            finally:
                os.close(child)
            os.rmdir(entry.name, dir_fd=dir_fd)
        else:
            os.unlink(entry.name, dir_fd=dir_fd)


def _free_archive_name(parent_fd: int, leaf: str) -> str:
    name, counter = ARCHIVE_PREFIX + leaf, 1
    while True:
        try:
            os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return name
        counter += 1
        name = f"{ARCHIVE_PREFIX}{leaf}-{counter}"
