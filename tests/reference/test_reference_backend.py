"""The backend on its own (real SQLite in a temp dir, NFS off, a controllable clock): lifecycles,
automatic snapshot policies, the export specs handed to the data plane, and restart recovery."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cfs_reference.backend import Backend
from cfs_reference.backend.file_systems import NewFileSystem
from cfs_reference.backend.groups import RuleFields
from cfs_reference.nfs import ExportRule, make_data_plane

REGION = "ap-shanghai-fsi"
MONDAY_0230 = datetime(2026, 11, 23, 2, 30, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock(MONDAY_0230)


@pytest.fixture
def backend(tmp_path, clock):
    made = Backend(
        tmp_path, [REGION], "127.16.0.0/16", make_data_plane("off", tmp_path), create_delay=10, clock=clock
    )
    made.start()
    yield made
    made.stop()


def new_fs(backend: Backend, name: str, pgroup: str = "pgroupbasic") -> str:
    request = NewFileSystem(
        zone=f"{REGION}-1", zone_id=None, net_interface="BASIC", pgroup_id=pgroup, name=name
    )
    return backend.create_file_system(REGION, request)["id"]


def test_lifecycle_follows_the_create_delay(backend, clock):
    fs_id = new_fs(backend, "life")
    backend.settle()
    assert backend.state.tables["file_system"][fs_id]["state"] == "creating"
    clock.now += 10
    backend.settle()
    assert backend.state.tables["file_system"][fs_id]["state"] == "available"


def test_policy_takes_snapshots_when_due(backend, clock):
    fs_id = new_fs(backend, "scheduled")
    clock.now += 10
    backend.settle()
    policy = backend.policies.create(REGION, "nightly", "1", "3", alive_days=7)  # Mondays 03:00
    backend.after_change()
    backend.settle()
    backend.policies.bind(REGION, policy["id"], [fs_id])
    assert backend.snapshots.of_file_system(fs_id) == []
    clock.now = MONDAY_0230 + 31 * 60  # 03:01
    backend.settle()
    taken = backend.snapshots.of_file_system(fs_id)
    assert [(s["name"], s["alive_days"], s["state"]) for s in taken] == [
        (f"auto_{policy['id']}", 7, "creating")
    ]
    assert backend.state.tables["policy"][policy["id"]]["next_run_at"] > clock.now + 6 * 86400  # next Monday


def test_inactive_policy_takes_nothing(backend, clock):
    fs_id = new_fs(backend, "paused")
    clock.now += 10
    backend.settle()
    policy = backend.policies.create(REGION, "paused", "1", "3", alive_days=0)
    backend.policies.update(REGION, policy["id"], None, None, None, None, active=0)
    backend.policies.bind(REGION, policy["id"], [fs_id])
    backend.after_change()
    clock.now = MONDAY_0230 + 3600
    backend.settle()
    assert backend.snapshots.of_file_system(fs_id) == []


def test_export_specs_carry_available_file_systems_and_ordered_rules(backend, clock):
    group = backend.groups.create(REGION, "exports", "")["id"]
    backend.groups.create_rule(REGION, group, RuleFields("10.0.0.0/8", "RO", "all_squash", 50))
    backend.groups.create_rule(REGION, group, RuleFields("10.1.2.3", "RW", "no_root_squash", 1))
    served = new_fs(backend, "served", group)
    assert backend.export_specs() == []  # still creating
    clock.now += 10
    backend.settle()
    failed_first = new_fs(backend, "not_yet")
    (spec,) = backend.export_specs()
    record = backend.state.tables["file_system"][served]
    assert (spec.file_system_id, spec.fsid, spec.ip_address) == (served, record["fsid"], record["ip"])
    assert spec.data_dir == backend.state.data_dir(served) and spec.data_dir.is_dir()
    assert spec.rules == (
        ExportRule("10.1.2.3", "RW", "no_root_squash", 1),
        ExportRule("10.0.0.0/8", "RO", "all_squash", 50),
    )
    assert failed_first not in {s.file_system_id for s in backend.export_specs()}


def test_state_survives_a_new_backend_on_the_same_directory(tmp_path, clock):
    first = Backend(tmp_path, [REGION], "127.16.0.0/16", make_data_plane("off", tmp_path), 10, clock=clock)
    fs_id = new_fs(first, "kept")
    group = first.groups.create(REGION, "kept_group", "kept")["id"]
    first.state.store.close()  # no orderly stop: as after kill -9
    second = Backend(tmp_path, [REGION], "127.16.0.0/16", make_data_plane("off", tmp_path), 10, clock=clock)
    assert second.state.tables["file_system"][fs_id]["name"] == "kept"
    assert second.state.tables["pgroup"][group]["desc"] == "kept"
    clock.now += 10
    second.settle()
    assert second.state.tables["file_system"][fs_id]["state"] == "available"
    assert new_fs(second, "next") != fs_id
    second.state.store.close()


def test_snapshots_expire_after_their_alive_days(backend, clock):
    fs_id = new_fs(backend, "retention")
    clock.now += 10
    backend.settle()
    kept = backend.create_snapshot(REGION, fs_id, "kept", [])
    clock.now += 10
    backend.settle()
    short = backend.create_snapshot(REGION, fs_id, "short", [], alive_days=2)
    clock.now += 10
    backend.settle()
    assert backend.state.snapshot_dir(short["id"]).is_dir()
    clock.now += 2 * 86400
    backend.settle()
    assert [s["id"] for s in backend.snapshots.of_file_system(fs_id)] == [kept["id"]]
    assert not backend.state.snapshot_dir(short["id"]).exists()
