"""Snapshots, restore and clone over real gRPC against the reference CFS service, checking the
reference's state after each step."""

from pathlib import Path

import grpc
import pytest

from cfs_csi.csipb import csi_pb2
from tests.support.csi import (
    GIB,
    create_request,
    file_systems,
    fs_of,
    managed_groups,
    rpc_error,
    serving_controller,
    snapshot_request,
    wait_ready,
)


@pytest.fixture
def controller(tmp_path, reference):
    with serving_controller(tmp_path, reference, create_timeout=20) as running:
        yield running


def snapshots(ref) -> list[dict]:
    return ref.admin.state()["Snapshots"]


def data_dir(ref, volume_id: str) -> Path:
    return Path(fs_of(ref, volume_id)["DataDir"])


def test_snapshot_restore_clone_expand_delete(controller, reference):
    source = controller.create("pvc-src", gib=2)
    (data_dir(reference, source.volume_id) / "hello.txt").write_text("from the source")

    snapshot = wait_ready(controller, "snapshot-1", source.volume_id)
    assert snapshot.ready_to_use and snapshot.snapshot_id.startswith("cfssnap-")
    assert snapshot.source_volume_id == source.volume_id
    assert snapshot.creation_time.seconds > 0
    snaps = snapshots(reference)
    assert [s["SnapshotId"] for s in snaps] == [snapshot.snapshot_id]
    assert snaps[0]["SnapshotName"] == "cfs-csi-snapshot-1"
    # Idempotent by name.
    assert (
        controller.stub.CreateSnapshot(snapshot_request("snapshot-1", source.volume_id)).snapshot.snapshot_id
        == snapshot.snapshot_id
    )
    assert len(snapshots(reference)) == 1

    content = csi_pb2.VolumeContentSource(
        snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=snapshot.snapshot_id)
    )
    restored = controller.create("pvc-restored", gib=2, volume_content_source=content)
    assert restored.content_source.snapshot.snapshot_id == snapshot.snapshot_id
    assert fs_of(reference, restored.volume_id)["SnapId"] == snapshot.snapshot_id
    assert (data_dir(reference, restored.volume_id) / "hello.txt").read_text() == "from the source"

    clone_source = csi_pb2.VolumeContentSource(
        volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=restored.volume_id)
    )
    clone = controller.create("pvc-clone", gib=2, volume_content_source=clone_source)
    assert (data_dir(reference, clone.volume_id) / "hello.txt").read_text() == "from the source"
    assert clone.content_source.volume.volume_id == restored.volume_id
    # The clone's temporary snapshot is gone; the user's snapshot stays.
    assert [s["SnapshotId"] for s in snapshots(reference)] == [snapshot.snapshot_id]
    again = controller.create("pvc-clone", gib=2, volume_content_source=clone_source)
    assert again.volume_id == clone.volume_id
    assert len(file_systems(reference)) == 3

    expanded = controller.stub.ControllerExpandVolume(
        csi_pb2.ControllerExpandVolumeRequest(
            volume_id=clone.volume_id, capacity_range=csi_pb2.CapacityRange(required_bytes=10 * GIB)
        )
    )
    assert expanded.capacity_bytes == 10 * GIB
    assert fs_of(reference, clone.volume_id)["SizeLimit"] == 10

    controller.stub.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest(snapshot_id=snapshot.snapshot_id))
    controller.stub.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest(snapshot_id=snapshot.snapshot_id))
    assert snapshots(reference) == []
    for volume in (clone, restored, source):
        controller.delete(volume.volume_id)
    assert file_systems(reference) == [] and snapshots(reference) == []
    assert managed_groups(reference) == []


def test_snapshot_name_reused_for_other_source_is_already_exists(controller, reference):
    first = controller.create("pvc-a")
    second = controller.create("pvc-b")
    wait_ready(controller, "snap-x", first.volume_id)
    err = rpc_error(controller.stub.CreateSnapshot, snapshot_request("snap-x", second.volume_id))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert len(snapshots(reference)) == 1


