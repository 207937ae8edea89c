"""Automatic (periodic) snapshot policies and their file-system bindings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cfs_reference import ids
from cfs_reference.backend import limits
from cfs_reference.backend.state import FILE_SYSTEM, POLICY, Change, State
from cfs_reference.errors import ApiError, require


class Policies:
    def __init__(self, state: State):
        self.state = state

    def create(self, region: str, name: str, day_of_week: str, hour: str, alive_days: int) -> dict[str, Any]:
        if name:
            limits.check_name(name, "PolicyName", "InvalidParameterValue", "InvalidParameterValue")
        schedule = self._schedule(day_of_week, hour)
        require(
            len(self.state.in_region(POLICY, region)) < limits.POLICIES_PER_ACCOUNT,
            "LimitExceeded",
            f"at most {limits.POLICIES_PER_ACCOUNT} automatic snapshot policies",
        )
        with self.state.change() as change:
            record: dict[str, Any] = {
                "id": ids.new_id(ids.POLICY, self.state.taken_ids()),
                "region": region,
                "name": name,
                **schedule,
                "alive_days": alive_days,
                "active": 1,
                "created_at": self.state.now(),
                "fs_ids": [],
                "seq": self.state.take_seq(change),
            }
            record["next_run_at"] = next_run(record, record["created_at"])
            change.save(POLICY, record)
        return record

    def update(
        self,
        region: str,
        policy_id: str,
        name: str | None,
        day_of_week: str | None,
        hour: str | None,
        alive_days: int | None,
        active: int | None,
    ) -> dict[str, Any]:
        record = dict(self.state.policy(region, policy_id))
        if name:
            limits.check_name(name, "PolicyName", "InvalidParameterValue", "InvalidParameterValue")
            record["name"] = name
        record.update(self._schedule(day_of_week or record["day_of_week"], hour or record["hour"]))
        if alive_days is not None:
            record["alive_days"] = alive_days
        if active is not None:
            require(active in (0, 1), "InvalidParameterValue", f"IsActive={active} is invalid: 0 or 1")
            record["active"] = active
        record["next_run_at"] = next_run(record, self.state.now())
        with self.state.change() as change:
            change.save(POLICY, record)
        return record

    def delete(self, region: str, policy_id: str) -> dict[str, Any]:
        record = self.state.policy(region, policy_id)
        with self.state.change() as change:
            self._set_policy_of(change, record["fs_ids"], "")
            change.remove(POLICY, policy_id)
        return record

    def bind(self, region: str, policy_id: str, file_system_ids: list[str]) -> dict[str, Any]:
        record = dict(self.state.policy(region, policy_id))
        for fs_id in file_system_ids:
            self.state.file_system(region, fs_id)
        bound = list(dict.fromkeys(record["fs_ids"] + file_system_ids))
        require(
            len(bound) <= limits.FILE_SYSTEMS_PER_POLICY,
            "LimitExceeded",
            f"a policy binds at most {limits.FILE_SYSTEMS_PER_POLICY} file systems",
        )
        with self.state.change() as change:
            # A file system follows one policy: binding moves it from its previous policy.
            for fs_id in file_system_ids:
                previous = self.state.tables[FILE_SYSTEM][fs_id]["policy_id"]
                if previous and previous != policy_id and previous in self.state.tables[POLICY]:
                    old = self.state.tables[POLICY][previous]
                    change.save(POLICY, dict(old, fs_ids=[f for f in old["fs_ids"] if f != fs_id]))
            self._set_policy_of(change, file_system_ids, policy_id)
            record["fs_ids"] = bound
            change.save(POLICY, record)
        return record

    def unbind(self, region: str, policy_id: str, file_system_ids: list[str]) -> dict[str, Any]:
        record = dict(self.state.policy(region, policy_id))
        for fs_id in file_system_ids:
            require(
                fs_id in record["fs_ids"],
                "ResourceNotFound",
                f"file system {fs_id} is not bound to policy {policy_id}",
            )
        with self.state.change() as change:
            self._set_policy_of(change, file_system_ids, "")
            record["fs_ids"] = [f for f in record["fs_ids"] if f not in file_system_ids]
            change.save(POLICY, record)
        return record

    def describe(self, region: str) -> list[dict[str, Any]]:
        return sorted(self.state.in_region(POLICY, region), key=lambda p: p["seq"])

    def _set_policy_of(self, change: Change, file_system_ids: list[str], policy_id: str) -> None:
        for fs_id in file_system_ids:
            fs = self.state.tables[FILE_SYSTEM].get(fs_id)
            if fs:
                change.save(FILE_SYSTEM, dict(fs, policy_id=policy_id))

    @staticmethod
    def _schedule(day_of_week: str, hour: str) -> dict[str, str]:
        return {
            "day_of_week": limits.check_schedule(day_of_week, "DayOfWeek", limits.WEEK_DAYS),
            "hour": limits.check_schedule(hour, "Hour", limits.HOURS),
        }


def next_run(policy: dict[str, Any], now: float) -> float:
    """The next time (epoch seconds, UTC) the schedule fires after `now`."""
    days = {int(d) for d in policy["day_of_week"].split(",")}
    hours = sorted(int(h) for h in policy["hour"].split(","))
    start = datetime.fromtimestamp(now, tz=UTC).replace(minute=0, second=0, microsecond=0)
    for day_offset in range(8):
        day = start + timedelta(days=day_offset)
        if day.isoweekday() not in days:
            continue
        for hour in hours:
            candidate = day.replace(hour=hour)
            if candidate.timestamp() > now:
                return candidate.timestamp()
    raise ApiError("InternalError", "policy schedule has no next run")  # unreachable with a valid schedule
