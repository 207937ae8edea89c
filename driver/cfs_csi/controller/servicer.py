"""CSI Controller service: request validation, locking and responses.

Each RPC validates its request first (INVALID_ARGUMENT names the field), takes a try-lock on
the volume name or id (a concurrent call for the same object gets ABORTED at once), then hands
the work to the module that owns it: filesystems.py (one file system per volume), subdir.py
(directories of a shared file system), snapshots.py, pgroups.py (managed permission groups).
Errors become statuses in rpc_errors.py. The controller keeps no state: volume ids carry what
later calls need (volume_id.py).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any

import grpc

from cfs_cloud import CfsClient, CloudConfig
from cfs_cloud.errors import CfsInternalError, CfsNotFound, CfsThrottled
from cfs_csi import contract
from cfs_csi.config import DriverConfig
from cfs_csi.contract import (
    TOPOLOGY_ZONE_KEY,
    FilesystemVolume,
    MalformedVolumeId,
    Share,
    SubdirVolume,
    decode,
)
from cfs_csi.controller import params, snapshots, subdir
from cfs_csi.controller.errors import abort_on_error
from cfs_csi.controller.filesystems import (
    GIB,
    FileSystems,
    ProvisionRequest,
    check_capacity_range,
    check_source_fits,
    mount_target,
    size_limit_gb,
)
from cfs_csi.controller.pgroups import ManagedGroups
from cfs_csi.controller.requests import (
    MUTABLE_PARAMETERS_REFUSED,
    check_capabilities,
    check_read_only_rules,
    check_validation_request,
    page_offset,
    zones_of,
)
from cfs_csi.controller.subdir import MountedShareAccess, ShareAccess
from cfs_csi.csipb import csi_pb2, csi_pb2_grpc
from cfs_csi.locks import KeyLocks
from cfs_csi.node.mount_options import MountOptionError, nfs_mount_options
from cfs_csi.node.mounter import Mounter
from cfs_csi.status import RpcError, invalid

log = logging.getLogger(__name__)

SECRET_ID_KEY = "secretId"
SECRET_KEY_KEY = "secretKey"
PAGE_SIZE = 100
# Well inside the liveness sidecar's --probe-timeout (5 s in the chart).
READINESS_TIMEOUT_SECONDS = 3.0
# The controller waits for file systems and snapshots, which take seconds to create: a first
# look after a quarter second loses nothing, and with ~10 creations a second it keeps the shared
# waiter from listing every file system after each one (benchmarks/provision.py: 3.5 calls per
# volume instead of 4.1).
FIRST_POLL_SECONDS = 0.25

_RPC = csi_pb2.ControllerServiceCapability.RPC
CAPABILITIES = csi_pb2.ControllerGetCapabilitiesResponse(
    capabilities=[
        csi_pb2.ControllerServiceCapability(rpc=_RPC(type=kind))
        for kind in (
            _RPC.CREATE_DELETE_VOLUME,
            _RPC.CREATE_DELETE_SNAPSHOT,
            _RPC.LIST_SNAPSHOTS,
            _RPC.GET_SNAPSHOT,
            _RPC.CLONE_VOLUME,
            _RPC.EXPAND_VOLUME,
            _RPC.LIST_VOLUMES,
            _RPC.GET_VOLUME,
            _RPC.VOLUME_CONDITION,
        )
    ]
)


def volume_condition(info: dict) -> csi_pb2.VolumeCondition:
    state = info.get("LifeCycleState", "unknown")
    return csi_pb2.VolumeCondition(
        abnormal=state != "available", message=f"file system {info['FileSystemId']} is {state}"
    )


def _rpc_deadline(context: grpc.ServicerContext) -> float | None:
    """The caller's deadline as a time.monotonic() value; None when it set none."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _missing(field: str) -> RpcError:
    return invalid(f"{field} missing in request")


