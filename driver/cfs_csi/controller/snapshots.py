"""CFS snapshots behind CreateSnapshot / DeleteSnapshot / ListSnapshots / GetSnapshot and clones.

The CSI snapshot id is the CFS SnapshotId. CreateSnapshot is idempotent by name: the CFS
snapshot name is derived from the CSI name and looked up before creating. A clone is a
temporary snapshot of the source (named after the new volume, so a retried clone finds it),
a restore from it, and the deletion of the temporary snapshot once the clone is available.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from cfs_cloud import CfsClient
from cfs_cloud.errors import CallTimeout, CfsInvalidParameter, CfsNotFound, SnapshotCreateFailed, WaitTimeout
from cfs_csi import contract
from cfs_csi.contract import FilesystemVolume
from cfs_csi.controller import params
from cfs_csi.csipb import csi_pb2
from cfs_csi.status import RpcError

log = logging.getLogger(__name__)

SNAPSHOT_AVAILABLE = "available"
SNAPSHOT_CREATING = "creating"
# DeleteCfsSnapshot's answer for a snapshot that is still being created.
SNAPSHOT_BEING_CREATED = "InvalidParameterValue.InvalidSnapStatus"
# SnapshotInfo.Status of a snapshot that will never become available (the file-system spelling
# too, as cfs_cloud's waiter accepts it). Other states (creating, deleting, ...) are transient.
SNAPSHOT_FAILED = frozenset({"create-failed", "create_failed", "failed"})
# The source volume's delete policy is not in the FileSystemInfo, so a snapshot remembers it in
# a tag: ListSnapshots / GetSnapshot then report the exact source_volume_id CreateSnapshot did.
ON_DELETE_TAG = "cfs-csi.onDelete"
SNAPSHOT_ID_RE = re.compile(r"^cfssnap-[a-z0-9]+$")
MAX_SNAPSHOT_NAME = 64
SNAPSHOT_PREFIX = "cfs-csi-"
CLONE_PREFIX = "cfs-csi-clone-"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MIB = 1 << 20


def snapshot_name(csi_name: str, prefix: str = SNAPSHOT_PREFIX) -> str:
    plain = prefix + csi_name
    if params.NAME_PART_RE.match(csi_name) and len(plain) <= MAX_SNAPSHOT_NAME:
        return plain
    return prefix + "h" + hashlib.sha256(csi_name.encode()).hexdigest()[:40]


def is_snapshot_id(snapshot_id: str) -> bool:
    return bool(SNAPSHOT_ID_RE.match(snapshot_id))


def _timestamp(text: str | None) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    if text:
        try:
            moment = datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        stamp.FromDatetime(moment)
    return stamp


def _source_on_delete(info: dict) -> str:
    tags = {tag.get("TagKey"): tag.get("TagValue") for tag in info.get("Tags") or []}
    policy = tags.get(ON_DELETE_TAG)
    return policy if policy in contract.FILESYSTEM_ON_DELETE else contract.ON_DELETE_DELETE


def to_csi(info: dict) -> csi_pb2.Snapshot:
    return csi_pb2.Snapshot(
        snapshot_id=info["SnapshotId"],
        source_volume_id=FilesystemVolume(info["FileSystemId"], _source_on_delete(info)).encode(),
        size_bytes=int(info.get("Size") or 0) * MIB,  # SnapshotInfo.Size is in MiB
        creation_time=_timestamp(info.get("CreationTime")),
        ready_to_use=info.get("Status") == SNAPSHOT_AVAILABLE,
    )


def describe(client: CfsClient, snapshot_id: str) -> dict | None:
    return client.find_item(
        "DescribeCfsSnapshots", "Snapshots", "SnapshotId", snapshot_id, SnapshotId=snapshot_id
    )


def create(client: CfsClient, name: str, source: FilesystemVolume) -> dict:
    """The snapshot called `name` of the source volume, created when missing (not awaited).

    A snapshot of that name that failed is deleted and reported as an error (CSI: an error
    during processing is an error, not a snapshot that never becomes ready); the next call
    starts a new one."""
    file_system_id = source.file_system_id
    found = client.find_snapshot_by_name(name)
    if found is not None:
        if found.get("FileSystemId") != file_system_id:
            raise RpcError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"snapshot {name} exists as {found['SnapshotId']} of another volume "
                f"(fs:{found.get('FileSystemId')})",
            )
        if found.get("Status") in SNAPSHOT_FAILED:
            delete(client, found["SnapshotId"])
            raise RpcError(
                grpc.StatusCode.INTERNAL,
                f"snapshot {found['SnapshotId']} ({name}) of fs:{file_system_id} is "
                f"{found.get('Status')}; it was deleted, a retry takes a new one",
            )
        return found
    body: dict[str, Any] = {"FileSystemId": file_system_id, "SnapshotName": name}
    if source.on_delete != contract.ON_DELETE_DELETE:
        body["ResourceTags"] = [{"TagKey": ON_DELETE_TAG, "TagValue": source.on_delete}]
    reply = client.call("CreateCfsSnapshot", body)
    log.info("created snapshot %s (%s) of %s", reply["SnapshotId"], name, file_system_id)
    return describe(client, reply["SnapshotId"]) or {
        "SnapshotId": reply["SnapshotId"],
        "FileSystemId": file_system_id,
        "SnapshotName": name,
    }


def settle(client: CfsClient, snapshot_id: str, timeout: float) -> None:
    """Wait until a snapshot is no longer being created (available, failed or gone): CFS refuses
    to delete it, or the file system it is cut from, until then. ABORTED when the wait (bounded
    by `timeout` and the caller's deadline) ends first: the caller's retry continues it."""
    try:
        client.wait_snapshot_available(snapshot_id, timeout=timeout)
    except (SnapshotCreateFailed, CfsNotFound):
        pass  # deletable now, or already gone
    except (WaitTimeout, CallTimeout):
        raise RpcError(
            grpc.StatusCode.ABORTED,
            f"snapshot {snapshot_id} is still being created; it can be deleted once it is "
            "available (the caller's retry waits again)",
        ) from None


def delete(client: CfsClient, snapshot_id: str, timeout: float = 0.0) -> None:
    """Delete a snapshot; one still being created is first waited for up to `timeout` (see
    `settle`; 0 for snapshots known to be finished, such as failed ones)."""
    try:
        client.call("DeleteCfsSnapshot", {"SnapshotId": snapshot_id})
    except CfsNotFound:
        pass
    except CfsInvalidParameter as err:
        if err.code != SNAPSHOT_BEING_CREATED:
            raise
        settle(client, snapshot_id, timeout)
        delete(client, snapshot_id, timeout)


def temporary_for_clone(client: CfsClient, volume_name: str, source_fs_id: str, timeout: float) -> str:
    """An available snapshot of the source to restore a clone from; reused by retries."""
    info = create(client, snapshot_name(volume_name, CLONE_PREFIX), FilesystemVolume(source_fs_id))
    if info.get("Status") == SNAPSHOT_AVAILABLE:
        return info["SnapshotId"]
    try:
        return client.wait_snapshot_available(info["SnapshotId"], timeout=timeout)["SnapshotId"]
    except SnapshotCreateFailed as err:
        delete(client, info["SnapshotId"])
        raise RpcError(
            grpc.StatusCode.INTERNAL, f"clone of fs:{source_fs_id}: temporary snapshot failed: {err}"
        ) from None
    except WaitTimeout:
        raise RpcError(
            grpc.StatusCode.ABORTED,
            f"clone of fs:{source_fs_id}: temporary snapshot "
            f"{info['SnapshotId']} not ready after {timeout:g}s; retry continues",
        ) from None


def drop_clone_snapshot(client: CfsClient, volume_name: str) -> None:
    found = client.find_snapshot_by_name(snapshot_name(volume_name, CLONE_PREFIX))
    if found is not None:
        delete(client, found["SnapshotId"])
