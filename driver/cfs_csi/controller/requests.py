"""What the Controller service checks in a request before it acts: volume capabilities (NFS is
mount-only, any access mode), read-only permission groups against writer modes, the volume
context and parameters ValidateVolumeCapabilities confirms, topology zones, and page tokens.
Each check raises `RpcError` with the status the CSI spec asks for and names the field.
"""

from __future__ import annotations

import grpc

from cfs_csi import contract
from cfs_csi.contract import TOPOLOGY_ZONE_KEY, FilesystemVolume, SubdirVolume
from cfs_csi.controller import params
from cfs_csi.csipb import csi_pb2
from cfs_csi.node.mount_options import NFS_FS_TYPES, nfs_mount_options
from cfs_csi.status import RpcError, invalid

_AccessMode = csi_pb2.VolumeCapability.AccessMode
_UNKNOWN_MODE = _AccessMode.UNKNOWN
READER_ONLY_MODES = (_AccessMode.SINGLE_NODE_READER_ONLY, _AccessMode.MULTI_NODE_READER_ONLY)
# CSI: mutable_parameters "SHALL NOT be specified unless the SP has the MODIFY_VOLUME capability".
MUTABLE_PARAMETERS_REFUSED = (
    "mutable_parameters are not supported: the driver has no MODIFY_VOLUME capability (the CFS "
    "API cannot change a file system's storage type or bandwidth); use parameters"
)


def check_capabilities(capabilities, vers: str = "4") -> None:
    """Mount access in any mode (NFS is RWX); block is impossible on a file share."""
    if not capabilities:
        raise invalid("volume_capabilities missing in request")
    for index, capability in enumerate(capabilities):
        field = f"volume_capabilities[{index}]"
        if capability.HasField("block"):
            raise invalid(
                f"{field}: block access is not supported (CFS volumes are NFS file "
                "systems); use access_type mount"
            )
        if not capability.HasField("mount"):
            raise invalid(f"{field}: access_type missing (allowed: mount)")
        if capability.access_mode.mode == _UNKNOWN_MODE:
            raise invalid(f"{field}: access_mode missing or UNKNOWN")
        if capability.mount.fs_type not in NFS_FS_TYPES:
            raise invalid(
                f"{field}: fs_type {capability.mount.fs_type!r} is not supported (allowed: empty, nfs, nfs4)"
            )
        nfs_mount_options(vers, capability.mount.mount_flags)


def check_read_only_rules(capabilities, fs_params: params.FilesystemParams) -> None:
    """A managed group whose rules are all read-only cannot serve a writer access mode (CSI: the
    volume MUST satisfy every requested capability)."""
    rules = fs_params.access_rules
    if not rules or any(rule.rw_permission != params.READ_ONLY for rule in rules):
        return
    for capability in capabilities:
        if capability.access_mode.mode not in READER_ONLY_MODES:
            mode = _AccessMode.Mode.Name(capability.access_mode.mode)
            allowed = ", ".join(_AccessMode.Mode.Name(m) for m in READER_ONLY_MODES)
            raise invalid(
                f"parameter {params.RW_PERMISSION}={params.READ_ONLY} cannot serve "
                f"access mode {mode}; allowed with {params.READ_ONLY}: {allowed}"
            )


def page_offset(token: str) -> int:
    """Pagination tokens are decimal offsets; anything else was not issued by us."""
    if not token:
        return 0
    if not token.isdigit():
        raise RpcError(grpc.StatusCode.ABORTED, f"starting_token {token!r} is not valid")
    return int(token)


def check_validation_request(
    volume: FilesystemVolume | SubdirVolume, request, default_allowed_clients: str
) -> None:
    """Everything ValidateVolumeCapabilities would confirm: the parameters parse for the
    volume's mode, the context belongs to the volume, and the capabilities are supported."""
    if request.mutable_parameters:
        raise invalid(MUTABLE_PARAMETERS_REFUSED)
    subdir_volume = isinstance(volume, SubdirVolume)
    if request.parameters:
        mode = params.provisioning_mode(request.parameters)
        if (mode == params.MODE_SUBDIR) != subdir_volume:
            raise invalid(
                f"parameters: {params.PROVISIONING_MODE}={mode} does not match volume {volume.encode()}"
            )
        if subdir_volume:
            params.parse_subdir(request.parameters)
        else:
            check_read_only_rules(
                request.volume_capabilities,
                params.parse_filesystem(request.parameters, default_allowed_clients),
            )
    context = request.volume_context
    # The context key that names the volume's own directory or file system.
    if isinstance(volume, SubdirVolume):
        key, own = contract.PATH, volume.path
    else:
        key, own = contract.FILE_SYSTEM_ID, volume.file_system_id
    if context.get(key, own) != own:
        raise invalid(f"volume_context: {key}={context[key]!r} does not belong to volume {volume.encode()}")
    vers = context.get(contract.VERS, "4")
    check_capabilities(request.volume_capabilities, vers if vers in contract.NFS_VERSIONS else "4")


def zones_of(topologies) -> list[str]:
    """The zone segments of a list of CSI topologies, in order, without repeats."""
    return list(
        dict.fromkeys(t.segments[TOPOLOGY_ZONE_KEY] for t in topologies if t.segments.get(TOPOLOGY_ZONE_KEY))
    )
