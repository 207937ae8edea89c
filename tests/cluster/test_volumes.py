"""Volumes through the real CSI sidecars on a real control plane (tests/cluster/conftest.py): PVCs
of the chart's StorageClasses are provisioned by csi-provisioner calling our controller, expanded
by csi-resizer, snapshotted by snapshot-controller + csi-snapshotter, and reclaimed; each step
checked on the API objects and on the reference service's state."""

from __future__ import annotations

import pytest

from cfs_csi.contract import TOPOLOGY_ZONE_KEY
from tests.support import csi
from tests.support.chart_lane import ZONE, apply, claim
from tests.support.control_plane import missing

CLUSTER_MISSING = missing()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CLUSTER_MISSING is not None, reason=CLUSTER_MISSING or "")]


def bound(lane, name: str) -> dict:
    """The PV of claim `name` once the claim is Bound."""
    lane.wait_for(lambda: lane.phase("pvc", name) == "Bound", f"claim {name} Bound")
    pvc = lane.get("pvc", name, "-n", "default")
    return lane.get("pv", pvc["spec"]["volumeName"])


def file_systems(lane) -> dict[str, dict]:
    return {fs["FileSystemId"]: fs for fs in csi.file_systems(lane.reference)}


def fs_id(pv: dict) -> str:
    return pv["spec"]["csi"]["volumeAttributes"]["fileSystemId"]


def test_a_filesystem_claim_is_bound_to_a_new_file_system(lane):
    apply(lane.plane, [claim("fs-claim", "cfs", "2Gi")])
    pv = bound(lane, "fs-claim")
    csi = pv["spec"]["csi"]
    file_system = file_systems(lane)[fs_id(pv)]
    assert csi["driver"] == "cfs.csi.tencentcloud.com"
    assert csi["volumeHandle"] == f"fs:{fs_id(pv)}"
    assert csi["volumeAttributes"]["server"] == file_system["IpAddress"]
    assert csi["volumeAttributes"]["vers"] == "4"
    assert pv["spec"]["capacity"]["storage"] == "2Gi"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert file_system["Zone"] == ZONE
    assert file_system["LifeCycleState"] == "available"
    terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": TOPOLOGY_ZONE_KEY, "operator": "In", "values": [ZONE]}]}]
    # The managed permission group, not the account's default one.
    assert file_system["PGroup"]["PGroupId"] != "pgroupbasic"


def test_expansion_grows_the_pv_and_the_size_limit(lane):
    apply(lane.plane, [claim("grow", "cfs", "1Gi")])
    file_system_id = fs_id(bound(lane, "grow"))
    before = file_systems(lane)[file_system_id]["SizeLimit"]
    lane.plane.kubectl("patch", "pvc", "grow", "-n", "default", "--type=merge",
                       "-p", '{"spec":{"resources":{"requests":{"storage":"5Gi"}}}}')  # fmt: skip

    def grown():
        return lane.get("pvc", "grow", "-n", "default")["status"].get("capacity", {}).get("storage") == "5Gi"

    lane.wait_for(grown, "claim grow at 5Gi")
    pv = lane.get("pv", lane.get("pvc", "grow", "-n", "default")["spec"]["volumeName"])
    assert pv["spec"]["capacity"]["storage"] == "5Gi"
    assert (before, file_systems(lane)[file_system_id]["SizeLimit"]) == (1, 5)  # FsLimit is in GB


def snapshot(name: str, claim_name: str) -> dict:
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"volumeSnapshotClassName": "cfs-snapshot",
                 "source": {"persistentVolumeClaimName": claim_name}},
    }  # fmt: skip


def test_snapshot_restore_and_clone(lane):
    apply(lane.plane, [claim("origin", "cfs", "1Gi")])
    origin = fs_id(bound(lane, "origin"))
    apply(lane.plane, [snapshot("origin-snap", "origin")])

    def ready():
        status = lane.get("volumesnapshot", "origin-snap", "-n", "default").get("status", {})
        return status if status.get("readyToUse") else None

    status = lane.wait_for(ready, "snapshot origin-snap readyToUse")
    content = lane.get("volumesnapshotcontent", status["boundVolumeSnapshotContentName"])
    snapshot_id = content["status"]["snapshotHandle"].split(":")[-1]
    snapshots = {s["SnapshotId"]: s for s in lane.reference.admin.state()["Snapshots"]}
    assert snapshots[snapshot_id]["FileSystemId"] == origin
    assert snapshots[snapshot_id]["Status"] == "available"

    from_snapshot = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "origin-snap"}
    restored = claim("restored", "cfs", "1Gi", dataSource=from_snapshot)
    cloned = claim("cloned", "cfs", "1Gi", dataSource={"kind": "PersistentVolumeClaim", "name": "origin"})
    apply(lane.plane, [restored, cloned])  # fmt: skip
    restored_pv, cloned_pv = bound(lane, "restored"), bound(lane, "cloned")
    restored_fs, cloned_fs = file_systems(lane)[fs_id(restored_pv)], file_systems(lane)[fs_id(cloned_pv)]
    assert restored_fs["SnapId"] == snapshot_id
    assert cloned_fs["FileSystemId"] not in (origin, restored_fs["FileSystemId"])
    assert cloned_fs["SnapId"] not in ("", snapshot_id)  # a clone goes through a snapshot of its own