class ControllerServicer(csi_pb2_grpc.ControllerServicer):
    def __init__(
        self,
        client: CfsClient,
        share_access: ShareAccess,
        *,
        zone: str = "",
        default_allowed_clients: tuple[str, ...] = (),
        create_timeout: float = 120.0,
    ):
        self.client = client
        self.shares = share_access
        self.zone = zone
        self.default_allowed_clients = ",".join(default_allowed_clients)
        self.create_timeout = create_timeout
        self.locks = KeyLocks()
        self.groups = ManagedGroups()
        self.file_systems = FileSystems(self.groups, create_timeout)

    # ---- helpers -----------------------------------------------------------------------

    def readiness_check(self) -> None:
        """For Probe: one cheap signed call proves endpoint, region and credentials.

        Throttling and internal errors mean the API answered but is busy: the configuration is
        usable, and a not-ready answer would only make the liveness sidecar restart a
        controller in the middle of a provisioning storm."""
        try:
            self.client.call("DescribeCfsServiceStatus", timeout=READINESS_TIMEOUT_SECONDS)
        except (CfsThrottled, CfsInternalError) as err:
            log.warning("readiness check: the CFS API is busy (%s); still ready", err.code)

    def _client(self, context: grpc.ServicerContext, secrets=None) -> CfsClient:
        """The client for one RPC: request secrets (`secretId`/`secretKey`) override the
        process credentials, and no cloud call outlives the caller's deadline (a call the
        sidecar gave up on would otherwise hold the volume's lock for its retry)."""
        client = self.client
        secrets = secrets or {}
        secret_id, secret_key = secrets.get(SECRET_ID_KEY, ""), secrets.get(SECRET_KEY_KEY, "")
        if secret_id or secret_key:
            if not (secret_id and secret_key):
                raise invalid(f"secrets: give both {SECRET_ID_KEY} and {SECRET_KEY_KEY}, or neither")
            client = client.with_credentials(secret_id.strip(), secret_key.strip())
        return client.until(_rpc_deadline(context))

    def _zone(self, fs_params: params.FilesystemParams, requirements) -> tuple[str, frozenset[str] | None]:
        """The zone to create in, and the zones an existing file system may be in.

        CSI: the volume MUST be accessible from one of the requisite topologies, and the SP
        tries the preferred ones first; without requisite topologies any zone will do."""
        requisite = zones_of(requirements.requisite)
        if fs_params.zone:
            if requisite and fs_params.zone not in requisite:
                raise invalid(
                    f"parameter {params.ZONE}={fs_params.zone} is outside the topology "
                    f"requirement (requisite {TOPOLOGY_ZONE_KEY}: {', '.join(requisite)})"
                )
            return fs_params.zone, frozenset({fs_params.zone})
        accepted = frozenset(requisite) if requisite else None
        candidates = [*zones_of(requirements.preferred), *requisite, self.zone]
        zone = next((z for z in candidates if z and (accepted is None or z in accepted)), "")
        if not zone:
            raise invalid(
                f"no zone: set the StorageClass parameter {params.ZONE}, a topology "
                f"requirement on {TOPOLOGY_ZONE_KEY}, or the driver's --zone"
            )
        return zone, accepted

    def _decode_existing(self, volume_id: str) -> FilesystemVolume | SubdirVolume:
        try:
            return decode(volume_id)
        except MalformedVolumeId as err:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"volume {volume_id} not found: {err}") from None

    def _file_system(self, client: CfsClient, volume: FilesystemVolume) -> dict:
        info = self.file_systems.describe(client, volume.file_system_id)
        if info is None:
            raise RpcError(
                grpc.StatusCode.NOT_FOUND,
                f"volume {volume.encode()}: file system {volume.file_system_id} does not exist",
            )
        return info

    # ---- capabilities ------------------------------------------------------------------

    def ControllerGetCapabilities(self, request, context):
        return CAPABILITIES

    # ---- CreateVolume ------------------------------------------------------------------

    def CreateVolume(self, request, context):
        with abort_on_error(context):
            if not request.name:
                raise _missing("name")
            if request.mutable_parameters:
                raise invalid(MUTABLE_PARAMETERS_REFUSED)
            mode = params.provisioning_mode(request.parameters)
            client = self._client(context, request.secrets)
            with self.locks.hold_or_abort(context, request.name):
                if mode == params.MODE_SUBDIR:
                    volume = self._create_subdir(client, request)
                else:
                    volume = self._create_filesystem(client, request, context)
            return csi_pb2.CreateVolumeResponse(volume=volume)

    def _create_filesystem(self, client: CfsClient, request, context) -> csi_pb2.Volume:
        fs_params = params.parse_filesystem(request.parameters, self.default_allowed_clients)
        check_capabilities(request.volume_capabilities, fs_params.vers)
        check_read_only_rules(request.volume_capabilities, fs_params)
        nfs_mount_options(fs_params.vers, [fs_params.mount_options])
        size_gb = size_limit_gb(request.capacity_range.required_bytes, request.capacity_range.limit_bytes)
        zone, accepted_zones = self._zone(fs_params, request.accessibility_requirements)
        # --create-timeout bounds the waits, and so does the provisioner's own deadline.
        deadline = min(time.monotonic() + self.create_timeout, _rpc_deadline(context) or math.inf)
        provision = ProvisionRequest(
            request.name,
            fs_params,
            zone,
            size_gb,
            request.capacity_range.limit_bytes,
            accepted_zones,
            deadline=deadline,
        )
        source = request.volume_content_source
        if source.HasField("snapshot"):
            provision = self._from_snapshot(client, provision, source.snapshot.snapshot_id)
        elif source.HasField("volume"):
            source_info = self._clone_source(client, source.volume.volume_id)
            clone_of = source_info["FileSystemId"]
            provision = dataclasses.replace(provision, clone_of=clone_of)
            if self.file_systems.find_by_name(client, provision.fs_name) is None:
                # Only a new clone is measured: the source may grow after the clone was made.
                check_source_fits(
                    size_gb, int(source_info.get("SizeByte") or 0), f"source volume fs:{clone_of}"
                )
                snapshot_id = snapshots.temporary_for_clone(
                    client, request.name, clone_of, max(0.0, deadline - time.monotonic())
                )
                provision = dataclasses.replace(provision, snapshot_id=snapshot_id)
        info = self.file_systems.provision(client, provision)
        if provision.clone_of:
            snapshots.drop_clone_snapshot(client, request.name)
        limit_gb = info.get("SizeLimit") or size_gb
        return csi_pb2.Volume(
            volume_id=FilesystemVolume(info["FileSystemId"], fs_params.on_delete).encode(),
            capacity_bytes=limit_gb * GIB,
            volume_context=self.file_systems.volume_context(client, info, fs_params),
            content_source=source if source.ListFields() else None,
            # Where the file system really is (a retry may find it in another accepted zone).
            accessible_topology=[csi_pb2.Topology(segments={TOPOLOGY_ZONE_KEY: info.get("Zone") or zone})],
        )

    @staticmethod
    def _from_snapshot(client: CfsClient, provision: ProvisionRequest, snapshot_id: str) -> ProvisionRequest:
        if not snapshot_id:
            raise _missing("volume_content_source.snapshot.snapshot_id")
        info = snapshots.describe(client, snapshot_id) if snapshots.is_snapshot_id(snapshot_id) else None
        if info is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"source snapshot {snapshot_id} not found")
        status = info.get("Status")
        if status in snapshots.SNAPSHOT_FAILED:
            raise invalid(
                f"volume_content_source: snapshot {snapshot_id} is {status} and can "
                "never seed a volume; use another source"
            )
        if status != snapshots.SNAPSHOT_AVAILABLE:
            # It becomes usable by itself: a retryable code, and nothing is created meanwhile.
            raise RpcError(
                grpc.StatusCode.ABORTED,
                f"source snapshot {snapshot_id} is not ready to use yet ({status}); "
                "retry once it is available",
            )
        check_source_fits(
            provision.size_gb, int(info.get("Size") or 0) * snapshots.MIB, f"source snapshot {snapshot_id}"
        )
        return dataclasses.replace(provision, snapshot_id=snapshot_id)

    def _clone_source(self, client: CfsClient, volume_id: str) -> dict:
        """The FileSystemInfo of a clone's source volume."""
        if not volume_id:
            raise _missing("volume_content_source.volume.volume_id")
        volume = self._decode_existing(volume_id)
        if isinstance(volume, SubdirVolume):
            raise invalid(
                f"volume_content_source.volume: {volume_id} is a subdir volume; only "
                "filesystem-mode volumes can be cloned (CFS snapshots whole file systems)"
            )
        return self._file_system(client, volume)

    def _create_subdir(self, client: CfsClient, request) -> csi_pb2.Volume:
        sub = params.parse_subdir(request.parameters)
        check_capabilities(request.volume_capabilities, sub.vers)
        nfs_mount_options(sub.vers, [sub.mount_options])
        if request.volume_content_source.ListFields():
            raise invalid(
                "volume_content_source: subdir volumes cannot be created from a snapshot or another volume"
            )
        capacity = request.capacity_range
        check_capacity_range(capacity.required_bytes, capacity.limit_bytes)
        capacity_bytes = capacity.required_bytes or capacity.limit_bytes
        path = params.render_subdir(sub.subdir_template, request.parameters, request.name)
        share = Share(sub.file_system_id, sub.server, sub.fsid)
        volume_id = SubdirVolume(share, path, sub.on_delete).encode()
        context: dict[str, Any] = {"vers": sub.vers, "path": path}
        if sub.file_system_id:
            target = mount_target(client, sub.file_system_id)
            context.update(
                server=target["IpAddress"], fsid=target.get("FSID", ""), fileSystemId=sub.file_system_id
            )
        else:
            context.update(server=sub.server, fsid=sub.fsid)
        if sub.mount_options:
            context["mountOptions"] = sub.mount_options
        with self.shares.open(share) as root:
            subdir.create_directory(root, path, sub, capacity_bytes)
        log.info("volume %s: directory %s on share %s", request.name, path, share)
        return csi_pb2.Volume(volume_id=volume_id, capacity_bytes=capacity_bytes, volume_context=context)

    # ---- DeleteVolume ------------------------------------------------------------------

    def DeleteVolume(self, request, context):
        with abort_on_error(context):
            if not request.volume_id:
                raise _missing("volume_id")
            try:
                volume = decode(request.volume_id)
            except MalformedVolumeId as err:
                log.info("DeleteVolume: %s; nothing of ours to delete", err)
                return csi_pb2.DeleteVolumeResponse()
            client = self._client(context, request.secrets)
            with self.locks.hold_or_abort(context, request.volume_id):
                if isinstance(volume, SubdirVolume):
                    self._delete_subdir(volume)
                elif volume.on_delete == contract.ON_DELETE_RETAIN:
                    self.file_systems.release(client, volume.file_system_id)
                else:
                    self.file_systems.delete(client, volume.file_system_id)
            return csi_pb2.DeleteVolumeResponse()

    def _delete_subdir(self, volume: SubdirVolume) -> None:
        try:
            with self.shares.open(volume.share) as root:
                subdir.delete_directory(root, volume.path, volume.on_delete)
        except CfsNotFound as err:
            # The shared file system itself is gone, and with it the directory.
            log.info("DeleteVolume %s: share is gone (%s)", volume.encode(), err)

    # ---- expand / get / validate / list -------------------------------------------------

    def ControllerExpandVolume(self, request, context):
        with abort_on_error(context):
            if not request.volume_id:
                raise _missing("volume_id")
            required, limit = request.capacity_range.required_bytes, request.capacity_range.limit_bytes
            if not (required or limit):
                # CSI CapacityRange: at least one of the two MUST be specified.
                raise _missing("capacity_range (required_bytes or limit_bytes)")
            if request.HasField("volume_capability"):
                check_capabilities([request.volume_capability])
            size_gb = size_limit_gb(required, limit)
            client = self._client(context, request.secrets)
            volume = self._decode_existing(request.volume_id)
            with self.locks.hold_or_abort(context, request.volume_id):
                if isinstance(volume, SubdirVolume):
                    # CFS has no directory quotas: record the size so it is reported, enforce
                    # nothing; like a file system, the recorded size never shrinks.
                    with self.shares.open(volume.share) as root:
                        capacity = max(required or limit, subdir.recorded_capacity(root, volume.path))
                        subdir.record_capacity(root, volume.path, capacity)
                else:
                    info = self._file_system(client, volume)
                    capacity = self.file_systems.expand(client, info, size_gb) * GIB
            return csi_pb2.ControllerExpandVolumeResponse(
                capacity_bytes=capacity, node_expansion_required=False
            )

    def ControllerGetVolume(self, request, context):
        with abort_on_error(context):
            if not request.volume_id:
                raise _missing("volume_id")
            volume = self._decode_existing(request.volume_id)
            if isinstance(volume, SubdirVolume):
                with self.shares.open(volume.share) as root:
                    capacity = subdir.recorded_capacity(root, volume.path)
                found = csi_pb2.Volume(volume_id=request.volume_id, capacity_bytes=capacity)
                condition = csi_pb2.VolumeCondition(abnormal=False, message="directory exists")
            else:
                info = self._file_system(self._client(context), volume)
                found, condition = self._volume_of(info, request.volume_id), volume_condition(info)
            return csi_pb2.ControllerGetVolumeResponse(
                volume=found,
                status=csi_pb2.ControllerGetVolumeResponse.VolumeStatus(volume_condition=condition),
            )

    @staticmethod
    def _volume_of(info: dict, volume_id: str | None = None) -> csi_pb2.Volume:
        topology = [csi_pb2.Topology(segments={TOPOLOGY_ZONE_KEY: info["Zone"]})] if info.get("Zone") else []
        return csi_pb2.Volume(
            volume_id=volume_id or FilesystemVolume(info["FileSystemId"]).encode(),
            capacity_bytes=(info.get("SizeLimit") or 0) * GIB,
            accessible_topology=topology,
        )

    def ValidateVolumeCapabilities(self, request, context):
        with abort_on_error(context):
            if not request.volume_id:
                raise _missing("volume_id")
            if not request.volume_capabilities:
                raise _missing("volume_capabilities")
            client = self._client(context, request.secrets)
            volume = self._decode_existing(request.volume_id)
            if isinstance(volume, SubdirVolume):
                with self.shares.open(volume.share) as root:
                    subdir.require_directory(root, volume.path)
            else:
                self._file_system(client, volume)
            try:
                check_validation_request(volume, request, self.default_allowed_clients)
            except (RpcError, contract.ParameterError, MountOptionError) as err:
                return csi_pb2.ValidateVolumeCapabilitiesResponse(message=str(err))
            # Confirmed echoes only what was checked above: capabilities, parameters, context.
            return csi_pb2.ValidateVolumeCapabilitiesResponse(
                confirmed=csi_pb2.ValidateVolumeCapabilitiesResponse.Confirmed(
                    volume_context=request.volume_context,
                    volume_capabilities=request.volume_capabilities,
                    parameters=request.parameters,
                )
            )

    def _page(
        self, client: CfsClient, action: str, items_key: str, filters: dict, token: str, max_entries: int
    ) -> tuple[list[dict], str]:
        """One page of a Describe* listing; the token is the next offset."""
        if max_entries < 0:
            raise invalid(f"max_entries {max_entries} must not be negative")
        offset = page_offset(token)
        limit = min(max_entries or PAGE_SIZE, PAGE_SIZE)
        reply = client.call(action, {**filters, "Offset": offset, "Limit": limit})
        items = reply.get(items_key) or []
        total = reply.get("TotalCount", offset + len(items))
        if offset and offset > total:
            raise RpcError(
                grpc.StatusCode.ABORTED, f"starting_token {token!r} is past the end ({total} entries)"
            )
        following = offset + len(items)
        return items, str(following) if items and following < total else ""

    def ListVolumes(self, request, context):
        with abort_on_error(context):
            items, next_token = self._page(
                self._client(context),
                "DescribeCfsFileSystems",
                "FileSystems",
                {},
                request.starting_token,
                request.max_entries,
            )
            entries = [
                csi_pb2.ListVolumesResponse.Entry(
                    volume=self._volume_of(info),
                    status=csi_pb2.ListVolumesResponse.VolumeStatus(volume_condition=volume_condition(info)),
                )
                for info in items
            ]
            return csi_pb2.ListVolumesResponse(entries=entries, next_token=next_token)

    # ---- snapshots ---------------------------------------------------------------------

    def CreateSnapshot(self, request, context):
        with abort_on_error(context):
            if not request.source_volume_id:
                raise _missing("source_volume_id")
            if not request.name:
                raise _missing("name")
            unknown = sorted(k for k in request.parameters if not k.startswith(params.SIDECAR_PREFIX))
            if unknown:
                raise invalid(
                    f"unknown snapshot parameter {unknown[0]!r}; allowed parameters: none "
                    f"(only {params.SIDECAR_PREFIX}* keys are accepted and ignored)"
                )
            client = self._client(context, request.secrets)
            volume = self._decode_existing(request.source_volume_id)
            if isinstance(volume, SubdirVolume):
                raise invalid(
                    f"source_volume_id {request.source_volume_id} is a subdir volume; "
                    "CFS snapshots whole file systems, so only filesystem-mode "
                    "volumes can be snapshotted"
                )
            with self.locks.hold_or_abort(context, request.name):
                self._file_system(client, volume)
                info = snapshots.create(client, snapshots.snapshot_name(request.name), volume)
            snapshot = snapshots.to_csi(info)
            snapshot.source_volume_id = request.source_volume_id
            return csi_pb2.CreateSnapshotResponse(snapshot=snapshot)

    def DeleteSnapshot(self, request, context):
        with abort_on_error(context):
            if not request.snapshot_id:
                raise _missing("snapshot_id")
            if not snapshots.is_snapshot_id(request.snapshot_id):
                return csi_pb2.DeleteSnapshotResponse()
            client = self._client(context, request.secrets)
            with self.locks.hold_or_abort(context, request.snapshot_id):
                snapshots.delete(client, request.snapshot_id, self.file_systems.create_timeout)
            return csi_pb2.DeleteSnapshotResponse()

    def ListSnapshots(self, request, context):
        with abort_on_error(context):
            client = self._client(context, request.secrets)
            filters = {}
            if request.snapshot_id:
                if not snapshots.is_snapshot_id(request.snapshot_id):
                    return csi_pb2.ListSnapshotsResponse()
                filters["SnapshotId"] = request.snapshot_id
            if request.source_volume_id:
                try:
                    volume = decode(request.source_volume_id)
                except MalformedVolumeId:
                    return csi_pb2.ListSnapshotsResponse()
                if isinstance(volume, SubdirVolume):
                    return csi_pb2.ListSnapshotsResponse()
                filters["FileSystemId"] = volume.file_system_id
            try:
                items, next_token = self._page(
                    client,
                    "DescribeCfsSnapshots",
                    "Snapshots",
                    filters,
                    request.starting_token,
                    request.max_entries,
                )
            except CfsNotFound:
                return csi_pb2.ListSnapshotsResponse()
            return csi_pb2.ListSnapshotsResponse(
                entries=[
                    csi_pb2.ListSnapshotsResponse.Entry(snapshot=snapshots.to_csi(info))
                    for info in items
                    if _matches(info, filters)
                ],
                next_token=next_token,
            )

    def GetSnapshot(self, request, context):
        with abort_on_error(context):
            if not request.snapshot_id:
                raise _missing("snapshot_id")
            client = self._client(context, request.secrets)
            info = (
                snapshots.describe(client, request.snapshot_id)
                if snapshots.is_snapshot_id(request.snapshot_id)
                else None
            )
            if info is None:
                raise RpcError(grpc.StatusCode.NOT_FOUND, f"snapshot {request.snapshot_id} not found")
            return csi_pb2.GetSnapshotResponse(snapshot=snapshots.to_csi(info))


def _matches(info: dict, filters: dict) -> bool:
    """Filters are applied again locally in case the API ignores one of them."""
    return all(info.get(key) == value for key, value in filters.items())


def build_controller(
    config: DriverConfig, *, client: CfsClient | None = None, share_access: ShareAccess | None = None
) -> ControllerServicer:
    """The controller for main.py; tests may pass their own client or share access."""
    client = client or CfsClient(CloudConfig.from_env(poll_min_interval=FIRST_POLL_SECONDS))
    if share_access is None:
        share_access = MountedShareAccess(
            Mounter(config.mount_timeout),
            config.subdir_mount_root,
            locate=lambda share: locate_share(client, share),
        )
    return ControllerServicer(
        client,
        share_access,
        zone=config.zone,
        default_allowed_clients=config.default_allowed_clients,
        create_timeout=config.create_timeout,
    )


def locate_share(client: CfsClient, share: Share) -> tuple[str, str, str]:
    """(server, export path, NFS version) the controller mounts a share with: NFSv4 at `/`."""
    if share.file_system_id is None:
        return str(share.server), "/", "4"
    return mount_target(client, share.file_system_id)["IpAddress"], "/", "4"
