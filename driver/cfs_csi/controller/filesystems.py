"""Filesystem mode: one CFS file system per volume - create, wait, size, delete, expand.

Idempotency rests on the name: the CFS name is derived from the CSI volume name, and every
create looks that name up first. A CreateVolume retried after a timeout, a lost reply or a
controller crash therefore finds the file system the first attempt made instead of making a
second one. The controller keeps no state; the volume id carries the FileSystemId.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import grpc

from cfs_cloud import CfsClient
from cfs_cloud.errors import CfsError, CfsNetworkError, CfsNotFound, FileSystemCreateFailed, WaitTimeout
from cfs_csi.controller import params, snapshots
from cfs_csi.controller.pgroups import ManagedGroups, managed_group_name
from cfs_csi.status import RpcError, invalid

log = logging.getLogger(__name__)

GIB = 1 << 30
MAX_FS_LIMIT_GB = 1073741824  # UpdateCfsFileSystemSizeLimit: FsLimit 0-1073741824 GB
MAX_FS_NAME_BYTES = 64  # InvalidParameterValue.FsNameLimitExceeded
STATE_AVAILABLE = "available"
STATE_CREATE_FAILED = "create_failed"
RELEASED_PREFIX = "released-"
PGROUP_NOT_FOUND = "ResourceNotFound.PgroupNotFound"
SNAPSHOT_IN_PROGRESS = "InvalidParameterValue.SnapSrcFsBusy"


def cfs_name(prefix: str, volume_name: str) -> str:
    """`<prefix>-<volume name>` when that is a valid, short name; else `<prefix>-h<hash>`."""
    plain = f"{prefix}-{volume_name}"
    if params.NAME_PART_RE.match(volume_name) and len(plain) <= MAX_FS_NAME_BYTES:
        return plain
    return f"{prefix}-h{hashlib.sha256(volume_name.encode()).hexdigest()[:40]}"


def check_capacity_range(required_bytes: int, limit_bytes: int) -> None:
    """CSI CapacityRange: 0 means unspecified; a range no size can satisfy is OUT_OF_RANGE."""
    if required_bytes < 0 or limit_bytes < 0:
        raise invalid("capacity_range: required_bytes and limit_bytes must not be negative")
    if limit_bytes and required_bytes > limit_bytes:
        raise RpcError(
            grpc.StatusCode.OUT_OF_RANGE,
            f"capacity_range: required_bytes {required_bytes} exceeds limit_bytes {limit_bytes}",
        )


def size_limit_gb(required_bytes: int, limit_bytes: int) -> int:
    """CSI capacity range → whole GB for FsLimit (rounded up); 0 = no limit requested."""
    check_capacity_range(required_bytes, limit_bytes)
    gb = math.ceil(required_bytes / GIB) if required_bytes else limit_bytes // GIB
    if limit_bytes and (gb == 0 or gb * GIB > limit_bytes):
        raise RpcError(
            grpc.StatusCode.OUT_OF_RANGE,
            f"capacity_range: no whole-GB size lies between {required_bytes} "
            f"and {limit_bytes} bytes (CFS sizes are whole GB)",
        )
    if gb > MAX_FS_LIMIT_GB:
        raise RpcError(
            grpc.StatusCode.OUT_OF_RANGE,
            f"capacity_range: {gb} GB exceeds the CFS maximum of {MAX_FS_LIMIT_GB} GB",
        )
    return gb


def check_source_fits(size_gb: int, used_bytes: int, source: str) -> None:
    """CSI: a volume from a source MUST NOT be smaller than the source (else OUT_OF_RANGE)."""
    if size_gb and used_bytes > size_gb * GIB:
        raise RpcError(
            grpc.StatusCode.OUT_OF_RANGE,
            f"capacity_range: {size_gb} GB is smaller than the {used_bytes} bytes of {source}",
        )


def _source_problems(snap_id: str | None, request: ProvisionRequest) -> list[str]:
    """How an existing file system's source differs from the request's. A clone's temporary
    snapshot is gone once the clone is done, so a clone is known by having some SnapId."""
    if request.clone_of:
        return [] if snap_id else [f"source none (asked a clone of {request.clone_of})"]
    if snap_id != request.snapshot_id:
        return [f"source snapshot {snap_id or 'none'} (asked {request.snapshot_id or 'none'})"]
    return []


def mount_target(client: CfsClient, fs_id: str) -> dict:
    """The file system's mount target (CFS gives each file system one)."""
    for target in client.mount_targets(fs_id):
        if target.get("IpAddress"):
            return target
    raise RpcError(grpc.StatusCode.UNAVAILABLE, f"file system {fs_id} has no mount target yet")


