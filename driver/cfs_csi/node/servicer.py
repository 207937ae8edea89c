"""CSI Node service: mount CFS over NFS once per node (stage), bind it into pods (publish).

- NodeStageVolume mounts `<server>:<export>` at the staging path with the docs' recommended
  options (mount_options.py), after a short TCP connect to the server's NFS port so an
  unreachable mount target fails fast with UNAVAILABLE instead of hanging in mount.
- NodePublishVolume bind-mounts the staging path (plus the volume's `subPath`) onto the target,
  read-only when asked or when the access mode is a reader-only one (which also stages
  read-only). Inline ephemeral volumes (no staging path, the pod spec's volumeAttributes in
  the context) are mounted over NFS directly at the target.
- A mount found at the staging or target path that answers with a stale handle or a lost
  connection is unmounted and mounted again, instead of being reported as already done.
- Unpublish/unstage unmount (forcing a lazy unmount when the server is gone) and remove the
  directory; missing and unmounted paths are already done.
- NodeGetVolumeStats reports statvfs bytes and inodes, or an abnormal condition when the server
  is unreachable or the handle is stale.

Static PVs need no controller: their `volumeAttributes` (server, fsid, path, vers,
mountOptions, subPath) are the volume context, exactly as the controller would have written it.
Operations on one volume and path are serialised with try-locks (a second one gets ABORTED);
every mount command runs under the mount timeout, so a hung one never blocks other volumes.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import logging
import os
import posixpath
import socket
from collections.abc import Callable, Iterable, Mapping

import grpc

from cfs_csi import contract
from cfs_csi.contract import NFS_PORT, NFS_V3, TOPOLOGY_ZONE_KEY
from cfs_csi.csipb import csi_pb2, csi_pb2_grpc
from cfs_csi.locks import KeyLocks
from cfs_csi.node.mount_options import NFS_FS_TYPES, MountOptionError, NfsMountOptions, nfs_mount_options
from cfs_csi.node.mounter import CommandFailed, CommandTimeout, MountEntry, Mounter, is_stale
from cfs_csi.node.paths import PathPolicy
from cfs_csi.status import RpcError

log = logging.getLogger(__name__)

# The reachability probe before a mount and in stats: long enough for a VPC round trip.
REACHABILITY_TIMEOUT_SECONDS = 3.0

# The volume context's own keys are contract.CONTEXT_KEYS (also the static-PV volumeAttributes).
# Kubernetes adds prefixed keys of its own: the kubelet's pod info (podInfoOnMount) and
# `csi.storage.k8s.io/ephemeral`, the provisioner's `storage.kubernetes.io/csiProvisionerIdentity`.
# Only unprefixed keys are ours, so only those can be typos.
KUBERNETES_KEY_SEPARATOR = "/"
EPHEMERAL_KEY = "csi.storage.k8s.io/ephemeral"

Mode = csi_pb2.VolumeCapability.AccessMode.Mode
READER_ONLY_MODES = (Mode.SINGLE_NODE_READER_ONLY, Mode.MULTI_NODE_READER_ONLY)
NODE_CAPABILITIES = (
    csi_pb2.NodeServiceCapability.RPC.STAGE_UNSTAGE_VOLUME,
    csi_pb2.NodeServiceCapability.RPC.GET_VOLUME_STATS,
    csi_pb2.NodeServiceCapability.RPC.VOLUME_CONDITION,
    csi_pb2.NodeServiceCapability.RPC.SINGLE_NODE_MULTI_WRITER,
)


@dataclasses.dataclass(frozen=True)
class NfsVolume:
    """What to mount: `<server>:<export_path>` with `options`; `sub_path` is bound into pods."""

    server: str
    export_path: str
    options: NfsMountOptions
    sub_path: str = ""

    @property
    def source(self) -> str:
        return f"{self.server}:{self.export_path}"

    @property
    def read_only(self) -> bool:
        return "ro" in self.options.options


def export_path(vers: str, fsid: str, path: str) -> str:
    """The docs' mount source path: v4 `/<path>`, v3 `/<fsid>/<path>` (path relative, may be "")."""
    parts = [fsid] if vers == NFS_V3 else []
    parts += [path] if path else []
    return "/" + "/".join(parts)


def _relative_path(context: Mapping[str, str], key: str) -> str:
    value = context.get(key, "").strip("/")
    if value:
        try:
            contract.validate_relative_path(value, f"volume context {key}")
        except contract.ParameterError as err:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from None
    return value