def test_reclaim_delete_removes_the_file_system_and_its_managed_group(lane):
    apply(lane.plane, [claim("short-lived", "cfs", "1Gi")])
    pv = bound(lane, "short-lived")
    file_system_id = fs_id(pv)
    group = file_systems(lane)[file_system_id]["PGroup"]["PGroupId"]
    lane.plane.kubectl("delete", "pvc", "short-lived", "-n", "default", "--wait=false")
    lane.wait_for(
        lambda: lane.plane.find("pv", pv["metadata"]["name"]) is None,
        f"PV {pv['metadata']['name']} deleted",
    )
    assert file_system_id not in file_systems(lane)
    users = [fs for fs in file_systems(lane).values() if fs["PGroup"]["PGroupId"] == group]
    groups = {g["PGroupId"] for g in lane.reference.admin.state()["PGroups"]}
    assert (group in groups) == bool(users), "a managed group lives exactly as long as its file systems"


def test_reclaim_retain_keeps_the_file_system(lane):
    apply(lane.plane, [retain_class(), claim("kept", "cfs-retain", "1Gi")])
    pv = bound(lane, "kept")
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    lane.plane.kubectl("delete", "pvc", "kept", "-n", "default")
    lane.wait_for(lambda: lane.phase("pv", pv["metadata"]["name"], "") == "Released", "PV Released")
    assert file_systems(lane)[fs_id(pv)]["LifeCycleState"] == "available"


def retain_class() -> dict:
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "cfs-retain"},
        "provisioner": "cfs.csi.tencentcloud.com", "reclaimPolicy": "Retain",
        "parameters": {"provisioningMode": "filesystem", "vers": "4"},
    }  # fmt: skip


def failing_class(name: str, **parameters: str) -> dict:
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
        "provisioner": "cfs.csi.tencentcloud.com",
        "parameters": {"provisioningMode": "filesystem", **parameters},
    }  # fmt: skip


def provisioning_failure(lane, name: str) -> str:
    """The message of claim `name`'s ProvisioningFailed event, once there is one."""

    def failed():
        events = lane.events("PersistentVolumeClaim", name)
        return next((e["message"] for e in events if e["reason"] == "ProvisioningFailed"), None)

    return lane.wait_for(failed, f"ProvisioningFailed on claim {name}")


@pytest.mark.parametrize(
    ("name", "parameters", "words"),
    [
        ("bad-param", {"colour": "blue"}, ["colour", "provisioningMode", "storageType"]),
        ("bad-zone", {"zone": "ap-mars-1"}, ["ap-mars-1", ZONE]),
        ("bad-type", {"storageType": "XL"}, ["storageType", "SD", "HP"]),
    ],
)
def test_bad_class_parameters_leave_the_claim_pending_with_a_precise_event(lane, name, parameters, words):
    before = set(file_systems(lane))
    groups_before = {g["PGroupId"] for g in lane.reference.admin.state()["PGroups"]}
    apply(lane.plane, [failing_class(f"cfs-{name}", **parameters), claim(name, f"cfs-{name}")])
    message = provisioning_failure(lane, name)
    for word in words:
        assert word in message, message
    assert lane.phase("pvc", name) == "Pending"
    assert set(file_systems(lane)) == before
    assert {g["PGroupId"] for g in lane.reference.admin.state()["PGroups"]} == groups_before


def test_exhausted_quota_leaves_the_claim_pending_and_names_the_limit(lane):
    quota = "ResourceInsufficient.FileSystemLimitExceeded"
    lane.reference.admin.set_faults([{"action": "CreateCfsFileSystem", "code": quota, "rate": 1.0}])
    try:
        before = set(file_systems(lane))
        apply(lane.plane, [claim("no-quota", "cfs")])
        message = provisioning_failure(lane, "no-quota")
        assert "ResourceExhausted" in message and "FileSystemLimitExceeded" in message, message
        assert lane.phase("pvc", "no-quota") == "Pending"
        assert set(file_systems(lane)) == before
    finally:
        lane.reference.admin.set_faults([])
    bound(lane, "no-quota")  # once the quota is back the provisioner's retry succeeds
