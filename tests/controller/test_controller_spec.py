"""CSI-spec corner cases of the controller over real gRPC against the reference CFS service:
topology requirements, idempotency against a different source or rule set, sources that are not
ready, volumes with snapshots, failed snapshots, ValidateVolumeCapabilities' confirmation,
expansion of unlimited file systems and managed permission groups under concurrency."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from cfs_csi.csipb import csi_pb2
from tests.support.csi import (
    GIB,
    MOUNT_CAPABILITY,
    READ_ONLY_CAPABILITY,
    ZONE,
    create_request,
    file_systems,
    fs_of,
    managed_groups,
    rpc_error,
    serving_controller,
    snapshot_request,
    wait_ready,
)
from tests.support.local import eventually

TOPOLOGY_KEY = "topology.cfs.csi.tencentcloud.com/zone"
OTHER_ZONE = "ap-shanghai-fsi-2"


@pytest.fixture
def controller(tmp_path, reference):
    with serving_controller(tmp_path, reference, create_timeout=20) as running:
        yield running


def zones(*names: str) -> list[csi_pb2.Topology]:
    return [csi_pb2.Topology(segments={TOPOLOGY_KEY: name}) for name in names]


def from_snapshot(snapshot_id: str) -> csi_pb2.VolumeContentSource:
    return csi_pb2.VolumeContentSource(
        snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=snapshot_id)
    )


def from_volume(volume_id: str) -> csi_pb2.VolumeContentSource:
    return csi_pb2.VolumeContentSource(volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=volume_id))


# ---- topology ------------------------------------------------------------------------------


def test_zone_parameter_outside_requisite_topology_is_rejected(controller, reference):
    requirement = csi_pb2.TopologyRequirement(requisite=zones(OTHER_ZONE))
    err = rpc_error(
        controller.stub.CreateVolume,
        create_request("pvc-topo", {"zone": ZONE}, accessibility_requirements=requirement),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"zone={ZONE}" in err.details() and OTHER_ZONE in err.details()
    assert file_systems(reference) == [] and managed_groups(reference) == []


def test_requisite_zone_wins_over_driver_default(controller, reference):
    # The driver's --zone is ZONE; the requisite set only allows the other zone.
    requirement = csi_pb2.TopologyRequirement(requisite=zones(OTHER_ZONE))
    volume = controller.create("pvc-req", accessibility_requirements=requirement)
    assert fs_of(reference, volume.volume_id)["Zone"] == OTHER_ZONE
    assert list(volume.accessible_topology) == zones(OTHER_ZONE)


def test_retry_accepts_existing_volume_in_any_requisite_zone(controller, reference):
    first = controller.create(
        "pvc-pref",
        accessibility_requirements=csi_pb2.TopologyRequirement(
            requisite=zones(ZONE, OTHER_ZONE), preferred=zones(OTHER_ZONE, ZONE)
        ),
    )
    assert fs_of(reference, first.volume_id)["Zone"] == OTHER_ZONE
    # The provisioner's retry may order the preferred zones differently: same volume, and the
    # topology reported is where the file system really is.
    again = controller.create(
        "pvc-pref",
        accessibility_requirements=csi_pb2.TopologyRequirement(
            requisite=zones(ZONE, OTHER_ZONE), preferred=zones(ZONE, OTHER_ZONE)
        ),
    )
    assert again.volume_id == first.volume_id
    assert list(again.accessible_topology) == zones(OTHER_ZONE)
    # A requirement the existing file system cannot meet is a conflict.
    err = rpc_error(
        controller.stub.CreateVolume,
        create_request(
            "pvc-pref", accessibility_requirements=csi_pb2.TopologyRequirement(requisite=zones(ZONE))
        ),
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert f"zone {OTHER_ZONE}" in err.details()
    assert len(file_systems(reference)) == 1


# ---- idempotency against a different source or rule set ---------------------------------------


def test_same_name_with_other_source_or_rules_is_already_exists(controller, reference):
    source = controller.create("pvc-origin")
    snapshot = wait_ready(controller, "snap-origin", source.volume_id)
    other = wait_ready(controller, "snap-other", controller.create("pvc-other").volume_id)
    plain = controller.create("pvc-plain")
    restored = controller.create("pvc-restored", volume_content_source=from_snapshot(snapshot.snapshot_id))
    clone = controller.create("pvc-cloned", volume_content_source=from_volume(source.volume_id))
    count = len(file_systems(reference))

    conflicts = [
        create_request("pvc-plain", volume_content_source=from_snapshot(snapshot.snapshot_id)),
        create_request("pvc-restored"),
        create_request("pvc-restored", volume_content_source=from_snapshot(other.snapshot_id)),
        create_request("pvc-cloned"),
        create_request("pvc-plain", volume_content_source=from_volume(source.volume_id)),
        create_request("pvc-plain", {"allowedClients": "10.99.0.0/16"}),
    ]
    for request in conflicts:
        err = rpc_error(controller.stub.CreateVolume, request)
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS, request
        assert "incompatible" in err.details()
    assert len(file_systems(reference)) == count
    # The compatible retries still answer with the same volumes.
    assert controller.create("pvc-plain").volume_id == plain.volume_id
    assert (
        controller.create("pvc-restored", volume_content_source=from_snapshot(snapshot.snapshot_id)).volume_id
        == restored.volume_id
    )
    assert (
        controller.create("pvc-cloned", volume_content_source=from_volume(source.volume_id)).volume_id
        == clone.volume_id
    )


def test_volume_smaller_than_its_source_is_out_of_range(controller, reference):
    source = controller.create("pvc-big", gib=2)
    # A sparse file: 1 GiB + 1 MiB of used space (SizeByte) without writing it.
    with open(Path(fs_of(reference, source.volume_id)["DataDir"]) / "big.bin", "wb") as big:
        big.truncate(GIB + (1 << 20))
    eventually(lambda: fs_of(reference, source.volume_id)["SizeByte"] > GIB, what="SizeByte")
    err = rpc_error(
        controller.stub.CreateVolume,
        create_request("pvc-small-clone", gib=1, volume_content_source=from_volume(source.volume_id)),
    )
    assert err.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "1 GB is smaller than the 1074790400 bytes of source volume" in err.details()
    assert len(file_systems(reference)) == 1 and reference.admin.state()["Snapshots"] == []


# ---- sources that are not ready; volumes that have snapshots ------------------------------------


def test_restore_from_snapshot_not_ready_yet_is_retryable_and_creates_nothing(controller, reference):
    source = controller.create("pvc-busy-src")
    reference.admin.configure(create_delay=3.0)
    snapshot = controller.stub.CreateSnapshot(snapshot_request("snap-slow", source.volume_id)).snapshot
    assert not snapshot.ready_to_use
    before = {fs["FileSystemId"] for fs in file_systems(reference)}
    err = rpc_error(
        controller.stub.CreateVolume,
        create_request("pvc-too-early", volume_content_source=from_snapshot(snapshot.snapshot_id)),
    )
    assert err.code() == grpc.StatusCode.ABORTED
    assert snapshot.snapshot_id in err.details() and "not ready" in err.details()
    assert {fs["FileSystemId"] for fs in file_systems(reference)} == before

    # Deleting the source while the snapshot is being cut, with a deadline too short to wait
    # for it: ABORTED (the provisioner retries), nothing altered.
    err = rpc_error(
        lambda request: controller.stub.DeleteVolume(request, timeout=0.5),
        csi_pb2.DeleteVolumeRequest(volume_id=source.volume_id),
    )
    assert err.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED), err
    assert fs_of(reference, source.volume_id)["LifeCycleState"] == "available"
    # With time to wait, the delete waits for the snapshot and then succeeds; the snapshot stays.
    controller.stub.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=source.volume_id), timeout=30)
    assert not [fs for fs in file_systems(reference) if fs["FileSystemId"] == source.volume_id.split(":")[1]]
    assert [s["SnapshotId"] for s in reference.admin.state()["Snapshots"]] == [snapshot.snapshot_id]


def test_snapshots_outlive_their_source_volume(controller, reference):
    """CFS snapshots are independent of their file system, so deleting the volume succeeds and
    its snapshots stay listed and usable as sources (CSI DeleteVolume)."""
    source = controller.create("pvc-gone", {"onDelete": "retain"})
    (Path(fs_of(reference, source.volume_id)["DataDir"]) / "kept.txt").write_text("survives")
    snapshot = wait_ready(controller, "snap-survivor", source.volume_id)
    assert snapshot.source_volume_id == source.volume_id
    # Listing and getting report the same source volume id as CreateSnapshot did.
    listed = controller.stub.ListSnapshots(csi_pb2.ListSnapshotsRequest(source_volume_id=source.volume_id))
    assert [(e.snapshot.snapshot_id, e.snapshot.source_volume_id) for e in listed.entries] == [
        (snapshot.snapshot_id, source.volume_id)
    ]
    got = controller.stub.GetSnapshot(csi_pb2.GetSnapshotRequest(snapshot_id=snapshot.snapshot_id)).snapshot
    assert got.source_volume_id == source.volume_id

    plain = controller.create("pvc-gone-too")
    plain_snapshot = wait_ready(controller, "snap-orphan", plain.volume_id)
    controller.delete(plain.volume_id)
    assert not any(fs["FileSystemId"] == plain.volume_id.split(":")[1] for fs in file_systems(reference))
    listed = controller.stub.ListSnapshots(
        csi_pb2.ListSnapshotsRequest(snapshot_id=plain_snapshot.snapshot_id)
    )
    assert [e.snapshot.snapshot_id for e in listed.entries] == [plain_snapshot.snapshot_id]
    assert listed.entries[0].snapshot.ready_to_use
    restored = controller.create("pvc-from-orphan", volume_content_source=from_snapshot(snapshot.snapshot_id))
    assert (Path(fs_of(reference, restored.volume_id)["DataDir"]) / "kept.txt").read_text() == "survives"


def test_failed_snapshot_is_an_error_and_is_cleaned_up(controller, reference):
    source = controller.create("pvc-snapfail")
    reference.admin.set_faults([], create_failed_rate=1.0)
    first = controller.stub.CreateSnapshot(snapshot_request("snap-doomed", source.volume_id)).snapshot
    assert not first.ready_to_use
    eventually(
        lambda: reference.admin.state()["Snapshots"][0]["Status"] == "create-failed",
        what="the snapshot to fail",
    )
    # A failed snapshot can never seed a volume: the source is unusable, not "not ready".
    err = rpc_error(
        controller.stub.CreateVolume,
        create_request("pvc-from-failed", volume_content_source=from_snapshot(first.snapshot_id)),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "create-failed" in err.details()
    assert len(file_systems(reference)) == 1
    # Keep calling like the snapshotter: the failure surfaces as an error, never as "not ready".
    with pytest.raises(grpc.RpcError) as err:
        wait_ready(controller, "snap-doomed", source.volume_id)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert first.snapshot_id in err.value.details() and "create-failed" in err.value.details()
    assert reference.admin.state()["Snapshots"] == []
    reference.admin.set_faults([], create_failed_rate=0.0)
    again = wait_ready(controller, "snap-doomed", source.volume_id)
    assert again.ready_to_use and again.snapshot_id != first.snapshot_id


# ---- ValidateVolumeCapabilities -----------------------------------------------------------------


def test_validate_confirms_only_what_it_checked(controller, reference):
    volume = controller.create("pvc-validate")

    def validate(**fields):
        return controller.stub.ValidateVolumeCapabilities(
            csi_pb2.ValidateVolumeCapabilitiesRequest(
                volume_id=volume.volume_id, volume_capabilities=[MOUNT_CAPABILITY], **fields
            )
        )

    reply = validate(volume_context=volume.volume_context, parameters={"storageType": "SD"})
    assert dict(reply.confirmed.parameters) == {"storageType": "SD"}
    assert dict(reply.confirmed.volume_context) == dict(volume.volume_context)
    for fields, fragment in [
        ({"parameters": {"storagetype": "SD"}}, "unknown parameter 'storagetype'"),
        ({"parameters": {"storageType": "XL"}}, "allowed values: SD, HP"),
        ({"parameters": {"rwPermission": "RO"}}, "rwPermission=RO cannot serve access mode"),
        ({"mutable_parameters": {"storageType": "HP"}}, "mutable_parameters"),
        ({"volume_context": {**volume.volume_context, "fileSystemId": "cfs-00000000"}}, "volume_context"),
    ]:
        reply = validate(**fields)
        assert not reply.HasField("confirmed"), fields
        assert fragment in reply.message


# ---- ControllerExpandVolume ---------------------------------------------------------------------


def test_expand_needs_a_size_and_never_limits_an_unlimited_file_system(controller, reference):
    unlimited = controller.stub.CreateVolume(
        csi_pb2.CreateVolumeRequest(name="pvc-unlimited", volume_capabilities=[MOUNT_CAPABILITY])
    ).volume
    assert unlimited.capacity_bytes == 0  # unknown / unlimited
    assert fs_of(reference, unlimited.volume_id)["SizeLimit"] == 0
    err = rpc_error(
        controller.stub.ControllerExpandVolume,
        csi_pb2.ControllerExpandVolumeRequest(
            volume_id=unlimited.volume_id, capacity_range=csi_pb2.CapacityRange()
        ),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "capacity_range" in err.details()
    reply = controller.stub.ControllerExpandVolume(
        csi_pb2.ControllerExpandVolumeRequest(
            volume_id=unlimited.volume_id, capacity_range=csi_pb2.CapacityRange(required_bytes=5 * GIB)
        )
    )
    assert reply.capacity_bytes == 5 * GIB and not reply.node_expansion_required
    assert fs_of(reference, unlimited.volume_id)["SizeLimit"] == 0  # still unlimited


# ---- managed permission groups under concurrency ------------------------------------------------


def test_two_controllers_first_volumes_of_one_rule_set_share_one_group(tmp_path, reference):
    # Two StorageClasses with the same rules (but another storage type) and two controllers
    # without a shared cache race to create the first volumes.
    rules = {"allowedClients": "10.40.0.0/16,10.41.0.7", "rwPermission": "RO"}
    read_only = [READ_ONLY_CAPABILITY]
    with (
        serving_controller(tmp_path / "a", reference) as first,
        serving_controller(tmp_path / "b", reference) as second,
        ThreadPoolExecutor(4) as pool,
    ):
        jobs = [
            (first, "pvc-c1", {**rules, "storageType": "SD"}),
            (second, "pvc-c2", {**rules, "storageType": "HP"}),
            (first, "pvc-c3", {**rules, "storageType": "HP"}),
            (second, "pvc-c4", {**rules, "storageType": "SD"}),
        ]
        volumes = list(
            pool.map(lambda job: job[0].create(job[1], job[2], volume_capabilities=read_only), jobs)
        )
        (group,) = managed_groups(reference)
        assert {fs_of(reference, v.volume_id)["PGroup"]["PGroupId"] for v in volumes} == {group["PGroupId"]}
        group_rules = sorted(
            (r["AuthClientIp"], r["Priority"])
            for r in reference.admin.state()["Rules"]
            if r["PGroupId"] == group["PGroupId"]
        )
        assert group_rules == [("10.40.0.0/16", 1), ("10.41.0.7", 2)]
        controllers = [first, second, first, second]
        list(pool.map(lambda pair: pair[0].delete(pair[1].volume_id), zip(controllers, volumes, strict=True)))
    assert file_systems(reference) == [] and managed_groups(reference) == []


# ---- try-locks --------------------------------------------------------------------------------


def test_every_mutating_rpc_on_a_busy_object_is_aborted_at_once(controller, reference):
    volume = controller.create("pvc-locked")
    snapshot = wait_ready(controller, "snap-locked", volume.volume_id)
    calls = [
        (
            controller.stub.DeleteVolume,
            csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id),
            volume.volume_id,
        ),
        (
            controller.stub.ControllerExpandVolume,
            csi_pb2.ControllerExpandVolumeRequest(
                volume_id=volume.volume_id, capacity_range=csi_pb2.CapacityRange(required_bytes=GIB)
            ),
            volume.volume_id,
        ),
        (controller.stub.CreateSnapshot, snapshot_request("snap-locked", volume.volume_id), "snap-locked"),
        (
            controller.stub.DeleteSnapshot,
            csi_pb2.DeleteSnapshotRequest(snapshot_id=snapshot.snapshot_id),
            snapshot.snapshot_id,
        ),
    ]
    for call, request, key in calls:
        with controller.servicer.locks.hold(key):
            err = rpc_error(call, request)
        assert err.code() == grpc.StatusCode.ABORTED and key in err.details()
    assert fs_of(reference, volume.volume_id)["LifeCycleState"] == "available"
    assert [s["SnapshotId"] for s in reference.admin.state()["Snapshots"]] == [snapshot.snapshot_id]


def test_a_snapshot_still_being_created_is_deleted_once_it_is_deletable(controller, reference):
    """CSI DeleteSnapshot of a snapshot still being cut succeeds: the plugin waits for it within
    the call's deadline; ABORTED only when the deadline is too short, and nothing is lost."""
    source = controller.create("pvc-snap-del")
    reference.admin.configure(create_delay=2.0)
    snapshot = controller.stub.CreateSnapshot(snapshot_request("snap-del", source.volume_id)).snapshot
    assert not snapshot.ready_to_use
    request = csi_pb2.DeleteSnapshotRequest(snapshot_id=snapshot.snapshot_id)
    err = rpc_error(lambda r: controller.stub.DeleteSnapshot(r, timeout=0.3), request)
    assert err.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED), err
    assert [s["SnapshotId"] for s in reference.admin.state()["Snapshots"]] == [snapshot.snapshot_id]
    controller.stub.DeleteSnapshot(request, timeout=30)
    assert reference.admin.state()["Snapshots"] == []
    controller.stub.DeleteSnapshot(request, timeout=30)  # idempotent