def nfs_volume(
    context: Mapping[str, str], mount_flags: Iterable[str] = (), read_only: bool = False
) -> NfsVolume:
    """Read the volume context (or static-PV attributes); INVALID_ARGUMENT names a bad key."""
    unknown = sorted(
        key for key in context if KUBERNETES_KEY_SEPARATOR not in key and key not in contract.CONTEXT_KEYS
    )
    if unknown:
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"volume context key {unknown[0]!r} is unknown; allowed keys: {', '.join(contract.CONTEXT_KEYS)}",
        )
    server = context.get(contract.SERVER, "")
    if not server:
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"volume context has no {contract.SERVER!r} (the mount target IP); static "
            f"PVs set {contract.SERVER}, {contract.FSID}, {contract.PATH} and "
            f"{contract.VERS} in volumeAttributes",
        )
    try:
        contract.validate_server(server)
    except contract.ParameterError as err:
        raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"volume context: {err}") from None
    vers = context.get(contract.VERS, "4")
    if vers not in contract.NFS_VERSIONS:
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"volume context {contract.VERS}={vers!r} is invalid; allowed: "
            f"{', '.join(contract.NFS_VERSIONS)}",
        )
    try:
        options = nfs_mount_options(vers, [context.get(contract.MOUNT_OPTIONS, ""), *mount_flags], read_only)
    except MountOptionError as err:
        raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from None
    fsid = context.get(contract.FSID, "")
    if options.vers == NFS_V3 and not fsid:
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"volume context has no {contract.FSID!r}: NFSv3 mounts <server>:/<fsid>",
        )
    if fsid and not contract.FSID_RE.match(fsid):
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"volume context {contract.FSID}={fsid!r} is invalid; allowed: letters, digits, '-', '_'",
        )
    return NfsVolume(
        server=server,
        export_path=export_path(options.vers, fsid, _relative_path(context, contract.PATH)),
        options=options,
        sub_path=_relative_path(context, contract.SUB_PATH),
    )


def _rpc(method: Callable) -> Callable:
    """Translate the node's exceptions into gRPC statuses (context.abort) in one place."""

    @functools.wraps(method)
    def wrapper(self: NodeServicer, request, context: grpc.ServicerContext):
        try:
            return method(self, request, context)
        except RpcError as err:
            code, message = err.code, str(err)
        except CommandTimeout as err:
            code, message = grpc.StatusCode.DEADLINE_EXCEEDED, str(err)
        except (CommandFailed, OSError) as err:  # a failed mount command or directory operation
            code, message = grpc.StatusCode.INTERNAL, str(err)
        log.warning("%s failed: %s %s", method.__name__, code.name, message)
        context.abort(code, message)

    return wrapper


def _require(value: str, field: str) -> str:
    if not value:
        raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"{field} missing in request")
    return value


def _check_capability(request, field: str = "volume_capability") -> None:
    if not request.HasField(field):
        raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"{field} missing in request")
    capability = getattr(request, field)
    if capability.HasField("block"):
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            "block access type is not supported: CFS is a file system; use "
            "volumeMode: Filesystem (access type mount)",
        )
    if not capability.HasField("mount"):
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT, f"{field}.access_type missing in request; allowed: mount"
        )
    if capability.mount.fs_type not in NFS_FS_TYPES:
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{field}.mount.fs_type {capability.mount.fs_type!r} is not supported "
            "(CFS volumes are NFS); allowed: empty, nfs, nfs4",
        )
    if capability.mount.volume_mount_group:
        # Not advertised (VOLUME_MOUNT_GROUP): NFS has no mount option that sets a group, so the
        # kubelet applies fsGroup itself (CSIDriver fsGroupPolicy: File).
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{field}.mount.volume_mount_group is not supported: NFS cannot mount "
            "with a group id; leave it empty (the CSIDriver's fsGroupPolicy File "
            "makes the kubelet apply fsGroup)",
        )
    if capability.access_mode.mode == Mode.UNKNOWN:
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{field}.access_mode missing in request; allowed: "
            f"{', '.join(name for name in Mode.keys() if name != 'UNKNOWN')}",
        )


def _read_only(request) -> bool:
    """Publish read-only when asked, and always for the reader-only access modes (ROX)."""
    return request.readonly or request.volume_capability.access_mode.mode in READER_ONLY_MODES


def _requested_volume(request, read_only: bool) -> NfsVolume:
    return nfs_volume(request.volume_context, request.volume_capability.mount.mount_flags, read_only)


