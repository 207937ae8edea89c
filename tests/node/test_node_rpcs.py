"""Node RPCs over a real unix socket, with real bind mounts in a private mount namespace.

Only `mount -t nfs` is replaced (this kernel has no NFS client): see test_node_harness.py. The
exact NFS mount command line is asserted from the double's log.
"""

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from test_node_harness import ROX, RWOP, capability, running_node

from cfs_csi.contract import TOPOLOGY_ZONE_KEY
from cfs_csi.csipb import csi_pb2

V4_OPTIONS = "vers=4.0,noresvport,hard,timeo=600,retrans=2"
V3_OPTIONS = "vers=3,nolock,proto=tcp,noresvport,hard,timeo=600,retrans=2"
REACHABLE, SECOND, GOING_DOWN, NOTHING_LISTENING = "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.9"
FSID = "z3r6k95r"


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    for name in ("fs-a", "fs-a/data", "fs-a/data/team", "fs-b", "fs-down", "fs-stale"):
        (root / name).mkdir()
    return root


@pytest.fixture(scope="module")
def node(tmp_path_factory, exports):
    with running_node(
        tmp_path_factory.mktemp("node"),
        exports={
            f"{REACHABLE}:/": exports / "fs-a",
            f"{REACHABLE}:/data": exports / "fs-a/data",
            f"{REACHABLE}:/{FSID}/data": exports / "fs-a/data",
            f"{SECOND}:/": exports / "fs-b",
            f"{SECOND}:/stale": exports / "fs-stale",
            f"{GOING_DOWN}:/": exports / "fs-down",
        },
        servers=[REACHABLE, SECOND, GOING_DOWN],
    ) as plugin:
        yield plugin


@pytest.fixture
def paths(tmp_path):
    return tmp_path / "staging" / "globalmount", tmp_path / "pods" / "mount"


def v4(server=REACHABLE, **extra):
    return {"server": server, "path": "/", "vers": "4", **extra}


def assert_status(call, code, *fragments):
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == code, caught.value.details()
    for fragment in fragments:
        assert fragment in caught.value.details()
    return caught.value.details()


def test_capabilities_and_info(node):
    capabilities = node.stub.NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest())
    rpc = csi_pb2.NodeServiceCapability.RPC
    assert {c.rpc.type for c in capabilities.capabilities} == {
        rpc.STAGE_UNSTAGE_VOLUME,
        rpc.GET_VOLUME_STATS,
        rpc.VOLUME_CONDITION,
        rpc.SINGLE_NODE_MULTI_WRITER,
    }
    info = node.stub.NodeGetInfo(csi_pb2.NodeGetInfoRequest())
    assert info.node_id == "node-1"
    assert info.max_volumes_per_node == 0
    assert dict(info.accessible_topology.segments) == {TOPOLOGY_ZONE_KEY: "ap-shanghai-fsi-1"}


def test_full_cycle_v4(node, paths, exports):
    staging, target = paths
    node.stage("fs:cfs-aaaa1111", staging, v4())
    assert node.mount_commands()[-1] == [
        "mount",
        "-t",
        "nfs",
        "-o",
        V4_OPTIONS,
        f"{REACHABLE}:/",
        str(staging),
    ]
    assert node.mounted(staging)

    node.publish("fs:cfs-aaaa1111", staging, target)
    assert node.mounted(target)
    written = node.inside("sh", "-c", f"echo hello > {target}/cycle.txt")
    assert written.returncode == 0, written.stderr
    assert (exports / "fs-a" / "cycle.txt").read_text() == "hello\n"
    assert node.inside("cat", f"{staging}/cycle.txt").stdout == "hello\n"

    stats = node.stats("fs:cfs-aaaa1111", target)
    usage = {u.unit: u for u in stats.usage}
    host = os.statvfs(exports / "fs-a")
    assert usage[csi_pb2.VolumeUsage.BYTES].total == host.f_blocks * host.f_frsize
    assert usage[csi_pb2.VolumeUsage.BYTES].available > 0
    assert usage[csi_pb2.VolumeUsage.INODES].total == host.f_files
    assert not stats.volume_condition.abnormal

    node.unpublish("fs:cfs-aaaa1111", target)
    assert not node.mounted(target) and not target.exists()
    node.unstage("fs:cfs-aaaa1111", staging)
    assert not node.mounted(staging) and not staging.exists()
    assert (exports / "fs-a" / "cycle.txt").exists()  # unmounting never touches the data


