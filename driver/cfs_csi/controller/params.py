"""StorageClass parameters of CreateVolume: names, allowed values and strict parsing.

Every key the driver understands is a named constant here; anything else is rejected with
INVALID_ARGUMENT naming the key and listing the allowed ones. Keys under `csi.storage.k8s.io/`
belong to the sidecars and are ignored (the provisioner's extra-metadata keys are read for
subdir name templates). `docs/controller.md` is the user-facing reference for this module.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from cfs_cloud.rules import RW_PERMISSIONS, USER_PERMISSIONS, normalize_client
from cfs_csi.contract import (
    FILE_SYSTEM_ID,
    FILE_SYSTEM_ID_RE,
    FILESYSTEM_ON_DELETE,
    FSID,
    FSID_RE,
    MOUNT_OPTIONS,
    NFS_VERSIONS,
    ON_DELETE_DELETE,
    SERVER,
    SUBDIR_ON_DELETE,
    VERS,
    ParameterError,
    validate_relative_path,
    validate_server,
)

# --- keys ---------------------------------------------------------------------------------
PROVISIONING_MODE = "provisioningMode"
ZONE = "zone"
VPC_ID = "vpcId"
SUBNET_ID = "subnetId"
STORAGE_TYPE = "storageType"
PGROUP_ID = "pGroupId"
ALLOWED_CLIENTS = "allowedClients"
RW_PERMISSION = "rwPermission"
USER_PERMISSION = "userPermission"
MOUNT_IP = "mountIP"
RESOURCE_TAGS = "resourceTags"
FS_NAME_PREFIX = "fsNamePrefix"
ON_DELETE = "onDelete"
# subdir mode
SUB_DIR = "subDir"
MOUNT_PERMISSIONS = "mountPermissions"
UID = "uid"
GID = "gid"

SIDECAR_PREFIX = "csi.storage.k8s.io/"
PVC_NAME_KEY = "csi.storage.k8s.io/pvc/name"
PVC_NAMESPACE_KEY = "csi.storage.k8s.io/pvc/namespace"
PV_NAME_KEY = "csi.storage.k8s.io/pv/name"

# --- values -------------------------------------------------------------------------------
MODE_FILESYSTEM = "filesystem"
MODE_SUBDIR = "subdir"
STORAGE_TYPES = ("SD", "HP")
READ_ONLY, READ_WRITE = RW_PERMISSIONS

COMMON_KEYS = (PROVISIONING_MODE, VERS, ON_DELETE, MOUNT_OPTIONS)
FILESYSTEM_KEYS = COMMON_KEYS + (
    ZONE,
    VPC_ID,
    SUBNET_ID,
    STORAGE_TYPE,
    PGROUP_ID,
    ALLOWED_CLIENTS,
    RW_PERMISSION,
    USER_PERMISSION,
    MOUNT_IP,
    RESOURCE_TAGS,
    FS_NAME_PREFIX,
)
SUBDIR_KEYS = COMMON_KEYS + (FILE_SYSTEM_ID, SERVER, FSID, SUB_DIR, MOUNT_PERMISSIONS, UID, GID)

DEFAULT_SUBDIR_TEMPLATE = "${pv.metadata.name}"
TEMPLATE_VARIABLES = {
    "${pvc.metadata.namespace}": PVC_NAMESPACE_KEY,
    "${pvc.metadata.name}": PVC_NAME_KEY,
    "${pv.metadata.name}": PV_NAME_KEY,
}
DEFAULT_MOUNT_PERMISSIONS = 0o777
# The docs allow 64 bytes for FsName; the prefix leaves room for the CSI name or its hash.
MAX_FS_NAME_PREFIX = 20
# Our own charset for generated names: a safe subset of every CFS name rule.
NAME_PART_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
TAG_RE = re.compile(r"^[^:,]+:[^:,]*$")


@dataclass(frozen=True)
class AccessRule:
    """One permission-group rule; the managed group's name is a hash of these."""

    client: str
    rw_permission: str
    user_permission: str


@dataclass(frozen=True)
class FilesystemParams:
    zone: str | None
    vpc_id: str | None
    subnet_id: str | None
    storage_type: str
    pgroup_id: str | None
    access_rules: tuple[AccessRule, ...]
    mount_ip: str | None
    resource_tags: tuple[tuple[str, str], ...]
    vers: str
    fs_name_prefix: str
    on_delete: str
    mount_options: str