def nfs_unreachable(server: str, port: int = NFS_PORT, timeout: float = REACHABILITY_TIMEOUT_SECONDS) -> str:
    """'' when a TCP connect to the server's NFS port succeeds, else why it failed (the docs'
    first troubleshooting step; a mount of an unreachable target would hang instead)."""
    try:
        with socket.create_connection((server, port), timeout):
            return ""
    except OSError as err:
        return f"NFS server {server} port {port} is unreachable: {err.strerror or err}"


class NodeServicer(csi_pb2_grpc.NodeServicer):
    def __init__(
        self,
        node_id: str,
        zone: str,
        mounter: Mounter,
        *,
        kubelet_dir: str,
        locks: KeyLocks | None = None,
        nfs_port: int = NFS_PORT,
        reachability_timeout: float = REACHABILITY_TIMEOUT_SECONDS,
    ):
        self.node_id = node_id
        self.zone = zone
        self.mounter = mounter
        self.paths = PathPolicy(kubelet_dir, lambda path: mounter.find_mount(path) is not None)
        self.locks = locks or KeyLocks()
        self.nfs_port = nfs_port
        self.reachability_timeout = reachability_timeout

    # --- identity of the node ----------------------------------------------------------
    def NodeGetCapabilities(self, request, context):
        return csi_pb2.NodeGetCapabilitiesResponse(
            capabilities=[
                csi_pb2.NodeServiceCapability(rpc=csi_pb2.NodeServiceCapability.RPC(type=kind))
                for kind in NODE_CAPABILITIES
            ]
        )

    def NodeGetInfo(self, request, context):
        topology = csi_pb2.Topology(segments={TOPOLOGY_ZONE_KEY: self.zone}) if self.zone else None
        return csi_pb2.NodeGetInfoResponse(
            node_id=self.node_id, max_volumes_per_node=0, accessible_topology=topology
        )

    # --- stage / unstage ---------------------------------------------------------------
    @_rpc
    def NodeStageVolume(self, request, context):
        volume_id = _require(request.volume_id, "volume_id")
        staging = self.paths.check(request.staging_target_path, "staging_target_path")
        _check_capability(request)
        # A reader-only volume is mounted read-only once for the node: no pod can write to it.
        volume = _requested_volume(request, request.volume_capability.access_mode.mode in READER_ONLY_MODES)
        with self._hold(context, volume_id, staging):
            self._mount_nfs_once(volume, staging)
        return csi_pb2.NodeStageVolumeResponse()

    @_rpc
    def NodeUnstageVolume(self, request, context):
        volume_id = _require(request.volume_id, "volume_id")
        staging = self.paths.check(request.staging_target_path, "staging_target_path")
        with self._hold(context, volume_id, staging):
            self._unmount_and_remove(staging)
        return csi_pb2.NodeUnstageVolumeResponse()

    # --- publish / unpublish -----------------------------------------------------------
    @_rpc
    def NodePublishVolume(self, request, context):
        volume_id = _require(request.volume_id, "volume_id")
        target = self.paths.check(request.target_path, "target_path")
        if request.staging_target_path:
            self.paths.check(request.staging_target_path, "staging_target_path")
        _check_capability(request)
        if not request.staging_target_path and request.volume_context.get(EPHEMERAL_KEY) != "true":
            # The spec's code for a plugin with STAGE_UNSTAGE_VOLUME called without the path.
            raise RpcError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "staging_target_path missing in request: NodeStageVolume must "
                "succeed first (only inline ephemeral volumes, volume context "
                f"{EPHEMERAL_KEY}=true, are published without it)",
            )
        with self._hold(context, volume_id, target):
            if request.staging_target_path:
                self._bind_staged(context, volume_id, request, target)
            else:
                self._mount_inline(request, target)
        return csi_pb2.NodePublishVolumeResponse()

    @_rpc
    def NodeUnpublishVolume(self, request, context):
        volume_id = _require(request.volume_id, "volume_id")
        target = self.paths.check(request.target_path, "target_path")
        with self._hold(context, volume_id, target):
            self._unmount_and_remove(target)
        return csi_pb2.NodeUnpublishVolumeResponse()

    # --- stats -------------------------------------------------------------------------
    @_rpc
    def NodeGetVolumeStats(self, request, context):
        volume_id = _require(request.volume_id, "volume_id")
        path = _require(request.volume_path, "volume_path")
        # Look the path up in the mount table first: stat-ing the mount point of a hung server
        # would hang. CSI: NOT_FOUND for a path that does not exist, whatever its form.
        entry = self.mounter.find_mount(path) if "\0" not in path and os.path.isabs(path) else None
        if entry is None:
            if "\0" in path or not os.path.lexists(path):
                raise RpcError(
                    grpc.StatusCode.NOT_FOUND,
                    f"volume path {path!r} does not exist: it is not a mount of volume {volume_id}",
                )
            self.paths.check(path, "volume_path", mounted=False)
            raise RpcError(
                grpc.StatusCode.NOT_FOUND,
                f"volume path {path} is not a mount point: it is not a mount of volume {volume_id}",
            )
        self.paths.check(path, "volume_path", mounted=True)
        source = self.mounter.nfs_source(entry)
        if source is not None:
            server = source.partition(":")[0]
            problem = self._unreachable(server)
            if problem:  # statvfs on a hard mount of a dead server would hang: report instead
                return _abnormal(problem)
        try:
            stats = self.mounter.statvfs(path)
        except CommandTimeout as err:
            return _abnormal(f"the file system does not answer: {err}")
        except OSError as err:
            if is_stale(err):
                return _abnormal(
                    f"stale NFS file handle at {path}: the exported directory was "
                    "removed or replaced on the server; unpublish and publish again"
                )
            raise RpcError(grpc.StatusCode.INTERNAL, f"statvfs {path}: {err}") from None
        return csi_pb2.NodeGetVolumeStatsResponse(
            usage=[
                csi_pb2.VolumeUsage(
                    unit=csi_pb2.VolumeUsage.BYTES,
                    total=stats.f_blocks * stats.f_frsize,
                    available=stats.f_bavail * stats.f_frsize,
                    used=(stats.f_blocks - stats.f_bfree) * stats.f_frsize,
                ),
                csi_pb2.VolumeUsage(
                    unit=csi_pb2.VolumeUsage.INODES,
                    total=stats.f_files,
                    available=stats.f_favail,
                    used=stats.f_files - stats.f_ffree,
                ),
            ],
            volume_condition=csi_pb2.VolumeCondition(abnormal=False, message="volume is healthy"),
        )

    # --- helpers -----------------------------------------------------------------------
    def _hold(self, context: grpc.ServicerContext, volume_id: str, path: str):
        """One operation per volume and path at a time; a concurrent one gets ABORTED."""
        return self.locks.hold_or_abort(context, f"{volume_id}@{os.path.normpath(path)}")

    def _unreachable(self, server: str) -> str:
        return nfs_unreachable(server, self.nfs_port, self.reachability_timeout)

    def _mount_nfs_once(self, volume: NfsVolume, target: str) -> None:
        existing = self.mounter.find_mount(target)
        if existing is not None:
            mounted_from = self.mounter.nfs_source(existing)
            if mounted_from != volume.source:
                raise RpcError(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"{target} is already mounted from "
                    f"{mounted_from or existing.source}, not {volume.source}",
                )
            if existing.read_only != volume.read_only:
                raise RpcError(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"{target} is already mounted {_access(existing.read_only)} from "
                    f"{volume.source}, not {_access(volume.read_only)}",
                )
            if not self.mounter.is_corrupted(target):
                return
            log.warning(
                "%s (from %s) has a stale handle or lost its connection; mounting it again",
                target,
                volume.source,
            )
            self.mounter.unmount(target)
        problem = self._unreachable(volume.server)
        if problem:
            raise RpcError(
                grpc.StatusCode.UNAVAILABLE,
                f"{problem}; check the mount target IP, the security group and that "
                "the node is in the file system's VPC",
            )
        try:
            self.mounter.mount_nfs(volume.server, volume.export_path, target, list(volume.options.options))
        except CommandFailed as err:
            raise _refused_mount(volume, err) from None

    def _staged_mount(self, volume_id: str, staging: str) -> MountEntry:
        staged = self.mounter.find_mount(staging)
        if staged is None:
            raise RpcError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"volume {volume_id} is not staged at {staging}: NodeStageVolume first",
            )
        return staged

    def _bind_staged(self, context: grpc.ServicerContext, volume_id: str, request, target: str) -> None:
        staging = request.staging_target_path
        read_only = _read_only(request)
        staged = self._staged_mount(volume_id, staging)
        if staged.read_only and not read_only:
            raise RpcError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"volume {volume_id} is staged read-only at {staging} (reader-only "
                "access mode); it cannot be published read-write",
            )
        if self.mounter.is_corrupted(staging):
            # The kubelet stages once per node; heal the staged mount for the pods to come.
            log.warning("staged mount %s of volume %s is stale; mounting it again", staging, volume_id)
            with self._hold(context, volume_id, staging):  # pods publishing meanwhile: ABORTED
                self._mount_nfs_once(_requested_volume(request, staged.read_only), staging)
            staged = self._staged_mount(volume_id, staging)
        sub_path = _relative_path(request.volume_context, contract.SUB_PATH)
        source = os.path.join(staging, sub_path) if sub_path else staging
        if not self.mounter.is_directory(source):
            what = f"sub-path {sub_path!r}" if sub_path else f"staged mount {staging}"
            raise RpcError(
                grpc.StatusCode.NOT_FOUND, f"{what} of volume {volume_id} is not an accessible directory"
            )
        expected_root = posixpath.normpath(posixpath.join(staged.root, sub_path))
        if request.volume_capability.access_mode.mode == Mode.SINGLE_NODE_SINGLE_WRITER:
            self._check_single_pod(volume_id, staged.device, expected_root, staging, target)
        existing = self.mounter.find_mount(target)
        if existing is not None and self.mounter.is_corrupted(target):
            # A bind of a mount that went stale (or was mounted again since): bind afresh.
            log.warning("%s is a stale bind of volume %s; binding it again", target, volume_id)
            self.mounter.unmount(target)
        elif existing is not None:
            if (existing.device, existing.root, existing.read_only) == (
                staged.device,
                expected_root,
                read_only,
            ):
                return
            raise RpcError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"{target} is already mounted, but not as a {_access(read_only)} bind of {source}",
            )
        os.makedirs(target, exist_ok=True)
        self.mounter.bind_mount(source, target, read_only=read_only)

    def _check_single_pod(self, volume_id: str, device: str, root: str, staging: str, target: str) -> None:
        """ReadWriteOncePod: the spec's FAILED_PRECONDITION for a second target of the volume."""
        own = {os.path.normpath(staging), os.path.normpath(target)}
        others = [path for path in self.mounter.mount_points_of(device, root) if path not in own]
        if others:
            raise RpcError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"volume {volume_id} has access mode SINGLE_NODE_SINGLE_WRITER "
                f"(ReadWriteOncePod) and is already published at {others[0]}",
            )

    def _mount_inline(self, request, target: str) -> None:
        volume = _requested_volume(request, _read_only(request))
        # Inline volumes have no staging mount: the sub-path goes into the NFS source itself.
        if volume.sub_path:
            volume = dataclasses.replace(
                volume, export_path=posixpath.join(volume.export_path, volume.sub_path), sub_path=""
            )
        self._mount_nfs_once(volume, target)

    def _unmount_and_remove(self, path: str) -> None:
        self.mounter.unmount(path)
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise RpcError(
                grpc.StatusCode.INTERNAL, f"{path} is unmounted but cannot be removed: {err.strerror}"
            ) from None