def test_v3_mounts_fsid_and_path_with_v3_options(node, paths):
    staging, _ = paths
    node.stage("fs:cfs-bbbb2222", staging, {"server": REACHABLE, "fsid": FSID, "path": "/data", "vers": "3"})
    assert node.mount_commands()[-1] == [
        "mount",
        "-t",
        "nfs",
        "-o",
        V3_OPTIONS,
        f"{REACHABLE}:/{FSID}/data",
        str(staging),
    ]
    node.unstage("fs:cfs-bbbb2222", staging)


def test_user_mount_options_merge_with_defaults(node, paths):
    staging, _ = paths
    node.stage("fs:cfs-cccc3333", staging, v4(mountOptions="noac,timeo=100"), flags=("vers=4.1", "actimeo=3"))
    assert node.mount_commands()[-1] == [
        "mount",
        "-t",
        "nfs",
        "-o",
        "vers=4.1,noresvport,hard,timeo=100,retrans=2,noac,actimeo=3",
        f"{REACHABLE}:/",
        str(staging),
    ]
    node.unstage("fs:cfs-cccc3333", staging)


@pytest.mark.parametrize(
    "flags, context_options, named",
    [
        (("vers=4,exec=x",), "", "mount option 'exec' is not allowed"),
        (("hard;reboot",), "", "mount option 'hard;reboot' is not allowed"),
        ((), "timeo=$(reboot)", "invalid value '$(reboot)' for timeo"),
        ((), "noac, actimeo=3 4", "invalid value '3 4' for actimeo"),
    ],
)
def test_bad_mount_options_are_refused_before_mounting(node, paths, flags, context_options, named):
    staging, _ = paths
    before = len(node.mount_commands())
    assert_status(
        lambda: node.stage("fs:cfs-dddd4444", staging, v4(mountOptions=context_options), flags=flags),
        grpc.StatusCode.INVALID_ARGUMENT,
        named,
    )
    assert len(node.mount_commands()) == before
    assert not node.mounted(staging)


@pytest.mark.parametrize(
    "context, named",
    [
        ({"path": "/"}, "volume context has no 'server'"),
        (v4(server="1.2.3.4;reboot"), "server='1.2.3.4;reboot' is invalid"),
        (v4(vers="2"), "volume context vers='2' is invalid; allowed: 3, 4"),
        ({"server": REACHABLE, "vers": "3"}, "volume context has no 'fsid'"),
        (v4(path="/data/../../etc"), "volume context path 'data/../../etc' is not a safe relative path"),
        (v4(subPath="a b"), "volume context subPath 'a b' is not a safe relative path"),
    ],
)
def test_bad_volume_context_is_invalid_argument(node, paths, context, named):
    staging, _ = paths
    assert_status(
        lambda: node.stage("fs:cfs-eeee5555", staging, context), grpc.StatusCode.INVALID_ARGUMENT, named
    )


