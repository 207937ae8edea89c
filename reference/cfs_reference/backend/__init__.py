"""The reference CFS backend: owns all state and raises typed ApiErrors.

`Backend` wires the resource services (file systems, permission groups, snapshots, policies)
to one State, moves resources through their lifecycles (`settle`), runs automatic snapshot
policies, and keeps the NFS data plane in step with the available file systems.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cfs_reference.backend.exports import ExportSync
from cfs_reference.backend.file_systems import AVAILABLE, FileSystems, NewFileSystem
from cfs_reference.backend.groups import Groups
from cfs_reference.backend.policies import Policies, next_run
from cfs_reference.backend.regions import Regions
from cfs_reference.backend.snapshots import Snapshots, expires_at
from cfs_reference.backend.state import FILE_SYSTEM, META, POLICY, SNAPSHOT, State
from cfs_reference.errors import ApiError
from cfs_reference.nfs import DataPlane, DataPlaneError, ExportRule, ExportSpec, MountTargetRefused
from cfs_reference.store import Store

log = logging.getLogger(__name__)

SERVICE_STATUS_ID = "service_status"  # DescribeCfsServiceStatus: none -> creating -> created
DATABASE_NAME = "state.db"


class Backend:
    def __init__(
        self,
        state_dir: Path,
        regions: list[str],
        mount_ip_pool: str,
        data_plane: DataPlane,
        create_delay: float,
        create_fails: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.time,
    ):
        state_dir.mkdir(parents=True, exist_ok=True)
        self.state = State(Store(state_dir / DATABASE_NAME), state_dir, clock)
        self.regions = Regions(regions)
        self.file_systems = FileSystems(self.state, self.regions, mount_ip_pool)
        self.groups = Groups(self.state)
        self.snapshots = Snapshots(self.state, self.regions)
        self.policies = Policies(self.state)
        self.exports = ExportSync(data_plane)
        self.create_delay = create_delay
        self.create_fails = create_fails
        self.groups.ensure_default()
        self._deadline = 0.0  # next time settle() has work to do

    def start(self) -> None:
        self.exports.start()
        self.settle()
        self.publish_exports()

    def stop(self) -> None:
        self.exports.stop()
        self.state.store.close()

    # ---- creation entry points that need the lifecycle settings ----

    def create_file_system(self, region: str, request: NewFileSystem) -> dict[str, Any]:
        record = self.file_systems.create(region, request, self.create_delay, self.create_fails())
        if record["target_state"] != AVAILABLE:
            return self._pending(record)  # an injected failure: it will never be served
        try:
            self.exports.data_plane.reserve_mount_target(record["id"], record["ip"])
        except MountTargetRefused as refused:  # this address can never be served
            log.warning("file system %s will end create_failed: %s", record["id"], refused)
            record = self.file_systems.will_fail(region, record["id"])
        except DataPlaneError as later:  # apply() claims it once the data plane can
            log.info("mount target of %s not reserved yet: %s", record["id"], later)
        return self._pending(record)

    def create_snapshot(
        self, region: str, file_system_id: str, name: str, tags, alive_days: int = 0
    ) -> dict[str, Any]:
        return self._pending(
            self.snapshots.create(
                region, file_system_id, name, tags, self.create_delay, self.create_fails(), alive_days
            )
        )

    def copy_snapshot(
        self, region: str, snapshot_id: str, destination: str, name: str | None
    ) -> dict[str, Any]:
        return self._pending(
            self.snapshots.copy_to_region(
                region, snapshot_id, destination, name, self.create_delay, self.create_fails()
            )
        )

    def _pending(self, record: dict[str, Any]) -> dict[str, Any]:
        """A record now creating: settle() must look again when it is due."""
        self._deadline = min(self._deadline, record["ready_at"])
        return record

    # ---- service sign-up ----

    def service_status(self) -> str:
        return self.state.tables[META].get(SERVICE_STATUS_ID, {}).get("status", "none")

    def sign_up(self) -> str:
        if self.service_status() == "none":
            with self.state.change() as change:
                ready_at = self.state.now() + self.create_delay
                change.save(META, {"id": SERVICE_STATUS_ID, "status": "creating", "ready_at": ready_at})
            self._deadline = min(self._deadline, ready_at)
        return self.service_status()

    # ---- lifecycle ----

    def settle(self) -> None:
        """Finish every creation whose delay has passed, run due snapshot policies and expire
        snapshots past their retention."""
        now = self.state.now()
        if now < self._deadline:
            return
        became_available = False
        with self.state.change() as change:
            for kind in (FILE_SYSTEM, SNAPSHOT):
                for record in list(self.state.tables[kind].values()):
                    if record["state"] == "creating" and record["ready_at"] <= now:
                        change.save(kind, dict(record, state=record["target_state"]))
                        became_available |= kind == FILE_SYSTEM and record["target_state"] == AVAILABLE
            status = self.state.tables[META].get(SERVICE_STATUS_ID)
            if status and status["status"] == "creating" and status["ready_at"] <= now:
                change.save(META, dict(status, status="created"))
        self._run_due_policies(now)
        for snapshot_id in self.snapshots.expire(now):
            log.info("snapshot %s reached the end of its retention and was deleted", snapshot_id)
        self._deadline = self._next_deadline()
        if became_available:
            self.publish_exports()

    def _run_due_policies(self, now: float) -> None:
        for policy in list(self.state.tables[POLICY].values()):
            if now < policy["next_run_at"]:
                continue
            if policy["active"]:
                for fs_id in policy["fs_ids"]:
                    try:
                        self.create_snapshot(
                            policy["region"], fs_id, f"auto_{policy['id']}", [], policy["alive_days"]
                        )
                    except ApiError as skipped:  # busy or not available: the next run tries again
                        log.info("policy %s skipped %s: %s", policy["id"], fs_id, skipped.message)
            with self.state.change() as change:
                change.save(POLICY, dict(policy, next_run_at=next_run(policy, now)))

    def _next_deadline(self) -> float:
        pending = [
            r["ready_at"]
            for kind in (FILE_SYSTEM, SNAPSHOT)
            for r in self.state.tables[kind].values()
            if r["state"] == "creating"
        ]
        status = self.state.tables[META].get(SERVICE_STATUS_ID)
        if status and status["status"] == "creating":
            pending.append(status["ready_at"])
        pending.extend(p["next_run_at"] for p in self.state.tables[POLICY].values())
        pending.extend(expires_at(s) for s in self.state.tables[SNAPSHOT].values())
        return min(pending, default=float("inf"))

    def after_change(self) -> None:
        """Called after every successful change: new lifecycles or schedules may be pending,
        and exports may differ (the data plane skips states it already serves)."""
        self._deadline = 0.0
        self.publish_exports()

    # ---- NFS exports ----

    def export_specs(self) -> list[ExportSpec]:
        specs = []
        for fs in sorted(self.state.tables[FILE_SYSTEM].values(), key=lambda r: r["seq"]):
            if fs["state"] != AVAILABLE:
                continue
            rules = tuple(
                ExportRule(client=r["client"], access=r["access"], squash=r["squash"], priority=r["priority"])
                for r in self.state.rules_of(fs["pgroup_id"])
            )
            specs.append(ExportSpec(fs["id"], fs["fsid"], fs["ip"], self.state.data_dir(fs["id"]), rules))
        return specs

    def publish_exports(self) -> None:
        self.exports.submit(self.export_specs())
