"""Volume ids: everything the stateless controller needs to find a volume again.

Formats (docs/ARCHITECTURE.md):
- filesystem mode: `fs:<FileSystemId>`, or `fs:<FileSystemId>:retain` when the StorageClass
  asked to keep the file system on delete;
- subdir mode: `subdir:<share>:<relative/path>` with an optional `:retain` / `:archive` suffix,
  where `<share>` is a `FileSystemId` or `<server>/<fsid>` for a static share.

DeleteVolume gets nothing but the id, so the delete policy has to travel in it. Paths and
shares never contain ':' (params.validate_relative_path), which keeps parsing unambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

from cfs_csi import params

FS_PREFIX = "fs"
SUBDIR_PREFIX = "subdir"
MAX_VOLUME_ID_BYTES = 128  # CSI: plugins SHOULD keep ids at most 128 bytes


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
    on_delete: str = params.ON_DELETE_DELETE

    def encode(self) -> str:
        return _join(FS_PREFIX, self.file_system_id, on_delete=self.on_delete)


@dataclass(frozen=True)
class SubdirVolume:
    share: Share
    path: str
    on_delete: str = params.ON_DELETE_DELETE

    def encode(self) -> str:
        return _join(SUBDIR_PREFIX, str(self.share), self.path, on_delete=self.on_delete)


def _join(*parts: str, on_delete: str) -> str:
    if on_delete != params.ON_DELETE_DELETE:
        parts += (on_delete,)
    volume_id = ":".join(parts)
    if len(volume_id.encode()) > MAX_VOLUME_ID_BYTES:
        raise params.ParameterError(
            f"volume id {volume_id!r} would exceed {MAX_VOLUME_ID_BYTES} bytes; use a shorter subDir")
    return volume_id


def _parse_share(text: str) -> Share:
    if params.FILE_SYSTEM_ID_RE.match(text):
        return Share(file_system_id=text)
    server, _, fsid = text.partition("/")
    try:
        params.validate_server(server)
    except params.ParameterError:
        raise MalformedVolumeId(f"share {text!r} is neither a FileSystemId nor server/fsid") from None
    if not params.FSID_RE.match(fsid):
        raise MalformedVolumeId(f"share {text!r} is neither a FileSystemId nor server/fsid")
    return Share(server=server, fsid=fsid)


def _suffix_policy(suffix: list[str], allowed: tuple[str, ...]) -> str:
    """The optional delete-policy field; `delete` is the default and is never spelled out."""
    if not suffix:
        return params.ON_DELETE_DELETE
    if suffix[0] == params.ON_DELETE_DELETE or suffix[0] not in allowed:
        raise MalformedVolumeId(f"unknown delete policy {suffix[0]!r}")
    return suffix[0]


def decode(volume_id: str) -> FilesystemVolume | SubdirVolume:
    kind, _, rest = volume_id.partition(":")
    fields = rest.split(":")
    if kind == FS_PREFIX and 1 <= len(fields) <= 2:
        if not params.FILE_SYSTEM_ID_RE.match(fields[0]):
            raise MalformedVolumeId(f"{fields[0]!r} is not a FileSystemId")
        return FilesystemVolume(fields[0], _suffix_policy(fields[1:], params.FILESYSTEM_ON_DELETE))
    if kind == SUBDIR_PREFIX and 2 <= len(fields) <= 3:
        on_delete = _suffix_policy(fields[2:], params.SUBDIR_ON_DELETE)
        try:
            params.validate_relative_path(fields[1], "path")
        except params.ParameterError as err:
            raise MalformedVolumeId(str(err)) from None
        return SubdirVolume(_parse_share(fields[0]), fields[1], on_delete)
    raise MalformedVolumeId(f"volume id {volume_id!r} is not fs:<FileSystemId> or subdir:<share>:<path>")