def _access(read_only: bool) -> str:
    return "read-only" if read_only else "read-write"


def _refused_mount(volume: NfsVolume, err: CommandFailed) -> Exception:
    """The spec's code for what mount.nfs reports: a missing path is NOT_FOUND."""
    if os.strerror(errno.ENOENT) in err.stderr:
        return RpcError(
            grpc.StatusCode.NOT_FOUND,
            f"{volume.export_path} does not exist on NFS server {volume.server}; "
            f"check the volume's path (and fsid for NFSv3): {err}",
        )
    # mount.nfs says "access denied by server" for NFSv3 (MOUNT refused); for NFSv4 the kernel's
    # client reports the server's refusal of an unlisted client as EPERM.
    if "access denied" in err.stderr or os.strerror(errno.EPERM) in err.stderr:
        return RpcError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"NFS server {volume.server} refused {volume.source}: the file "
            "system's permission group does not allow this node's address, or the "
            f"path is not exported: {err}",
        )
    return err


def _abnormal(message: str) -> csi_pb2.NodeGetVolumeStatsResponse:
    return csi_pb2.NodeGetVolumeStatsResponse(
        volume_condition=csi_pb2.VolumeCondition(abnormal=True, message=message)
    )


def build_node(config) -> NodeServicer:
    """The node servicer `main.py` registers; the node needs no cloud credentials."""
    return NodeServicer(
        config.node_id,
        config.zone,
        Mounter(timeout=config.mount_timeout),
        kubelet_dir=config.kubelet_dir,
    )