@dataclass(frozen=True)
class SubdirParams:
    file_system_id: str | None
    server: str | None
    fsid: str | None
    subdir_template: str
    mount_permissions: int
    uid: int | None
    gid: int | None
    vers: str
    on_delete: str
    mount_options: str


def _choice(params: dict, key: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(key, default)
    if value not in allowed:
        raise ParameterError(f"parameter {key}={value!r} is invalid; allowed values: {', '.join(allowed)}")
    return value


def _optional(params: dict, key: str) -> str | None:
    value = params.get(key, "").strip()
    return value or None


def _parse_clients(value: str) -> tuple[str, ...]:
    clients = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            clients.append(normalize_client(item, strict=False))
        except ValueError:
            raise ParameterError(
                f"parameter {ALLOWED_CLIENTS}: {item!r} is not an IPv4 address or CIDR "
                "(allowed: comma-separated IPv4 addresses, IPv4 CIDRs or *)"
            ) from None
    return tuple(clients)


def _parse_tags(value: str) -> tuple[tuple[str, str], ...]:
    tags = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if not TAG_RE.match(item) or not item.split(":", 1)[0].strip():
            raise ParameterError(
                f"parameter {RESOURCE_TAGS}: {item!r} is not key:value "
                "(allowed: comma-separated key:value pairs with a non-empty key)"
            )
        key, tag_value = item.split(":", 1)
        tags.append((key.strip(), tag_value.strip()))
    return tuple(tags)


def _parse_id(params: dict, key: str) -> int | None:
    value = _optional(params, key)
    if value is None:
        return None
    if not value.isdigit():
        raise ParameterError(f"parameter {key}={value!r} is invalid; allowed: a non-negative integer")
    return int(value)


def _check_keys(params: dict, allowed: tuple[str, ...], mode: str) -> None:
    for key in sorted(params):
        if key.startswith(SIDECAR_PREFIX) or key in allowed:
            continue
        raise ParameterError(
            f"unknown parameter {key!r} for {PROVISIONING_MODE}={mode}; "
            f"allowed parameters: {', '.join(sorted(allowed))}"
        )


def parse_filesystem(params: dict, default_allowed_clients: str = "") -> FilesystemParams:
    _check_keys(params, FILESYSTEM_KEYS, MODE_FILESYSTEM)
    prefix = params.get(FS_NAME_PREFIX, "cfs-csi")
    if not NAME_PART_RE.match(prefix) or len(prefix) > MAX_FS_NAME_PREFIX:
        raise ParameterError(
            f"parameter {FS_NAME_PREFIX}={prefix!r} is invalid; allowed: up to "
            f"{MAX_FS_NAME_PREFIX} characters of a-z, 0-9, '-' and '_', starting alphanumeric"
        )
    vpc_id, subnet_id = _optional(params, VPC_ID), _optional(params, SUBNET_ID)
    if bool(vpc_id) != bool(subnet_id):
        raise ParameterError(f"parameters {VPC_ID} and {SUBNET_ID} must be given together")
    mount_ip = _optional(params, MOUNT_IP)
    if mount_ip is not None:
        if vpc_id is None:
            raise ParameterError(f"parameter {MOUNT_IP} needs {VPC_ID} and {SUBNET_ID} (VPC only)")
        try:
            ipaddress.IPv4Address(mount_ip)
        except ValueError:
            raise ParameterError(
                f"parameter {MOUNT_IP}={mount_ip!r} is invalid; allowed: an IPv4 address"
            ) from None
    pgroup_id = _optional(params, PGROUP_ID)
    managed_keys = [k for k in (ALLOWED_CLIENTS, RW_PERMISSION, USER_PERMISSION) if k in params]
    if pgroup_id and managed_keys:
        raise ParameterError(
            f"parameter {PGROUP_ID} cannot be combined with {', '.join(managed_keys)} "
            "(those describe a managed permission group)"
        )
    rules: tuple[AccessRule, ...] = ()
    if not pgroup_id:
        rw = _choice(params, RW_PERMISSION, RW_PERMISSIONS, READ_WRITE)
        user = _choice(params, USER_PERMISSION, USER_PERMISSIONS, "no_root_squash")
        clients = _parse_clients(params.get(ALLOWED_CLIENTS, default_allowed_clients))
        if not clients:
            raise ParameterError(
                f"no permission group: set {PGROUP_ID}, or {ALLOWED_CLIENTS} "
                "(or the driver's --default-allowed-clients)"
            )
        rules = tuple(AccessRule(client, rw, user) for client in dict.fromkeys(clients))
    return FilesystemParams(
        zone=_optional(params, ZONE),
        vpc_id=vpc_id,
        subnet_id=subnet_id,
        storage_type=_choice(params, STORAGE_TYPE, STORAGE_TYPES, "SD"),
        pgroup_id=pgroup_id,
        access_rules=rules,
        mount_ip=mount_ip,
        resource_tags=_parse_tags(params.get(RESOURCE_TAGS, "")),
        vers=_choice(params, VERS, NFS_VERSIONS, "4"),
        fs_name_prefix=prefix,
        on_delete=_choice(params, ON_DELETE, FILESYSTEM_ON_DELETE, ON_DELETE_DELETE),
        mount_options=params.get(MOUNT_OPTIONS, ""),
    )


def parse_subdir(params: dict) -> SubdirParams:
    _check_keys(params, SUBDIR_KEYS, MODE_SUBDIR)
    file_system_id = _optional(params, FILE_SYSTEM_ID)
    server, fsid = _optional(params, SERVER), _optional(params, FSID)
    if file_system_id is not None:
        if server or fsid:
            raise ParameterError(f"parameter {FILE_SYSTEM_ID} cannot be combined with {SERVER}/{FSID}")
        if not FILE_SYSTEM_ID_RE.match(file_system_id):
            raise ParameterError(
                f"parameter {FILE_SYSTEM_ID}={file_system_id!r} is invalid; allowed: cfs-<id>"
            )
    elif server and fsid:
        validate_server(server)
        if not FSID_RE.match(fsid):
            raise ParameterError(f"parameter {FSID}={fsid!r} is invalid; allowed: letters, digits, '-', '_'")
    else:
        raise ParameterError(
            f"{PROVISIONING_MODE}={MODE_SUBDIR} needs {FILE_SYSTEM_ID}, or {SERVER} and {FSID}"
        )
    template = params.get(SUB_DIR, DEFAULT_SUBDIR_TEMPLATE)
    check_template(template)
    permissions = params.get(MOUNT_PERMISSIONS, oct(DEFAULT_MOUNT_PERMISSIONS)[2:])
    if not re.fullmatch(r"0?[0-7]{3,4}", permissions) or int(permissions, 8) > 0o7777:
        raise ParameterError(
            f"parameter {MOUNT_PERMISSIONS}={permissions!r} is invalid; allowed: octal mode such as 0777"
        )
    return SubdirParams(
        file_system_id=file_system_id,
        server=server,
        fsid=fsid,
        subdir_template=template,
        mount_permissions=int(permissions, 8),
        uid=_parse_id(params, UID),
        gid=_parse_id(params, GID),
        vers=_choice(params, VERS, NFS_VERSIONS, "4"),
        on_delete=_choice(params, ON_DELETE, SUBDIR_ON_DELETE, ON_DELETE_DELETE),
        mount_options=params.get(MOUNT_OPTIONS, ""),
    )


def provisioning_mode(params: dict) -> str:
    return _choice(params, PROVISIONING_MODE, (MODE_FILESYSTEM, MODE_SUBDIR), MODE_FILESYSTEM)


def check_template(template: str) -> None:
    """Reject templates with unknown variables or a shape that could escape the share."""
    stripped = template
    for variable in TEMPLATE_VARIABLES:
        stripped = stripped.replace(variable, "x")
    if "$" in stripped:
        raise ParameterError(
            f"parameter {SUB_DIR}={template!r} uses an unknown variable; allowed: "
            f"{', '.join(TEMPLATE_VARIABLES)}"
        )
    validate_relative_path(stripped, SUB_DIR)


def render_subdir(template: str, params: dict, volume_name: str) -> str:
    """Expand the template from the provisioner's extra metadata and validate the result.

    The PV name is the CSI volume name, so `${pv.metadata.name}` works without extra metadata.
    """
    values = {PV_NAME_KEY: volume_name, **params}
    path = template
    for variable, key in TEMPLATE_VARIABLES.items():
        if variable in path:
            value = values.get(key)
            if not value:
                raise ParameterError(
                    f"parameter {SUB_DIR} uses {variable} but the request has no {key} "
                    "(run the external-provisioner with --extra-create-metadata)"
                )
            path = path.replace(variable, value)
    validate_relative_path(path, "subdir path")
    return path