@pytest.mark.parametrize(
    "request_fields,code,fragment",
    [
        ({"name": "s"}, "INVALID_ARGUMENT", "source_volume_id missing in request"),
        ({"source_volume_id": "fs:cfs-nothere"}, "INVALID_ARGUMENT", "name missing in request"),
        ({"name": "s", "source_volume_id": "fs:cfs-nothere"}, "NOT_FOUND", "cfs-nothere does not exist"),
        ({"name": "s", "source_volume_id": "garbage"}, "NOT_FOUND", "not found"),
        ({"name": "s", "source_volume_id": "subdir:cfs-abc:dir"}, "INVALID_ARGUMENT", "subdir volume"),
        (
            {"name": "s", "source_volume_id": "fs:cfs-nothere", "parameters": {"retention": "7"}},
            "INVALID_ARGUMENT",
            "unknown snapshot parameter 'retention'",
        ),
    ],
)
def test_create_snapshot_rejects_bad_requests(controller, request_fields, code, fragment):
    err = rpc_error(controller.stub.CreateSnapshot, csi_pb2.CreateSnapshotRequest(**request_fields))
    assert err.code() == getattr(grpc.StatusCode, code)
    assert fragment in err.details()


def test_list_get_and_delete_snapshot_edges(controller, reference):
    volumes = [controller.create(f"pvc-l{n}") for n in range(2)]
    made = [wait_ready(controller, f"snap-{n}", volumes[n % 2].volume_id) for n in range(3)]

    seen, token = [], ""
    while True:
        page = controller.stub.ListSnapshots(
            csi_pb2.ListSnapshotsRequest(max_entries=2, starting_token=token)
        )
        assert len(page.entries) <= 2
        seen += [entry.snapshot.snapshot_id for entry in page.entries]
        token = page.next_token
        if not token:
            break
    assert sorted(seen) == sorted(s.snapshot_id for s in made)

    by_source = controller.stub.ListSnapshots(
        csi_pb2.ListSnapshotsRequest(source_volume_id=volumes[0].volume_id)
    )
    assert sorted(e.snapshot.snapshot_id for e in by_source.entries) == sorted(
        s.snapshot_id for s in made if s.source_volume_id == volumes[0].volume_id
    )
    by_id = controller.stub.ListSnapshots(csi_pb2.ListSnapshotsRequest(snapshot_id=made[1].snapshot_id))
    assert [e.snapshot.snapshot_id for e in by_id.entries] == [made[1].snapshot_id]
    for request in (
        csi_pb2.ListSnapshotsRequest(snapshot_id="cfssnap-nothere"),
        csi_pb2.ListSnapshotsRequest(snapshot_id="garbage"),
        csi_pb2.ListSnapshotsRequest(source_volume_id="garbage"),
        csi_pb2.ListSnapshotsRequest(source_volume_id="fs:cfs-nothere"),
        csi_pb2.ListSnapshotsRequest(snapshot_id=made[1].snapshot_id, source_volume_id=volumes[0].volume_id),
    ):
        assert list(controller.stub.ListSnapshots(request).entries) == []
    err = rpc_error(controller.stub.ListSnapshots, csi_pb2.ListSnapshotsRequest(starting_token="x"))
    assert err.code() == grpc.StatusCode.ABORTED

    got = controller.stub.GetSnapshot(csi_pb2.GetSnapshotRequest(snapshot_id=made[2].snapshot_id)).snapshot
    assert got.snapshot_id == made[2].snapshot_id and got.ready_to_use
    assert got.source_volume_id == volumes[0].volume_id
    for snapshot_id, code in (("", "INVALID_ARGUMENT"), ("cfssnap-nothere", "NOT_FOUND"), ("x", "NOT_FOUND")):
        err = rpc_error(controller.stub.GetSnapshot, csi_pb2.GetSnapshotRequest(snapshot_id=snapshot_id))
        assert err.code() == getattr(grpc.StatusCode, code)

    err = rpc_error(controller.stub.DeleteSnapshot, csi_pb2.DeleteSnapshotRequest())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    controller.stub.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest(snapshot_id="garbage"))
    controller.stub.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest(snapshot_id="cfssnap-nothere"))


def test_restore_from_missing_snapshot_creates_nothing(controller, reference):
    err = rpc_error(
        controller.stub.CreateVolume,
        create_request(
            "pvc-r",
            volume_content_source=csi_pb2.VolumeContentSource(
                snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id="cfssnap-zzzz")
            ),
        ),
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert file_systems(reference) == []
