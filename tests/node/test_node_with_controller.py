"""Controller and node together against the reference CFS service, as the kubelet would use them.

The controller's volume context goes to the node unchanged; the node's `mount -t nfs` double
bind-mounts the reference service's data directory of that file system (test_node_harness.py),
so data written through the pod's bind mount lands in the file system, is snapshotted, and is
read back through a second volume restored from the snapshot.
"""

import pytest
from test_node_harness import running_node, wait_until

from cfs_csi.csipb import csi_pb2
from tests.support.csi import data_dir, serving_controller

V4_OPTIONS = "vers=4.0,noresvport,hard,timeo=600,retrans=2"
V3_OPTIONS = "vers=3,nolock,proto=tcp,noresvport,hard,timeo=600,retrans=2"


@pytest.fixture
def controller(tmp_path, reference):
    with serving_controller(tmp_path, reference, create_timeout=20) as running:
        yield running


def test_write_snapshot_restore_read_through_node_mounts(tmp_path, reference, controller):
    volume = controller.create("pvc-app-data", gib=10)
    server = volume.volume_context["server"]
    volume_dir = data_dir(reference, volume.volume_context["fileSystemId"])
    with running_node(tmp_path / "node", exports={f"{server}:/": volume_dir}, servers=["0.0.0.0"]) as node:
        staging, target = tmp_path / "staging-1", tmp_path / "pod-1"
        node.stage(volume.volume_id, staging, dict(volume.volume_context))
        assert node.mount_commands()[-1] == [
            "mount",
            "-t",
            "nfs",
            "-o",
            V4_OPTIONS,
            f"{server}:/",
            str(staging),
        ]
        node.publish(volume.volume_id, staging, target, context=dict(volume.volume_context))
        written = node.inside("sh", "-c", f"echo 'order 42' > {target}/orders.txt")
        assert written.returncode == 0, written.stderr
        assert (volume_dir / "orders.txt").read_text() == "order 42\n"

        snapshot_request = csi_pb2.CreateSnapshotRequest(
            name="snap-app-data", source_volume_id=volume.volume_id
        )
        snapshot = wait_until(
            lambda: (s := controller.stub.CreateSnapshot(snapshot_request).snapshot).ready_to_use and s
        )  # as external-snapshotter does
        assert snapshot, "the snapshot never became ready"
        restored = controller.create(
            "pvc-app-data-restored",
            gib=10,
            volume_content_source=csi_pb2.VolumeContentSource(
                snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=snapshot.snapshot_id)
            ),
        )
        restored_server = restored.volume_context["server"]
        assert restored_server != server  # its own mount target
        node.add_export(f"{restored_server}:/", data_dir(reference, restored.volume_context["fileSystemId"]))
        staging2, target2 = tmp_path / "staging-2", tmp_path / "pod-2"
        node.stage(restored.volume_id, staging2, dict(restored.volume_context))
        node.publish(
            restored.volume_id, staging2, target2, context=dict(restored.volume_context), readonly=True
        )
        assert node.inside("cat", f"{target2}/orders.txt").stdout == "order 42\n"

        stats = node.stats(restored.volume_id, target2)
        assert not stats.volume_condition.abnormal and stats.usage

        for each, stage_path, pod_path in ((volume, staging, target), (restored, staging2, target2)):
            node.unpublish(each.volume_id, pod_path)
            node.unstage(each.volume_id, stage_path)
            assert not node.mounted(stage_path)
    controller.delete(restored.volume_id)
    controller.delete(volume.volume_id)


def test_nfsv3_volume_mounts_the_fsid_export(tmp_path, reference, controller):
    volume = controller.create("pvc-legacy", parameters={"vers": "3", "mountOptions": "noac"})
    context = dict(volume.volume_context)
    assert context["vers"] == "3" and context["fsid"]
    source = f"{context['server']}:/{context['fsid']}"
    volume_dir = data_dir(reference, context["fileSystemId"])
    with running_node(tmp_path / "node", exports={source: volume_dir}, servers=["0.0.0.0"]) as node:
        staging = tmp_path / "staging"
        node.stage(volume.volume_id, staging, context)
        assert node.mount_commands() == [
            ["mount", "-t", "nfs", "-o", V3_OPTIONS + ",noac", source, str(staging)]
        ]
        node.unstage(volume.volume_id, staging)
    controller.delete(volume.volume_id)
