"""A mount helper that never returns is killed at the mount timeout and blocks nothing else.

The hanging `mount -t nfs` is a real process (with a child of its own) started through the
mounter's real command runner; only its stand-in for the kernel's NFS client is a double.
"""

import os
from pathlib import Path

import grpc
import pytest
from test_node_harness import running_node, stage_request, wait_until

SERVER = "127.0.0.1"
MOUNT_TIMEOUT = 8.0  # ample for staging another volume meanwhile, even on a loaded machine


@pytest.fixture
def node(tmp_path):
    export = tmp_path / "export"
    (export / "ok").mkdir(parents=True)
    with running_node(
        tmp_path / "node",
        exports={f"{SERVER}:/ok": export / "ok", f"{SERVER}:/": export},
        servers=[SERVER],
        hanging=[f"{SERVER}:/hang"],
        mount_timeout=MOUNT_TIMEOUT,
    ) as plugin:
        yield plugin


def process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # killed, waiting for its (killed) parent's reaper


def test_hung_mount_is_killed_and_other_volumes_proceed(node, tmp_path):
    hung_staging = tmp_path / "hung" / "globalmount"
    hung = node.stub.NodeStageVolume.future(
        stage_request("fs:cfs-hang0001", hung_staging, {"server": SERVER, "path": "/hang"}), timeout=60
    )
    pid_file = Path(node.config["hung_helper_pids"])
    assert wait_until(pid_file.exists), "the hanging mount helper never started"
    helper_child = int(wait_until(pid_file.read_text))

    # While the mount hangs: the same volume is refused at once, another volume mounts.
    with pytest.raises(grpc.RpcError) as busy:
        node.stage("fs:cfs-hang0001", hung_staging, {"server": SERVER, "path": "/hang"})
    assert busy.value.code() == grpc.StatusCode.ABORTED
    assert "fs:cfs-hang0001" in busy.value.details()
    other = tmp_path / "other" / "globalmount"
    node.stage("fs:cfs-okay0002", other, {"server": SERVER, "path": "/ok"})
    assert not hung.done(), "the hung mount returned before the other volume was staged"
    assert node.mounted(other)

    with pytest.raises(grpc.RpcError) as timed_out:
        hung.result()
    assert timed_out.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert f"did not finish within {MOUNT_TIMEOUT:g}s and was killed" in timed_out.value.details()
    assert wait_until(lambda: process_gone(helper_child)), "the helper's child survived the kill"
    assert not node.mounted(hung_staging)

    # The lock is free again and later operations on other volumes succeed.
    third = tmp_path / "third" / "globalmount"
    node.stage("fs:cfs-okay0003", third, {"server": SERVER, "path": "/"})
    assert node.mounted(third)
    for volume_id, staging in (
        ("fs:cfs-okay0002", other),
        ("fs:cfs-okay0003", third),
        ("fs:cfs-hang0001", hung_staging),
    ):
        node.unstage(volume_id, staging)
    assert not os.path.exists(hung_staging)
