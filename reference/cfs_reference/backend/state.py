"""The in-memory working copy of every resource, written through to the durable Store.

Resources are plain dicts (snake_case keys) grouped by kind. Each backend service reads them
through the lookups here, which raise the documented not-found / invalid-id errors, and
changes them only inside `State.change()`, so memory and disk move together.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cfs_reference import ids
from cfs_reference.errors import ApiError, invalid_value, not_found
from cfs_reference.store import Store, Transaction

FILE_SYSTEM = "file_system"
PGROUP = "pgroup"
RULE = "rule"
SNAPSHOT = "snapshot"
POLICY = "policy"
META = "meta"
KINDS = (FILE_SYSTEM, PGROUP, RULE, SNAPSHOT, POLICY, META)

ALL_REGIONS = "*"  # region of the default permission group, which every region has
FILE_SYSTEM_ID = re.compile(r"cfs-[a-z0-9]+")
PGROUP_ID = re.compile(r"pgroup-[a-z0-9]+|" + ids.DEFAULT_PGROUP_ID)
SNAPSHOT_ID = re.compile(r"cfssnap-[a-z0-9]+")


def timestamp_text(epoch: float) -> str:
    """Times as the API shows them, e.g. 2019-07-10 10:21:22 (UTC)."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Change:
    """One open change: writes go to memory and to the transaction together."""

    state: State
    tx: Transaction

    def save(self, kind: str, record: dict[str, Any]) -> None:
        self.state.tables[kind][record["id"]] = record
        self.tx.put(kind, record["id"], record)

    def remove(self, kind: str, rid: str) -> None:
        self.state.tables[kind].pop(rid, None)
        self.tx.delete(kind, rid)


class State:
    def __init__(self, store: Store, state_dir: Path, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock
        self.data_root = state_dir / "data"
        self.snapshot_root = state_dir / "snapshots"
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.snapshot_root.mkdir(parents=True, exist_ok=True)
        loaded = store.load()
        self.tables: dict[str, dict[str, dict[str, Any]]] = {kind: loaded.get(kind, {}) for kind in KINDS}

    @contextmanager
    def change(self) -> Iterator[Change]:
        with self.store.transaction() as tx:
            yield Change(self, tx)

    def now(self) -> float:
        return self.clock()

    def data_dir(self, file_system_id: str) -> Path:
        return self.data_root / file_system_id

    def snapshot_dir(self, snapshot_id: str) -> Path:
        return self.snapshot_root / snapshot_id

    def taken_ids(self) -> set[str]:
        taken: set[str] = set()
        for table in self.tables.values():
            taken.update(table)
        return taken

    # ---- lookups that raise the documented errors ----

    @staticmethod
    def check_file_system_id(file_system_id: str) -> None:
        if not file_system_id.strip():  # "FileSystemId缺失"
            raise ApiError("InvalidParameterValue.MissingFileSystemId", "FileSystemId must not be empty")
        if not FILE_SYSTEM_ID.fullmatch(file_system_id):
            raise invalid_value(
                "InvalidParameterValue.InvalidFileSystemId",
                "FileSystemId",
                file_system_id,
                "a file system id looks like cfs-1a2b3c4d",
            )

    def file_system(self, region: str, file_system_id: str) -> dict[str, Any]:
        self.check_file_system_id(file_system_id)
        record = self.tables[FILE_SYSTEM].get(file_system_id)
        if record is None or record["region"] != region:
            raise not_found("ResourceNotFound.FileSystemNotFound", "file system", file_system_id)
        return record

    def pgroup(self, region: str, pgroup_id: str) -> dict[str, Any]:
        if not PGROUP_ID.fullmatch(pgroup_id):
            raise invalid_value(
                "InvalidParameterValue.InvalidPgroupId",
                "PGroupId",
                pgroup_id,
                f"a permission group id looks like pgroup-1a2b3c4d or is {ids.DEFAULT_PGROUP_ID}",
            )
        record = self.tables[PGROUP].get(pgroup_id)
        if record is None or record["region"] not in (region, ALL_REGIONS):
            raise not_found("ResourceNotFound.PgroupNotFound", "permission group", pgroup_id)
        return record

    def snapshot(self, region: str, snapshot_id: str) -> dict[str, Any]:
        record = self.tables[SNAPSHOT].get(snapshot_id) if SNAPSHOT_ID.fullmatch(snapshot_id) else None
        if record is None or record["region"] != region:
            raise not_found("ResourceNotFound.SnapNotExist", "snapshot", snapshot_id)
        return record

    def policy(self, region: str, policy_id: str) -> dict[str, Any]:
        record = self.tables[POLICY].get(policy_id)
        if record is None or record["region"] != region:
            raise not_found("ResourceNotFound", "automatic snapshot policy", policy_id)
        return record

    def in_region(self, kind: str, region: str) -> list[dict[str, Any]]:
        return [r for r in self.tables[kind].values() if r["region"] in (region, ALL_REGIONS)]

    def rules_of(self, pgroup_id: str) -> list[dict[str, Any]]:
        rules = [r for r in self.tables[RULE].values() if r["pgroup_id"] == pgroup_id]
        return sorted(rules, key=lambda r: (r["priority"], r["seq"]))

    def take_seq(self, change: Change) -> int:
        """The next value of a durable creation counter (stable ordering across restarts)."""
        value = self.tables[META].get("seq", {"value": 0})["value"] + 1
        change.save(META, {"id": "seq", "value": value})
        return value
