"""Static PVs (hand-written volumeAttributes) and inline ephemeral volumes, no controller involved."""

import grpc
import pytest
from test_node_harness import running_node

SERVER = "127.0.0.1"
FSID = "a1b2c3d4"
V4_OPTIONS = "vers=4.0,noresvport,hard,timeo=600,retrans=2"
V3_OPTIONS = "vers=3,nolock,proto=tcp,noresvport,hard,timeo=600,retrans=2"
EPHEMERAL = {
    "csi.storage.k8s.io/ephemeral": "true",
    "csi.storage.k8s.io/pod.name": "web-0",
    "csi.storage.k8s.io/pod.namespace": "default",
}


@pytest.fixture
def export(tmp_path):
    root = tmp_path / "export"
    (root / "shared" / "logs").mkdir(parents=True)
    return root


@pytest.fixture
def node(tmp_path, export):
    with running_node(
        tmp_path / "node",
        exports={
            f"{SERVER}:/{FSID}/shared": export / "shared",
            f"{SERVER}:/shared/logs": export / "shared" / "logs",
        },
        servers=[SERVER],
    ) as plugin:
        yield plugin


def test_static_pv_stages_and_publishes_from_volume_attributes(node, tmp_path, export):
    # A PV written by hand: volumeHandle is any unique id, the attributes say where CFS is.
    volume_id = "static-cfs-reports"
    attributes = {"server": SERVER, "fsid": FSID, "path": "/shared", "vers": "3", "mountOptions": "noac"}
    staging, target = tmp_path / "staging", tmp_path / "target"
    node.stage(volume_id, staging, attributes, flags=("hard",))
    assert node.mount_commands() == [
        ["mount", "-t", "nfs", "-o", V3_OPTIONS + ",noac", f"{SERVER}:/{FSID}/shared", str(staging)]
    ]
    node.publish(volume_id, staging, target, context=attributes)
    assert node.inside("sh", "-c", f"echo report > {target}/r.txt").returncode == 0
    assert (export / "shared" / "r.txt").read_text() == "report\n"
    node.unpublish(volume_id, target)
    node.unstage(volume_id, staging)
    assert not node.mounted(staging)


def test_inline_volume_mounts_nfs_directly_at_the_target(node, tmp_path, export):
    target = tmp_path / "pod" / "logs"
    context = {"server": SERVER, "path": "/shared", "subPath": "logs", **EPHEMERAL}
    node.publish("csi-inline-1", None, target, context=context)
    assert node.mount_commands() == [
        ["mount", "-t", "nfs", "-o", V4_OPTIONS, f"{SERVER}:/shared/logs", str(target)]
    ]
    assert node.inside("sh", "-c", f"echo line > {target}/app.log").returncode == 0
    assert (export / "shared" / "logs" / "app.log").read_text() == "line\n"
    node.publish("csi-inline-1", None, target, context=context)  # idempotent
    assert len(node.mount_commands()) == 1
    node.unpublish("csi-inline-1", target)
    assert not node.mounted(target) and not target.exists()


def test_read_only_inline_volume_mounts_with_ro(node, tmp_path):
    target = tmp_path / "pod" / "ro"
    context = {"server": SERVER, "path": "/shared/logs", **EPHEMERAL}
    node.publish("csi-inline-2", None, target, context=context, readonly=True)
    assert node.mount_commands()[-1] == [
        "mount",
        "-t",
        "nfs",
        "-o",
        V4_OPTIONS + ",ro",
        f"{SERVER}:/shared/logs",
        str(target),
    ]
    refused = node.inside("sh", "-c", f"echo x > {target}/x")
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    node.unpublish("csi-inline-2", target)


def test_inline_volume_without_server_is_invalid(node, tmp_path):
    with pytest.raises(grpc.RpcError) as caught:
        node.publish("csi-inline-3", None, tmp_path / "t", context={"path": "/", **EPHEMERAL})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "volume context has no 'server'" in caught.value.details()
