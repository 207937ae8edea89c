"""File-system snapshots (docs "管理快照"): a point-in-time copy of the data directory."""

from __future__ import annotations

import shutil
from typing import Any

from cfs_reference import ids
from cfs_reference.backend import limits
from cfs_reference.backend.file_systems import AVAILABLE, directory_size
from cfs_reference.backend.regions import Regions
from cfs_reference.backend.state import SNAPSHOT, State
from cfs_reference.errors import ApiError, require

CREATING, SNAP_AVAILABLE, CREATE_FAILED = "creating", "available", "create-failed"
DAY_SECONDS = 86400


def expires_at(snapshot: dict[str, Any]) -> float:
    """When a snapshot's retention ends (AliveDays 0 = kept forever)."""
    days = snapshot["alive_days"]
    return snapshot["created_at"] + days * DAY_SECONDS if days > 0 else float("inf")


class Snapshots:
    def __init__(self, state: State, regions: Regions):
        self.state = state
        self.regions = regions

    def create(
        self,
        region: str,
        file_system_id: str,
        name: str,
        tags: list[tuple[str, str]],
        delay: float,
        fail: bool,
        alive_days: int = 0,
    ) -> dict[str, Any]:
        fs = self.state.file_system(region, file_system_id)
        # "文件系统必须处于正常状态，其他状态暂无法创建快照"
        require(
            fs["state"] == AVAILABLE,
            "InvalidParameterValue.InvalidFsStatus",
            f"file system {file_system_id} is {fs['state']}; snapshots need an available file system",
        )
        of_fs = self.of_file_system(file_system_id)
        # "快照还未创建完成时，无法对该文件系统再次创建快照"
        require(
            not any(s["state"] == CREATING for s in of_fs),
            "InvalidParameterValue.SnapSrcFsBusy",
            f"file system {file_system_id} already has a snapshot being created",
        )
        require(
            len(of_fs) < limits.SNAPSHOTS_PER_FILE_SYSTEM,
            "LimitExceeded",
            f"a file system holds at most {limits.SNAPSHOTS_PER_FILE_SYSTEM} snapshots",
        )
        self._check_name(name)
        limits.check_tags(tags)
        return self._create(
            region, fs["id"], fs["name"], self.state.data_dir(fs["id"]), name, tags, delay, fail, alive_days
        )

    def copy_to_region(
        self, region: str, snapshot_id: str, destination: str, name: str | None, delay: float, fail: bool
    ) -> dict[str, Any]:
        source = self._available(region, snapshot_id)
        self.regions.check(destination)
        if name:
            self._check_name(name)
        return self._create(
            destination,
            source["fs_id"],
            source["fs_name"],
            self.state.snapshot_dir(snapshot_id),
            name or source["name"],
            [tuple(t) for t in source["tags"]],
            delay,
            fail,
            source["alive_days"],
        )

    def delete(self, region: str, snapshot_ids: list[str]) -> list[dict[str, Any]]:
        records = [self.state.snapshot(region, sid) for sid in snapshot_ids]
        for record in records:
            require(
                record["state"] != CREATING,
                "InvalidParameterValue.InvalidSnapStatus",
                f"snapshot {record['id']} is still being created",
            )
        with self.state.change() as change:
            for record in records:
                change.remove(SNAPSHOT, record["id"])
        for record in records:
            shutil.rmtree(self.state.snapshot_dir(record["id"]), ignore_errors=True)
        return records

    def expire(self, now: float) -> list[str]:
        """Delete the finished snapshots whose retention (AliveDays; 0 = forever) has run out."""
        expired = [
            s for s in self.state.tables[SNAPSHOT].values() if s["state"] != CREATING and expires_at(s) <= now
        ]
        if expired:
            with self.state.change() as change:
                for record in expired:
                    change.remove(SNAPSHOT, record["id"])
            for record in expired:
                shutil.rmtree(self.state.snapshot_dir(record["id"]), ignore_errors=True)
        return [record["id"] for record in expired]

    def update(
        self, region: str, snapshot_id: str, name: str | None, alive_days: int | None
    ) -> dict[str, Any]:
        record = self.state.snapshot(region, snapshot_id)
        if name is None and alive_days is None:
            raise ApiError("MissingParameter", "give SnapshotName or AliveDays (or both)")
        if name is not None:
            self._check_name(name)
        # "如果原来是永久保留时间，不允许修改成短期有效期"
        require(
            alive_days is None or record["alive_days"] != 0 or alive_days == 0,
            "InvalidParameterValue",
            f"AliveDays: snapshot {snapshot_id} is kept forever and cannot be given a retention period",
        )
        record = dict(
            record,
            name=name if name is not None else record["name"],
            alive_days=alive_days if alive_days is not None else record["alive_days"],
        )
        with self.state.change() as change:
            change.save(SNAPSHOT, record)
        return record

    def describe(self, region: str) -> list[dict[str, Any]]:
        return sorted(self.state.in_region(SNAPSHOT, region), key=lambda s: s["seq"])

    def of_file_system(self, file_system_id: str) -> list[dict[str, Any]]:
        return [s for s in self.state.tables[SNAPSHOT].values() if s["fs_id"] == file_system_id]

    def _available(self, region: str, snapshot_id: str) -> dict[str, Any]:
        record = self.state.snapshot(region, snapshot_id)
        require(
            record["state"] == SNAP_AVAILABLE,
            "InvalidParameterValue.InvalidSnapStatus",
            f"snapshot {snapshot_id} is {record['state']}, not available",
        )
        return record

    def _create(
        self,
        region: str,
        fs_id: str,
        fs_name: str,
        source_dir,
        name: str,
        tags: list[tuple[str, str]],
        delay: float,
        fail: bool,
        alive_days: int,
    ) -> dict[str, Any]:
        now = self.state.now()
        snapshot_id = ids.new_id(ids.SNAPSHOT, self.state.taken_ids())
        target = self.state.snapshot_dir(snapshot_id)
        shutil.copytree(source_dir, target, symlinks=True)
        with self.state.change() as change:
            record = {
                "id": snapshot_id,
                "region": region,
                "fs_id": fs_id,
                "fs_name": fs_name,
                "name": name,
                "state": CREATING,
                "target_state": CREATE_FAILED if fail else SNAP_AVAILABLE,
                "ready_at": now + delay,
                "created_at": now,
                "size_bytes": directory_size(target),
                "alive_days": alive_days,
                "tags": [list(t) for t in tags],
                "seq": self.state.take_seq(change),
            }
            change.save(SNAPSHOT, record)
        return record

    @staticmethod
    def _check_name(name: str) -> None:
        if name:
            limits.check_name(name, "SnapshotName", "InvalidParameterValue", "InvalidParameterValue")