def test_missing_fields_and_block_access_are_invalid_argument(node, paths):
    staging, target = paths
    stub = node.stub
    assert_status(
        lambda: stub.NodeStageVolume(csi_pb2.NodeStageVolumeRequest(staging_target_path=str(staging))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "volume_id missing",
    )
    assert_status(
        lambda: stub.NodeStageVolume(
            csi_pb2.NodeStageVolumeRequest(volume_id="v", staging_target_path=str(staging))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "volume_capability missing",
    )
    assert_status(
        lambda: stub.NodePublishVolume(
            csi_pb2.NodePublishVolumeRequest(volume_id="v", staging_target_path=str(staging))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "target_path missing",
    )
    assert_status(
        lambda: stub.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(volume_id="v")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "staging_target_path missing",
    )
    block = csi_pb2.VolumeCapability(
        block=csi_pb2.VolumeCapability.BlockVolume(),
        access_mode=csi_pb2.VolumeCapability.AccessMode(
            mode=csi_pb2.VolumeCapability.AccessMode.MULTI_NODE_MULTI_WRITER
        ),
    )
    for call in (
        lambda: stub.NodeStageVolume(
            csi_pb2.NodeStageVolumeRequest(
                volume_id="v", staging_target_path=str(staging), volume_capability=block, volume_context=v4()
            )
        ),
        lambda: stub.NodePublishVolume(
            csi_pb2.NodePublishVolumeRequest(
                volume_id="v",
                staging_target_path=str(staging),
                target_path=str(target),
                volume_capability=block,
            )
        ),
    ):
        assert_status(call, grpc.StatusCode.INVALID_ARGUMENT, "block access type is not supported")


def test_stage_and_publish_are_idempotent(node, paths):
    staging, target = paths
    before = len(node.mount_commands())
    node.stage("fs:cfs-ffff6666", staging, v4())
    node.stage("fs:cfs-ffff6666", staging, v4())
    assert len(node.mount_commands()) == before + 1
    node.publish("fs:cfs-ffff6666", staging, target)
    node.publish("fs:cfs-ffff6666", staging, target)
    assert node.inside("findmnt", "-n", "-o", "TARGET", str(target)).stdout.count("\n") == 1

    # the same staging path with another source, or the target as read-only: incompatible
    assert_status(
        lambda: node.stage("fs:cfs-ffff6666", staging, v4(server=SECOND)),
        grpc.StatusCode.ALREADY_EXISTS,
        f"already mounted from {REACHABLE}:/",
        f"not {SECOND}:/",
    )
    assert_status(
        lambda: node.publish("fs:cfs-ffff6666", staging, target, readonly=True),
        grpc.StatusCode.ALREADY_EXISTS,
        "not as a read-only bind",
    )

    for _ in range(2):
        node.unpublish("fs:cfs-ffff6666", target)
        node.unstage("fs:cfs-ffff6666", staging)
    assert not staging.exists() and not target.exists()


def test_read_only_publish_refuses_writes(node, paths, exports):
    staging, target = paths
    (exports / "fs-b" / "seed.txt").write_text("seed\n")
    node.stage("fs:cfs-gggg7777", staging, v4(server=SECOND))
    node.publish("fs:cfs-gggg7777", staging, target, readonly=True)
    assert node.inside("cat", f"{target}/seed.txt").stdout == "seed\n"
    refused = node.inside("sh", "-c", f"echo x > {target}/new.txt")
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    # the staging mount itself stays writable for other (read-write) pods
    assert node.inside("sh", "-c", f"echo x > {staging}/rw.txt").returncode == 0
    node.unpublish("fs:cfs-gggg7777", target)
    node.unstage("fs:cfs-gggg7777", staging)


def test_publish_binds_sub_path(node, paths, exports):
    staging, target = paths
    (exports / "fs-a/data/team/inside.txt").write_text("team\n")
    node.stage("subdir:cfs-aaaa1111:data/team", staging, v4())
    node.publish("subdir:cfs-aaaa1111:data/team", staging, target, context=v4(subPath="data/team"))
    assert node.inside("cat", f"{target}/inside.txt").stdout == "team\n"
    stats = node.stats("subdir:cfs-aaaa1111:data/team", target)
    assert not stats.volume_condition.abnormal and len(stats.usage) == 2
    missing = paths[1].parent / "other"
    assert_status(
        lambda: node.publish("subdir:cfs-aaaa1111:nope", staging, missing, context=v4(subPath="nope")),
        grpc.StatusCode.NOT_FOUND,
        "sub-path 'nope' of volume subdir:cfs-aaaa1111:nope is not an accessible directory",
    )
    node.unpublish("subdir:cfs-aaaa1111:data/team", target)
    node.unstage("subdir:cfs-aaaa1111:data/team", staging)


def test_publish_needs_a_staged_volume(node, paths):
    staging, target = paths
    assert_status(
        lambda: node.publish("fs:cfs-hhhh8888", staging, target),
        grpc.StatusCode.FAILED_PRECONDITION,
        f"not staged at {staging}",
    )
    # The spec's code for "staging target path not set"; kubelet's persistent volumes carry
    # csi.storage.k8s.io/ephemeral=false when podInfoOnMount is on.
    for context in ({}, v4(**{"csi.storage.k8s.io/ephemeral": "false"})):
        assert_status(
            lambda context=context: node.publish("fs:cfs-hhhh8888", None, target, context=context),
            grpc.StatusCode.FAILED_PRECONDITION,
            "staging_target_path missing",
            "NodeStageVolume must succeed first",
        )
    assert not target.exists()


def test_unpublish_and_unstage_tolerate_missing_and_unmounted_paths(node, tmp_path):
    missing = tmp_path / "never-created"
    node.unpublish("fs:cfs-iiii9999", missing)
    node.unstage("fs:cfs-iiii9999", missing)
    plain = tmp_path / "plain-dir"
    plain.mkdir()
    node.unpublish("fs:cfs-iiii9999", plain)
    assert not plain.exists()


def test_stats_not_found_for_paths_that_are_not_mounts(node, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert_status(
        lambda: node.stats("fs:cfs-jjjj0000", plain),
        grpc.StatusCode.NOT_FOUND,
        f"volume path {plain} is not a mount point",
    )
    assert_status(
        lambda: node.stats("fs:cfs-jjjj0000", tmp_path / "gone"), grpc.StatusCode.NOT_FOUND, "does not exist"
    )


def test_unreachable_server_fails_fast_with_unavailable(node, paths):
    staging, _ = paths
    before = len(node.mount_commands())
    assert_status(
        lambda: node.stage("fs:cfs-kkkk1111", staging, v4(server=NOTHING_LISTENING)),
        grpc.StatusCode.UNAVAILABLE,
        f"NFS server {NOTHING_LISTENING} port 2049 is unreachable",
    )
    assert len(node.mount_commands()) == before  # no mount was attempted


@pytest.fixture
def stale_export(node, exports, request):
    """An export of its own at SECOND:/<test name>, which the test can make stale."""
    name = request.node.name.replace("[", "-").rstrip("]")
    (exports / name).mkdir()
    node.add_export(f"{SECOND}:/{name}", exports / name)
    return exports / name, v4(server=SECOND, path=f"/{name}")


def test_stale_handles_are_abnormal_then_mounted_again(node, paths, stale_export):
    staging, target = paths
    export, context = stale_export
    node.stage("fs:cfs-llll3333", staging, context)
    node.publish("fs:cfs-llll3333", staging, target)
    node.make_stale(export)
    for path in (target, staging):  # the kubelet asks with either path
        stats = node.stats("fs:cfs-llll3333", path)
        assert stats.volume_condition.abnormal
        assert "stale NFS file handle" in stats.volume_condition.message
    before = len(node.mount_commands())

    # The kubelet (after a restart) stages again: the stale staging mount is replaced.
    node.stage("fs:cfs-llll3333", staging, context)
    assert len(node.mount_commands()) == before + 1
    assert not node.stats("fs:cfs-llll3333", staging).volume_condition.abnormal
    # Publishing at the same target again replaces the stale bind as well.
    node.publish("fs:cfs-llll3333", staging, target)
    assert not node.stats("fs:cfs-llll3333", target).volume_condition.abnormal
    assert node.inside("sh", "-c", f"echo fresh > {target}/f.txt").returncode == 0
    assert (export / "f.txt").read_text() == "fresh\n"
    assert node.inside("findmnt", "-n", "-o", "TARGET", str(target)).stdout.count("\n") == 1

    # A new pod's publish on a stale staged mount heals it without a NodeStageVolume.
    node.make_stale(export)
    second_target = target.parent / "second-pod"
    node.publish("fs:cfs-llll3333", staging, second_target, context=context)
    assert len(node.mount_commands()) == before + 2
    assert node.inside("cat", f"{second_target}/f.txt").returncode != 0  # the new directory
    assert not node.stats("fs:cfs-llll3333", second_target).volume_condition.abnormal

    # unpublish / unstage clean up stale mounts too
    node.make_stale(export)
    for pod_path in (target, second_target):
        node.unpublish("fs:cfs-llll3333", pod_path)
        assert not node.mounted(pod_path) and not pod_path.exists()
    node.unstage("fs:cfs-llll3333", staging)
    assert not node.mounted(staging) and not staging.exists()


def test_unreachable_server_after_staging_is_an_abnormal_condition(node, paths):
    staging, target = paths
    node.stage("fs:cfs-mmmm3333", staging, v4(server=GOING_DOWN))
    node.publish("fs:cfs-mmmm3333", staging, target)
    assert not node.stats("fs:cfs-mmmm3333", target).volume_condition.abnormal
    node.take_down(GOING_DOWN)  # returns once nothing listens on GOING_DOWN:2049
    stats = node.stats("fs:cfs-mmmm3333", target)
    assert stats.volume_condition.abnormal
    assert f"NFS server {GOING_DOWN} port 2049 is unreachable" in stats.volume_condition.message
    assert not stats.usage
    node.unpublish("fs:cfs-mmmm3333", target)
    node.unstage("fs:cfs-mmmm3333", staging)


def test_paths_are_only_visible_inside_the_plugin_namespace(node, paths):
    staging, _ = paths
    node.stage("fs:cfs-nnnn4444", staging, v4())
    host_mounts = Path("/proc/self/mountinfo").read_text()
    assert str(staging) not in host_mounts
    node.unstage("fs:cfs-nnnn4444", staging)


def test_paths_with_blanks_are_found_in_the_mount_table(node, tmp_path):
    # mountinfo escapes blanks as \040; the node must still recognise its own mounts.
    staging, target = tmp_path / "staging dir" / "global\tmount", tmp_path / "pod dir" / "mount"
    node.stage("fs:cfs-oooo5555", staging, v4())
    node.stage("fs:cfs-oooo5555", staging, v4())  # idempotent only if the mount is found
    node.publish("fs:cfs-oooo5555", staging, target)
    assert not node.stats("fs:cfs-oooo5555", target).volume_condition.abnormal
    node.unpublish("fs:cfs-oooo5555", target)
    node.unstage("fs:cfs-oooo5555", staging)
    assert not staging.exists() and not target.exists()


def test_busy_target_is_detached_with_a_lazy_unmount(node, paths):
    staging, target = paths
    node.stage("fs:cfs-pppp6666", staging, v4())
    node.publish("fs:cfs-pppp6666", staging, target)
    # A process working inside the volume makes a plain umount fail with "target is busy".
    busy = subprocess.Popen(
        [
            "nsenter",
            "-t",
            str(node.pid),
            "-m",
            "--",
            sys.executable,
            "-c",
            "import os, sys, time; os.chdir(sys.argv[1]); print('in', flush=True); time.sleep(60)",
            str(target),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert busy.stdout.readline() == "in\n"
        assert node.inside("umount", str(target)).returncode != 0  # really busy
        node.unpublish("fs:cfs-pppp6666", target)
        assert not node.mounted(target) and not target.exists()
    finally:
        busy.kill()
        busy.wait()
    node.unstage("fs:cfs-pppp6666", staging)
    assert not node.mounted(staging)


def test_refused_mount_is_permission_denied_with_the_command(node, paths):
    staging, _ = paths
    details = assert_status(
        lambda: node.stage("fs:cfs-qqqq7777", staging, v4(path="/not-exported")),
        grpc.StatusCode.PERMISSION_DENIED,
        "access denied by server",
        "permission group does not allow this node",
    )
    assert f"mount -t nfs -o {V4_OPTIONS} {REACHABLE}:/not-exported {staging}" in details
    assert not node.mounted(staging)


def test_missing_export_path_is_not_found(node, paths, exports):
    staging, _ = paths
    node.add_export(f"{REACHABLE}:/removed", exports / "never-created")
    assert_status(
        lambda: node.stage("fs:cfs-qqqq8888", staging, v4(path="/removed")),
        grpc.StatusCode.NOT_FOUND,
        f"/removed does not exist on NFS server {REACHABLE}",
        "No such file or directory",
    )
    assert not node.mounted(staging)


def test_staging_path_that_is_a_file_is_an_internal_error(node, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    assert_status(
        lambda: node.stage("fs:cfs-rrrr8888", blocker / "globalmount", v4()),
        grpc.StatusCode.INTERNAL,
        "Not a directory",
    )


def test_reader_only_access_modes_stage_and_publish_read_only(node, paths, exports):
    # A ReadOnlyMany PV: the kubelet sends MULTI_NODE_READER_ONLY with readonly=false.
    staging, target = paths
    (exports / "fs-b" / "rox.txt").write_text("rox\n")
    node.stage("fs:cfs-ssss9999", staging, v4(server=SECOND), mode=ROX)
    assert node.mount_commands()[-1] == [
        "mount",
        "-t",
        "nfs",
        "-o",
        V4_OPTIONS + ",ro",
        f"{SECOND}:/",
        str(staging),
    ]
    node.publish("fs:cfs-ssss9999", staging, target, mode=ROX)
    assert node.inside("cat", f"{target}/rox.txt").stdout == "rox\n"
    for path in (target, staging):
        refused = node.inside("sh", "-c", f"echo x > {path}/new.txt")
        assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    node.publish("fs:cfs-ssss9999", staging, target, mode=ROX)  # idempotent
    # staged read-only: a writer cannot be published from it, nor staged over it
    assert_status(
        lambda: node.publish("fs:cfs-ssss9999", staging, target.parent / "writer"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "is staged read-only",
        "cannot be published read-write",
    )
    assert_status(
        lambda: node.stage("fs:cfs-ssss9999", staging, v4(server=SECOND)),
        grpc.StatusCode.ALREADY_EXISTS,
        "already mounted read-only",
        "not read-write",
    )
    node.unpublish("fs:cfs-ssss9999", target)
    node.unstage("fs:cfs-ssss9999", staging)
    assert not (target.parent / "writer").exists()
    # a PV's own `rw` cannot overrule the access mode
    assert_status(
        lambda: node.stage("fs:cfs-ssss9999", staging, v4(server=SECOND), flags=("rw",), mode=ROX),
        grpc.StatusCode.INVALID_ARGUMENT,
        "mount option 'rw' contradicts the read-only request",
    )


def test_kubernetes_context_keys_pass_and_unknown_keys_are_named(node, paths):
    staging, target = paths
    kubernetes_keys = {
        "csi.storage.k8s.io/pod.name": "web-0",
        "csi.storage.k8s.io/pod.namespace": "default",
        "csi.storage.k8s.io/pod.uid": "1f0e",
        "csi.storage.k8s.io/serviceAccount.name": "default",
        "csi.storage.k8s.io/ephemeral": "false",
        "storage.kubernetes.io/csiProvisionerIdentity": "1700000000000-8081-cfs.csi.tencentcloud.com",
    }
    context = v4(fileSystemId="cfs-tttt0000", **kubernetes_keys)
    node.stage("fs:cfs-tttt0000", staging, context)
    node.publish("fs:cfs-tttt0000", staging, target, context=context)
    assert node.mounted(target)
    node.unpublish("fs:cfs-tttt0000", target)
    node.unstage("fs:cfs-tttt0000", staging)
    # a typo in a static PV's volumeAttributes would otherwise silently mount the root
    assert_status(
        lambda: node.stage("fs:cfs-tttt0000", staging, v4(subpath="team-a")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "volume context key 'subpath' is unknown",
        "allowed keys: server, fsid, path, vers, fileSystemId, mountOptions, subPath",
    )
    assert not node.mounted(staging)


def test_capabilities_the_node_cannot_honour_are_invalid_argument(node, paths):
    staging, _ = paths
    no_access_type = csi_pb2.VolumeCapability(access_mode=capability().access_mode)
    with_group = capability()
    with_group.mount.volume_mount_group = "2000"
    block_fs_type = capability()
    block_fs_type.mount.fs_type = "ext4"
    for cap, named in (
        (no_access_type, "volume_capability.access_type missing in request; allowed: mount"),
        (with_group, "volume_capability.mount.volume_mount_group is not supported"),
        (
            block_fs_type,
            "volume_capability.mount.fs_type 'ext4' is not supported "
            "(CFS volumes are NFS); allowed: empty, nfs, nfs4",
        ),
    ):
        assert_status(
            lambda cap=cap: node.stub.NodeStageVolume(
                csi_pb2.NodeStageVolumeRequest(
                    volume_id="fs:cfs-uuuu1111",
                    staging_target_path=str(staging),
                    volume_capability=cap,
                    volume_context=v4(),
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            named,
        )
    assert not node.mounted(staging)


def test_node_does_not_offer_expansion_or_volume_mount_group(node):
    rpc = csi_pb2.NodeServiceCapability.RPC
    advertised = {
        c.rpc.type for c in node.stub.NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest()).capabilities
    }
    assert not advertised & {rpc.EXPAND_VOLUME, rpc.VOLUME_MOUNT_GROUP}
    assert_status(
        lambda: node.stub.NodeExpandVolume(
            csi_pb2.NodeExpandVolumeRequest(volume_id="fs:cfs-vvvv2222", volume_path="/x")
        ),
        grpc.StatusCode.UNIMPLEMENTED,
    )


def test_pods_of_one_volume_publish_concurrently(node, paths):
    # A Deployment's replicas on one node: one staged volume, several targets at once.
    staging, target = paths
    node.stage("fs:cfs-wwww3333", staging, v4())
    targets = [target.parent / f"replica-{n}" for n in range(8)]
    calls = [
        node.stub.NodePublishVolume.future(
            csi_pb2.NodePublishVolumeRequest(
                volume_id="fs:cfs-wwww3333",
                staging_target_path=str(staging),
                target_path=str(each),
                volume_capability=capability(),
            ),
            timeout=30,
        )
        for each in targets
    ]
    for call in calls:
        call.result()  # none is ABORTED: each holds only its own target
    assert all(node.mounted(each) for each in targets)
    for each in targets:
        node.unpublish("fs:cfs-wwww3333", each)
    node.unstage("fs:cfs-wwww3333", staging)


def test_relative_paths_are_invalid_argument(node, paths):
    staging, target = paths
    stub = node.stub
    calls = [
        ("staging_target_path", lambda: node.stage("fs:cfs-xxxx4444", Path("rel/globalmount"), v4())),
        ("target_path", lambda: node.publish("fs:cfs-xxxx4444", staging, Path("rel/mount"))),
        ("staging_target_path", lambda: node.publish("fs:cfs-xxxx4444", Path("rel/gm"), target)),
        ("target_path", lambda: node.unpublish("fs:cfs-xxxx4444", Path("rel/mount"))),
        ("staging_target_path", lambda: node.unstage("fs:cfs-xxxx4444", Path("rel/gm"))),
    ]
    for field, call in calls:
        assert_status(call, grpc.StatusCode.INVALID_ARGUMENT, f"{field} 'rel/", "is not an absolute path")
    assert node.inside("test", "-e", f"/proc/{node.pid}/cwd/rel").returncode != 0
    # Stats of a path that does not exist is NOT_FOUND whatever the path's form (CSI).
    for missing in ("rel/mount", "/no/such\0path", "/no/such/path"):
        assert_status(
            lambda missing=missing: stub.NodeGetVolumeStats(
                csi_pb2.NodeGetVolumeStatsRequest(volume_id="fs:cfs-xxxx4444", volume_path=missing)
            ),
            grpc.StatusCode.NOT_FOUND,
            "does not exist",
        )


def test_read_write_once_pod_volume_is_published_once(node, paths):
    staging, target = paths
    second = target.parent / "second-pod"
    node.stage("fs:cfs-yyyy5555", staging, v4(), mode=RWOP)
    node.publish("fs:cfs-yyyy5555", staging, target, mode=RWOP)
    node.publish("fs:cfs-yyyy5555", staging, target, mode=RWOP)  # idempotent
    assert_status(
        lambda: node.publish("fs:cfs-yyyy5555", staging, second, mode=RWOP),
        grpc.StatusCode.FAILED_PRECONDITION,
        "SINGLE_NODE_SINGLE_WRITER",
        f"already published at {target}",
    )
    assert not node.mounted(second)
    node.unpublish("fs:cfs-yyyy5555", target)
    node.publish("fs:cfs-yyyy5555", staging, second, mode=RWOP)  # the pod moved
    node.unpublish("fs:cfs-yyyy5555", second)
    node.unstage("fs:cfs-yyyy5555", staging)


def test_paths_outside_the_kubelet_root_are_refused_before_anything_is_touched(node, tmp_path):
    """Probes of issue 13: unpublishing "/" or unstaging /etc once unmounted the host's root;
    now every such call is INVALID_ARGUMENT naming the rule, and nothing is unmounted."""
    mounts_before = node.inside("cat", "/proc/self/mountinfo").stdout
    outside = tmp_path / "escape"
    outside.symlink_to("/etc")
    probes = [
        (lambda: node.unpublish("fs:cfs-zzzz0001", Path("/")), "is outside the kubelet directory"),
        (lambda: node.unstage("fs:cfs-zzzz0002", Path("/etc")), "is outside the kubelet directory"),
        (lambda: node.unpublish("fs:cfs-zzzz0003", tmp_path / "a" / ".." / "b"), "is not a normalised path"),
        (lambda: node.stage("fs:cfs-zzzz0004", Path(f"{tmp_path}/gm\0x"), v4()), "contains a NUL byte"),
        (lambda: node.unpublish("fs:cfs-zzzz0005", outside), "resolves through a symlink to '/etc'"),
        (
            lambda: node.publish("fs:cfs-zzzz0006", tmp_path / "gm", outside / "mount"),
            "resolves through a symlink",
        ),
    ]
    for call, rule in probes:
        assert_status(call, grpc.StatusCode.INVALID_ARGUMENT, rule)
    assert node.inside("cat", "/proc/self/mountinfo").stdout == mounts_before
    assert Path("/etc").is_dir() and outside.is_symlink()