@dataclass(frozen=True)
class ProvisionRequest:
    volume_name: str
    fs_params: params.FilesystemParams
    zone: str
    size_gb: int
    limit_bytes: int
    # Zones an existing file system of this name may be in: the `zone` parameter, else the
    # requisite topologies; None = any (CSI: "accessible from accessibility_requirements").
    accepted_zones: frozenset[str] | None = None
    snapshot_id: str | None = None  # restore from this CFS snapshot
    clone_of: str | None = None  # clone of this FileSystemId (through snapshot_id)
    # time.monotonic() by which the call must answer: a clone first waits for its temporary
    # snapshot, and both waits together must stay within --create-timeout.
    deadline: float = math.inf

    @property
    def fs_name(self) -> str:
        return cfs_name(self.fs_params.fs_name_prefix, self.volume_name)


class FileSystems:
    def __init__(self, groups: ManagedGroups, create_timeout: float):
        self.groups = groups
        self.create_timeout = create_timeout

    # ---- lookups -----------------------------------------------------------------------

    def find_by_name(self, client: CfsClient, fs_name: str) -> dict | None:
        """The file system called `fs_name`. Should an earlier create that was still in flight
        when its caller died have landed next to a retry's, every lookup keeps the same one
        (oldest, then lowest id) and deletes the others, so duplicates converge to one."""
        # CreationToken narrows the listing where the API filters by it; the name check is exact.
        found = [
            info
            for info in client.iter_file_systems(CreationToken=fs_name)
            if fs_name in (info.get("FsName"), info.get("CreationToken"))
        ]
        if not found:
            return None
        found.sort(key=lambda info: (info.get("CreationTime", ""), info["FileSystemId"]))
        for duplicate in found[1:]:
            log.warning(
                "file system %s duplicates %s (name %s); deleting it",
                duplicate["FileSystemId"],
                found[0]["FileSystemId"],
                fs_name,
            )
            try:
                client.call("DeleteCfsFileSystem", {"FileSystemId": duplicate["FileSystemId"]})
            except CfsError as err:  # still creating, or already gone: a later lookup retries
                log.info("duplicate %s not deleted yet: %s", duplicate["FileSystemId"], err)
        return found[0]

    @staticmethod
    def describe(client: CfsClient, fs_id: str) -> dict | None:
        return client.find_item(
            "DescribeCfsFileSystems", "FileSystems", "FileSystemId", fs_id, FileSystemId=fs_id
        )

    # ---- create ------------------------------------------------------------------------

    def provision(self, client: CfsClient, request: ProvisionRequest) -> dict:
        """An available file system for the request, with its size limit applied."""
        info = self.find_by_name(client, request.fs_name)
        if info is not None:
            self._check_compatible(info, request)
            log.info(
                "volume %s: found file system %s (%s)",
                request.volume_name,
                info["FileSystemId"],
                info.get("LifeCycleState"),
            )
        else:
            info = self._create(client, request)
        info = self._wait_available(client, info, request)
        if request.size_gb and info.get("SizeLimit") != request.size_gb:
            client.call(
                "UpdateCfsFileSystemSizeLimit",
                {"FileSystemId": info["FileSystemId"], "FsLimit": request.size_gb},
            )
            info = {**info, "SizeLimit": request.size_gb}
        return info

    def _check_compatible(self, info: dict, request: ProvisionRequest) -> None:
        fs_params = request.fs_params
        problems = []
        if info.get("StorageType") and info["StorageType"] != fs_params.storage_type:
            problems.append(f"storageType {info['StorageType']} (asked {fs_params.storage_type})")
        if (
            info.get("Zone")
            and request.accepted_zones is not None
            and info["Zone"] not in request.accepted_zones
        ):
            problems.append(f"zone {info['Zone']} (asked {', '.join(sorted(request.accepted_zones))})")
        if (info.get("VpcId") or None) != fs_params.vpc_id:
            problems.append(
                f"VPC {info.get('VpcId') or 'none (BASIC)'} (asked {fs_params.vpc_id or 'none (BASIC)'})"
            )
        group = info.get("PGroup") or {}
        if fs_params.pgroup_id and group.get("PGroupId") != fs_params.pgroup_id:
            problems.append(f"permission group {group.get('PGroupId')} (asked {fs_params.pgroup_id})")
        if not fs_params.pgroup_id and group.get("Name") != managed_group_name(fs_params.access_rules):
            problems.append(
                f"permission group {group.get('PGroupId')} ({group.get('Name')}), not "
                f"the managed group of the asked rules"
            )
        problems += _source_problems(info.get("SnapId") or None, request)
        current = info.get("SizeLimit") or 0
        if (
            request.size_gb
            and current
            and (current < request.size_gb or (request.limit_bytes and current * GIB > request.limit_bytes))
        ):
            problems.append(f"size {current} GB (asked {request.size_gb} GB)")
        if problems:
            raise RpcError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"volume {request.volume_name} exists as file system {info['FileSystemId']} "
                f"with incompatible {'; '.join(problems)}",
            )

    def _create(self, client: CfsClient, request: ProvisionRequest) -> dict:
        fs_params = request.fs_params
        body: dict[str, Any] = {
            "Zone": request.zone,
            "NetInterface": "VPC" if fs_params.vpc_id else "BASIC",
            "Protocol": "NFS",
            "StorageType": fs_params.storage_type,
            "FsName": request.fs_name,
            "CreationToken": request.fs_name,
        }
        if fs_params.vpc_id:
            body.update(VpcId=fs_params.vpc_id, SubnetId=fs_params.subnet_id)
        if fs_params.mount_ip:
            body["MountIP"] = fs_params.mount_ip
        if fs_params.resource_tags:
            body["ResourceTags"] = [{"TagKey": k, "TagValue": v} for k, v in fs_params.resource_tags]
        if request.snapshot_id:
            body["SnapId"] = request.snapshot_id
        managed = not fs_params.pgroup_id
        group_id = fs_params.pgroup_id or self.groups.ensure(client, fs_params.access_rules)
        try:
            return self._send_create(client, {**body, "PGroupId": group_id}, request)
        except CfsNotFound as err:
            if not managed or err.code != PGROUP_NOT_FOUND:
                raise
        # The remembered managed group was deleted meanwhile (its last other volume went, maybe
        # through another controller): ensure it again, once.
        self.groups.forget(group_id)
        group_id = self.groups.ensure(client, fs_params.access_rules)
        return self._send_create(client, {**body, "PGroupId": group_id}, request)

    def _send_create(self, client: CfsClient, body: dict, request: ProvisionRequest) -> dict:
        try:
            reply = client.call("CreateCfsFileSystem", body)
        except CfsNetworkError:
            # The request may have been carried out; the name tells.
            found = self.find_by_name(client, request.fs_name)
            if found is None:
                raise
            return found
        log.info(
            "volume %s: created file system %s (%s, RequestId %s)",
            request.volume_name,
            reply["FileSystemId"],
            request.fs_name,
            reply.get("RequestId"),
        )
        return {
            "FileSystemId": reply["FileSystemId"],
            "LifeCycleState": reply.get("LifeCycleState"),
            "CreateRequestId": reply.get("RequestId"),
        }

    def _wait_available(self, client: CfsClient, info: dict, request: ProvisionRequest) -> dict:
        fs_id = info["FileSystemId"]
        if info.get("LifeCycleState") == STATE_AVAILABLE:
            return info
        timeout = max(0.0, min(self.create_timeout, request.deadline - time.monotonic()))
        try:
            return client.wait_file_system_available(fs_id, timeout=timeout)
        except FileSystemCreateFailed as err:
            # It will never become available: remove it so the retry starts over cleanly.
            self.delete(client, fs_id)
            created = info.get("CreateRequestId")
            raise RpcError(
                grpc.StatusCode.INTERNAL,
                f"file system {fs_id} for volume {request.volume_name} failed: {err}"
                + (f"; CreateCfsFileSystem RequestId {created}" if created else "")
                + "; it was deleted, a retry creates a new one",
            ) from None
        except WaitTimeout:
            raise RpcError(
                grpc.StatusCode.ABORTED,
                f"file system {fs_id} for volume {request.volume_name} is not available after "
                f"{timeout:.3g}s (the wait ends at --create-timeout {self.create_timeout:g}s or "
                "the caller's deadline); retrying the call continues waiting for it",
            ) from None

    # ---- volume context ----------------------------------------------------------------

    @staticmethod
    def volume_context(client: CfsClient, info: dict, fs_params: params.FilesystemParams) -> dict:
        """Mount details for the node. NFSv4 mounts `<ip>:/`, which the FileSystemInfo already
        tells; NFSv3 mounts `<ip>:/<FSID>`, and only DescribeMountTargets knows the FSID."""
        server, fsid = info.get("IpAddress"), ""
        if fs_params.vers == "3" or not server:
            target = mount_target(client, info["FileSystemId"])
            server, fsid = target["IpAddress"], target.get("FSID", "")
        context = {
            "server": server,
            "vers": fs_params.vers,
            "path": "/",
            "fileSystemId": info["FileSystemId"],
        }
        if fsid:
            context["fsid"] = fsid
        if fs_params.mount_options:
            context["mountOptions"] = fs_params.mount_options
        return context

    # ---- delete / expand ---------------------------------------------------------------

    def delete(self, client: CfsClient, fs_id: str) -> None:
        """Delete the file system, then its managed permission group if no one else uses it."""
        info = self.describe(client, fs_id)
        if info is None:
            # Gone already (maybe a retry after a crash mid-delete): its group is unknown,
            # so release every managed group that lost its last file system.
            self.groups.sweep_unused(client)
            return
        self._delete_file_system(client, fs_id)
        group = info.get("PGroup") or {}
        if group.get("PGroupId"):
            self.groups.release(client, group["PGroupId"], group.get("Name", ""))
        log.info("deleted file system %s", fs_id)

    def _delete_file_system(self, client: CfsClient, fs_id: str) -> None:
        """DeleteCfsFileSystem; a snapshot still being cut from it is waited for first (CFS
        refuses the delete until then; finished snapshots never block it)."""
        try:
            client.call("DeleteCfsFileSystem", {"FileSystemId": fs_id})
        except CfsNotFound:
            pass
        except CfsError as err:
            if err.code != SNAPSHOT_IN_PROGRESS:
                raise
            for snapshot in client.iter_snapshots(FileSystemId=fs_id):
                if snapshot.get("Status") == snapshots.SNAPSHOT_CREATING:
                    snapshots.settle(client, snapshot["SnapshotId"], self.create_timeout)
            self._delete_file_system(client, fs_id)

    def release(self, client: CfsClient, fs_id: str) -> None:
        """onDelete=retain: keep the file system but rename it out of the driver's names, so
        it is visibly released and no CreateVolume can ever adopt it again."""
        info = self.describe(client, fs_id)
        if info is None:
            return
        name = info.get("FsName") or info.get("CreationToken") or fs_id
        if not name.startswith(RELEASED_PREFIX):
            new_name = (RELEASED_PREFIX + name)[:MAX_FS_NAME_BYTES]
            client.call("UpdateCfsFileSystemName", {"FileSystemId": fs_id, "FsName": new_name})
        log.info("retained file system %s as released", fs_id)

    @staticmethod
    def expand(client: CfsClient, info: dict, size_gb: int) -> int:
        """Grow the size limit; never shrinks. Returns the resulting capacity in GB.

        A file system without a limit (SizeLimit 0) already holds any size: it stays unlimited
        and the asked size is reported."""
        current = info.get("SizeLimit") or 0
        if not current or current >= size_gb:
            return current or size_gb
        client.call(
            "UpdateCfsFileSystemSizeLimit", {"FileSystemId": info["FileSystemId"], "FsLimit": size_gb}
        )
        return size_gb
