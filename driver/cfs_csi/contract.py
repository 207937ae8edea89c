"""The contract between the controller and the node: what one writes and the other reads.

Nothing here knows the cloud API or gRPC. The controller writes volume ids, volume contexts and
topology segments; the node (and static PVs written by hand) read them back:
- topology: the segment key that carries a volume's zone;
- NFS: the protocol versions and the server's port;
- the volume context (also a static PV's `volumeAttributes`): its keys and value rules;
- volume ids, which the stateless controller alone decodes (DeleteVolume gets nothing else):
  - filesystem mode: `fs:<FileSystemId>`, or `fs:<FileSystemId>:retain` when the StorageClass
    asked to keep the file system on delete;
  - subdir mode: `subdir:<share>:<relative/path>` with an optional `:retain` / `:archive`
    suffix, where `<share>` is a `FileSystemId` or `<server>/<fsid>` for a static share.
  Paths and shares never contain ':' (validate_relative_path), which keeps parsing unambiguous.
docs/ARCHITECTURE.md lists the same formats for readers.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

TOPOLOGY_ZONE_KEY = "topology.cfs.csi.tencentcloud.com/zone"

NFS_V3 = "3"
NFS_V4 = "4"
NFS_VERSIONS = (NFS_V3, NFS_V4)
NFS_PORT = 2049

# Volume context keys; the StorageClass parameters of the same name use the same spelling.
SERVER = "server"
FSID = "fsid"
PATH = "path"
VERS = "vers"
MOUNT_OPTIONS = "mountOptions"
SUB_PATH = "subPath"
FILE_SYSTEM_ID = "fileSystemId"
CONTEXT_KEYS = (SERVER, FSID, PATH, VERS, FILE_SYSTEM_ID, MOUNT_OPTIONS, SUB_PATH)

FILE_SYSTEM_ID_RE = re.compile(r"^cfs-[a-z0-9]+$")
FSID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
# One path component of a subdir volume: no separators, no dot-only names, no ':' (id syntax).
PATH_COMPONENT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")

# What DeleteVolume does with the storage; the volume id carries it.
ON_DELETE_DELETE = "delete"
ON_DELETE_RETAIN = "retain"
ON_DELETE_ARCHIVE = "archive"
FILESYSTEM_ON_DELETE = (ON_DELETE_DELETE, ON_DELETE_RETAIN)
SUBDIR_ON_DELETE = (ON_DELETE_DELETE, ON_DELETE_RETAIN, ON_DELETE_ARCHIVE)

FS_PREFIX = "fs"
SUBDIR_PREFIX = "subdir"
MAX_VOLUME_ID_BYTES = 128  # CSI: plugins SHOULD keep ids at most 128 bytes


class ParameterError(ValueError):
    """A StorageClass parameter or volume-context value is unknown or outside the allowed set."""


def validate_server(server: str) -> None:
    try:
        ipaddress.IPv4Address(server)
        return
    except ValueError:
        pass
    if not HOSTNAME_RE.match(server):
        raise ParameterError(
            f"parameter {SERVER}={server!r} is invalid; allowed: an IPv4 address or a host name"
        )


def validate_relative_path(path: str, what: str) -> None:
    """A relative path of safe components: no '..', no absolute path, no empty component."""
    parts = path.split("/")
    if not path or any(not PATH_COMPONENT_RE.match(part) for part in parts):
        raise ParameterError(
            f"{what} {path!r} is not a safe relative path; allowed: components of letters, "
            "digits, '.', '-', '_' (not starting with '.' or '-') separated by '/'"
        )


class MalformedVolumeId(ValueError):
    """The id was not produced by this driver."""


@dataclass(frozen=True)
class Share:
    """The shared file system a subdir volume lives in."""

    file_system_id: str | None = None
    server: str | None = None
    fsid: str | None = None

    def __str__(self) -> str:
        return self.file_system_id or f"{self.server}/{self.fsid}"


@dataclass(frozen=True)
class FilesystemVolume:
    file_system_id: str
    on_delete: str = ON_DELETE_DELETE

    def encode(self) -> str:
        return _join(FS_PREFIX, self.file_system_id, on_delete=self.on_delete)


@dataclass(frozen=True)
class SubdirVolume:
    share: Share
    path: str
    on_delete: str = ON_DELETE_DELETE

    def encode(self) -> str:
        return _join(SUBDIR_PREFIX, str(self.share), self.path, on_delete=self.on_delete)


def _join(*parts: str, on_delete: str) -> str:
    if on_delete != ON_DELETE_DELETE:
        parts += (on_delete,)
    volume_id = ":".join(parts)
    if len(volume_id.encode()) > MAX_VOLUME_ID_BYTES:
        raise ParameterError(
            f"volume id {volume_id!r} would exceed {MAX_VOLUME_ID_BYTES} bytes; use a shorter subDir"
        )
    return volume_id


def _parse_share(text: str) -> Share:
    if FILE_SYSTEM_ID_RE.match(text):
        return Share(file_system_id=text)
    server, _, fsid = text.partition("/")
    try:
        validate_server(server)
    except ParameterError:
        raise MalformedVolumeId(f"share {text!r} is neither a FileSystemId nor server/fsid") from None
    if not FSID_RE.match(fsid):
        raise MalformedVolumeId(f"share {text!r} is neither a FileSystemId nor server/fsid")
    return Share(server=server, fsid=fsid)


def _suffix_policy(suffix: list[str], allowed: tuple[str, ...]) -> str:
    """The optional delete-policy field; `delete` is the default and is never spelled out."""
    if not suffix:
        return ON_DELETE_DELETE
    if suffix[0] == ON_DELETE_DELETE or suffix[0] not in allowed:
        raise MalformedVolumeId(f"unknown delete policy {suffix[0]!r}")
    return suffix[0]


def decode(volume_id: str) -> FilesystemVolume | SubdirVolume:
    kind, _, rest = volume_id.partition(":")
    fields = rest.split(":")
    if kind == FS_PREFIX and 1 <= len(fields) <= 2:
        if not FILE_SYSTEM_ID_RE.match(fields[0]):
            raise MalformedVolumeId(f"{fields[0]!r} is not a FileSystemId")
        return FilesystemVolume(fields[0], _suffix_policy(fields[1:], FILESYSTEM_ON_DELETE))
    if kind == SUBDIR_PREFIX and 2 <= len(fields) <= 3:
        on_delete = _suffix_policy(fields[2:], SUBDIR_ON_DELETE)
        try:
            validate_relative_path(fields[1], "path")
        except ParameterError as err:
            raise MalformedVolumeId(str(err)) from None
        return SubdirVolume(_parse_share(fields[0]), fields[1], on_delete)
    raise MalformedVolumeId(f"volume id {volume_id!r} is not fs:<FileSystemId> or subdir:<share>:<path>")
