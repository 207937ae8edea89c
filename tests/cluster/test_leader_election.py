"""Two controller replicas as the chart runs them (leader election on): the provisioner that
holds the lease dies in the middle of a CreateVolume; the other replica takes the lease over and
finishes the claim with the same, idempotent request: one file system, no duplicate, no leak."""

from __future__ import annotations

import pytest

from tests.support.chart_lane import apply, claim
from tests.support.control_plane import missing

CLUSTER_MISSING = missing()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CLUSTER_MISSING is not None, reason=CLUSTER_MISSING or "")]
PROVISIONER_LEASE = "cfs-csi-tencentcloud-com"
# Long enough that the leader is surely killed while the file system is still `creating`.
SLOW_CREATE = 6.0


def holder(lane, lease: str) -> str | None:
    found = lane.plane.find("lease", lease, "-n", lane.namespace)
    return found["spec"].get("holderIdentity") if found else None


def test_the_standby_replica_finishes_what_the_killed_leader_started(lane):
    lane.start_pod("controller", "cfs-csi-controller-1")
    leader = lane.wait_for(lambda: holder(lane, PROVISIONER_LEASE), "a provisioner leader")
    assert leader in ("cfs-csi-controller-0", "cfs-csi-controller-1")
    standby = next(name for name in ("cfs-csi-controller-0", "cfs-csi-controller-1") if name != leader)
    lane.reference.admin.configure(create_delay=SLOW_CREATE)
    apply(lane.plane, [claim("failover", "cfs")])
    claim_uid = lane.wait_for(
        lambda: lane.get("pvc", "failover", "-n", "default")["metadata"]["uid"], "claim uid"
    )
    volume_name = f"pvc-{claim_uid}"

    def creating():
        return [fs for fs in lane.reference.admin.state()["FileSystems"] if volume_name in fs["FsName"]]

    started = lane.wait_for(creating, "CreateCfsFileSystem from the leader")
    assert started[0]["LifeCycleState"] == "creating"
    lane.pods[leader].kill()

    lane.wait_for(
        lambda: holder(lane, PROVISIONER_LEASE) == standby, f"{standby} takes the lease", timeout=120
    )
    lane.wait_for(
        lambda: lane.phase("pvc", "failover") == "Bound", "claim failover Bound by the standby", timeout=120
    )
    pv = lane.get("pv", volume_name)
    mine = [
        fs["FileSystemId"]
        for fs in lane.reference.admin.state()["FileSystems"]
        if volume_name in fs["FsName"]
    ]
    assert mine == [started[0]["FileSystemId"]] == [pv["spec"]["csi"]["volumeAttributes"]["fileSystemId"]]
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "cfs.csi.tencentcloud.com"
