"""File systems, their mount targets and their data directories."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
from dataclasses import dataclass
from typing import Any

from cfs_reference import ids
from cfs_reference.backend import limits
from cfs_reference.backend.regions import Regions
from cfs_reference.backend.state import FILE_SYSTEM, POLICY, SNAPSHOT, State
from cfs_reference.errors import ApiError, invalid_value, require

CREATING, AVAILABLE, CREATE_FAILED = "creating", "available", "create_failed"
VPC_ID = re.compile(r"vpc-[a-z0-9]+|\d+")  # 2019: vpc-xxxxxxxx; 2018: a numeric VpcId
SUBNET_ID = re.compile(r"subnet-[a-z0-9]+|\d+")
DATA_DIR_MODE = 0o755  # "每个文件系统默认为 755 权限"
SIZE_CACHE_SECONDS = 1.0  # SizeByte is re-measured at most this often per file system


@dataclass(frozen=True)
class NewFileSystem:
    """What CreateCfsFileSystem asks for, in either API version."""

    zone: str | None
    zone_id: int | None
    net_interface: str
    pgroup_id: str
    vpc_id: str | None = None
    subnet_id: str | None = None
    mount_ip: str | None = None
    name: str = ""
    protocol: str | None = None
    storage_type: str | None = None
    storage_types: tuple[str, ...] = limits.STORAGE_TYPES  # what this API version accepts
    storage_package_id: str = ""
    snap_id: str | None = None
    encrypted: bool = False
    kms_key_id: str = ""
    tags: tuple[tuple[str, str], ...] = ()


class FileSystems:
    def __init__(self, state: State, regions: Regions, mount_ip_pool: str):
        self.state = state
        self.regions = regions
        self.pool = ipaddress.IPv4Network(mount_ip_pool)
        self._sizes: dict[str, tuple[float, int]] = {}

    # ---- create / delete ----

    def create(self, region: str, request: NewFileSystem, delay: float, fail: bool) -> dict[str, Any]:
        zone = self.regions.resolve(region, request.zone, request.zone_id)
        protocol = limits.check_choice(
            request.protocol or "NFS", "Protocol", limits.PROTOCOLS, "InvalidParameterValue.InvalidProtocol"
        )
        storage_type = limits.check_choice(
            request.storage_type or "SD",
            "StorageType",
            request.storage_types,
            "InvalidParameterValue.InvalidStorageType",
        )
        if storage_type == limits.INFREQUENT_ACCESS and not request.storage_package_id:
            raise ApiError(
                "InvalidParameterValue.MissingStorageResourcePkg",
                "StorageType=IA (infrequent access) needs StorageResourcePkgId",
            )
        net = limits.check_choice(
            request.net_interface,
            "NetInterface",
            limits.NET_INTERFACES,
            "InvalidParameterValue.InvalidNetInterface",
        )
        vpc_id, subnet_id = self._check_network(net, request)
        if request.name:
            limits.check_name(
                request.name,
                "FsName",
                "InvalidParameterValue.FsNameLimitExceeded",
                "InvalidParameterValue.InvalidFsName",
            )
        limits.check_tags(request.tags)
        if request.encrypted and not request.kms_key_id:
            raise ApiError("InvalidParameterValue.MissingKmsKeyId", "Encrypted=true needs KmsKeyId")
        self.state.pgroup(region, request.pgroup_id)
        source = self._check_source_snapshot(region, request.snap_id)
        require(
            len(self.state.in_region(FILE_SYSTEM, region)) < limits.FILE_SYSTEMS_PER_REGION,
            "ResourceInsufficient.FileSystemLimitExceeded",
            f"a region holds at most {limits.FILE_SYSTEMS_PER_REGION} file systems",
        )
        ip = self._allocate_ip(request.mount_ip, net)
        taken = self.state.taken_ids()
        now = self.state.now()
        with self.state.change() as change:
            record: dict[str, Any] = {
                "id": ids.new_id(ids.FILE_SYSTEM, taken),
                "region": region,
                "zone": zone.name,
                "zone_id": zone.zone_id,
                "name": request.name,
                "protocol": protocol,
                "storage_type": storage_type,
                "net_interface": net,
                "vpc_id": vpc_id,
                "subnet_id": subnet_id,
                "pgroup_id": request.pgroup_id,
                "ip": ip,
                "fsid": ids.new_fsid({fs["fsid"] for fs in self.state.tables[FILE_SYSTEM].values()}),
                "state": CREATING,
                "target_state": CREATE_FAILED if fail else AVAILABLE,
                "ready_at": now + delay,
                "created_at": now,
                "size_limit_gb": 0,
                "encrypted": request.encrypted,
                "kms_key_id": request.kms_key_id,
                "snap_id": request.snap_id or "",
                "tags": [list(tag) for tag in request.tags],
                "policy_id": "",
                "seq": self.state.take_seq(change),
            }
            self._prepare_data_dir(record["id"], source)
            change.save(FILE_SYSTEM, record)
        return record

    def delete(self, region: str, file_system_id: str) -> dict[str, Any]:
        record = self.state.file_system(region, file_system_id)
        require(
            record["state"] != CREATING,
            "InvalidParameterValue.InvalidFsStatus",
            f"file system {file_system_id} is still creating and cannot be deleted yet",
        )
        busy = [
            s["id"]
            for s in self.state.tables[SNAPSHOT].values()
            if s["fs_id"] == file_system_id and s["state"] == "creating"
        ]
        require(
            not busy,
            "InvalidParameterValue.SnapSrcFsBusy",
            f"file system {file_system_id} is being snapshotted ({', '.join(busy)})",
        )
        with self.state.change() as change:
            policy = self.state.tables[POLICY].get(record["policy_id"])
            if policy:  # a deleted file system leaves its snapshot policy
                change.save(POLICY, dict(policy, fs_ids=[f for f in policy["fs_ids"] if f != file_system_id]))
            change.remove(FILE_SYSTEM, file_system_id)
        shutil.rmtree(self.state.data_dir(file_system_id), ignore_errors=True)
        self._sizes.pop(file_system_id, None)
        return record

    # ---- reads ----

    def describe(
        self,
        region: str,
        file_system_id: str | None = None,
        vpc_id: str | None = None,
        subnet_id: str | None = None,
        creation_token: str | None = None,
    ) -> list[dict[str, Any]]:
        """File systems matching every given filter. An unknown id lists nothing:
        FileSystemNotFound is not among DescribeCfsFileSystems' codes."""
        if file_system_id is not None:
            self.state.check_file_system_id(file_system_id)
        check_network_ids(vpc_id, subnet_id)
        # Creation order, so Offset/Limit pages stay stable across restarts.
        found = sorted(self.state.in_region(FILE_SYSTEM, region), key=lambda fs: fs["seq"])
        return [
            fs
            for fs in found
            if (file_system_id is None or fs["id"] == file_system_id)
            and (vpc_id is None or fs["vpc_id"] == vpc_id)
            and (subnet_id is None or fs["subnet_id"] == subnet_id)
            and (creation_token is None or fs["name"] == creation_token)
        ]

    def mount_targets(
        self, region: str, file_system_id: str, while_creating: str = "InvalidParameterValue.InvalidFsStatus"
    ) -> list[dict[str, Any]]:
        """The one mount target of an available file system (none while creating: docs
        "当文件系统处于“创建中”状态时，将无法查看文件系统详情"); `while_creating` is the error code
        the calling action documents for that case."""
        record = self.state.file_system(region, file_system_id)
        require(
            record["state"] != CREATING,
            while_creating,
            f"file system {file_system_id} is still creating; its mount target is not ready",
        )
        require(
            record["state"] == AVAILABLE,
            "ResourceNotFound.MountTargetNotFound",
            f"file system {file_system_id} failed to create and has no mount target",
        )
        return [record]

    def size_bytes(self, record: dict[str, Any]) -> int:
        """Bytes stored in the data directory, measured at most once per SIZE_CACHE_SECONDS."""
        now = self.state.now()
        cached = self._sizes.get(record["id"])
        if cached and cached[0] > now:
            return cached[1]
        size = directory_size(self.state.data_dir(record["id"]))
        self._sizes[record["id"]] = (now + SIZE_CACHE_SECONDS, size)
        return size

    # ---- updates ----

    def rename(self, region: str, file_system_id: str, name: str) -> dict[str, Any]:
        limits.check_name(
            name, "FsName", "InvalidParameterValue.FsNameLimitExceeded", "InvalidParameterValue.InvalidFsName"
        )
        return self._update(region, file_system_id, name=name)

    def set_pgroup(self, region: str, file_system_id: str, pgroup_id: str) -> dict[str, Any]:
        self.state.file_system(region, file_system_id)
        self.state.pgroup(region, pgroup_id)
        return self._update(region, file_system_id, pgroup_id=pgroup_id)

    def set_size_limit(self, region: str, file_system_id: str, limit_gb: int, minimum: int) -> dict[str, Any]:
        self.state.file_system(region, file_system_id)
        if limit_gb > limits.FS_LIMIT_MAX_GB:
            raise invalid_value(
                "InvalidParameterValue.FsSizeLimitExceeded",
                "FsLimit",
                limit_gb,
                f"at most {limits.FS_LIMIT_MAX_GB} GB",
            )
        if limit_gb < minimum:
            raise invalid_value(
                "InvalidParameterValue.InvalidFsSizeLimit",
                "FsLimit",
                limit_gb,
                f"{minimum}-{limits.FS_LIMIT_MAX_GB} GB" + (" (0 = unlimited)" if minimum == 0 else ""),
            )
        return self._update(region, file_system_id, size_limit_gb=limit_gb)

    def will_fail(self, region: str, file_system_id: str) -> dict[str, Any]:
        """A file system still creating will end create_failed (its mount target was refused)."""
        return self._update(region, file_system_id, target_state=CREATE_FAILED)

    def _update(self, region: str, file_system_id: str, **fields: Any) -> dict[str, Any]:
        record = dict(self.state.file_system(region, file_system_id), **fields)
        with self.state.change() as change:
            change.save(FILE_SYSTEM, record)
        return record

    # ---- helpers ----

    def _check_network(self, net: str, request: NewFileSystem) -> tuple[str, str]:
        if net == "BASIC":
            require(
                request.mount_ip is None,
                "InvalidParameterValue.InvalidMountTargetIp",
                "MountIP can only be given with NetInterface=VPC",
            )
            return "", ""
        if not request.vpc_id:
            raise ApiError("InvalidParameterValue.MissingVpcidOrUnvpcid", "NetInterface=VPC needs VpcId")
        if not request.subnet_id:
            raise ApiError(
                "InvalidParameterValue.MissingSubnetidOrUnsubnetid", "NetInterface=VPC needs SubnetId"
            )
        check_network_ids(request.vpc_id, request.subnet_id)
        return request.vpc_id, request.subnet_id

    def _check_source_snapshot(self, region: str, snap_id: str | None) -> str | None:
        if not snap_id:
            return None
        snapshot = self.state.snapshot(region, snap_id)
        require(
            snapshot["state"] == "available",
            "InvalidParameterValue.InvalidSnapStatus",
            f"snapshot {snap_id} is {snapshot['state']}; only an available snapshot can seed a file system",
        )
        return snap_id

    def _allocate_ip(self, wanted: str | None, net: str) -> str:
        used = {fs["ip"] for fs in self.state.tables[FILE_SYSTEM].values()}
        if wanted is not None:
            try:
                address = ipaddress.IPv4Address(wanted)
            except ValueError:
                raise invalid_value(
                    "InvalidParameterValue.InvalidMountTargetIp", "MountIP", wanted, "an IPv4 address"
                ) from None
            if address not in self.pool or address in (
                self.pool.network_address,
                self.pool.broadcast_address,
            ):
                raise invalid_value(
                    "InvalidParameterValue.InvalidMountTargetIp",
                    "MountIP",
                    wanted,
                    f"a host address inside the subnet {self.pool}",
                )
            require(
                wanted not in used, "InvalidParameterValue.InvalidVip", f"MountIP {wanted} is already in use"
            )
            return wanted
        for address in self.pool.hosts():
            if str(address) not in used:
                return str(address)
        raise ApiError("ResourceInsufficient.SubnetIpAllOccupied", f"no free address left in {self.pool}")

    def _prepare_data_dir(self, file_system_id: str, snapshot_id: str | None) -> None:
        target = self.state.data_dir(file_system_id)
        shutil.rmtree(target, ignore_errors=True)
        if snapshot_id:
            shutil.copytree(self.state.snapshot_dir(snapshot_id), target, symlinks=True)
        else:
            target.mkdir(parents=True)
            target.chmod(DATA_DIR_MODE)


def check_network_ids(vpc_id: str | None, subnet_id: str | None) -> None:
    """VpcId / SubnetId in the vendor's formats (None = not given): InvalidVpcId / InvalidSubnetId,
    codes of CreateCfsFileSystem, DescribeCfsFileSystems and DescribeCfsFileSystemsByVpc."""
    if vpc_id is not None and not VPC_ID.fullmatch(vpc_id):
        raise invalid_value(
            "InvalidParameterValue.InvalidVpcId", "VpcId", vpc_id, "a VPC id like vpc-1a2b3c4d"
        )
    if subnet_id is not None and not SUBNET_ID.fullmatch(subnet_id):
        raise invalid_value(
            "InvalidParameterValue.InvalidSubnetId", "SubnetId", subnet_id, "a subnet id like subnet-1a2b3c4d"
        )


def directory_size(root: os.PathLike) -> int:
    """Sum of file sizes under `root` (symlinks not followed); 0 when it does not exist."""
    total = 0
    stack = [os.fspath(root)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        total += entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue
    return total
