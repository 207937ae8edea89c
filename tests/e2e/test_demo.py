"""`python -m cfs_demo` (the README's first command) runs end to end and says what it did."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cfs_demo.guest import missing
from cfs_demo.walkthrough import kernel_has_nfs_client
from tests.support.netns import private_network

GUEST_MISSING = missing()
pytestmark = [
    pytest.mark.nfs,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("ganesha.nfsd") and shutil.which("nfs-cp")),
        reason="the demo serves NFS with nfs-ganesha and reads it with libnfs "
        "(Debian: nfs-ganesha nfs-ganesha-vfs libnfs-utils; `make demo` installs them)",
    ),
]

V4_OPTIONS = "vers=4.0,noresvport,hard,timeo=600,retrans=2"
ORDER = [
    "Start the reference CFS service: ok",
    "Start the controller plugin: ok",
    "Start the node plugin: ok, cfs-csi-driver --mode node, node id demo-node, topology "
    "{'topology.cfs.csi.tencentcloud.com/zone': 'ap-shanghai-fsi-1'}",
    "CreateVolume demo-volume: ok",
    "NodeStageVolume:",
    "NodePublishVolume:",
    "Write and read a file: ok, hello-cfs.txt = 'hello from the cfs-csi demo'",
    "NodeGetVolumeStats:",
    "CreateSnapshot: ok",
    "CreateVolume demo-restored from snapshot cfssnap-",
    "Read the file from the restored volume: ok, hello-cfs.txt = 'hello from the cfs-csi demo'",
    "ControllerExpandVolume: ok, 20 GiB",
    "NodeUnpublishVolume: ok",
    "NodeUnstageVolume: ok",
    "DeleteSnapshot: ok",
    "DeleteVolume: ok",
    "DeleteVolume: ok",
    "demo finished:",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo as a user runs it, but in a private network namespace so that its mount-target
    addresses and port 2049 cannot collide with anything else on the machine."""
    workdir = tmp_path_factory.mktemp("demo")
    with private_network([]):
        result = subprocess.run(
            [sys.executable, "-m", "cfs_demo", "--workdir", str(workdir), "--node-kernel", "host"],
            capture_output=True,
            text=True,
            timeout=600,
        )
    return workdir, result


def test_demo_walks_every_step_in_order(demo):
    workdir, result = demo
    assert result.returncode == 0, result.stdout + result.stderr
    position = 0
    for expected in ORDER:
        found = result.stdout.find(expected, position)
        assert found >= 0, f"{expected!r} missing after position {position}:\n{result.stdout}"
        position = found + len(expected)
    numbers = [int(n) for n in re.findall(r"^\[\s*(\d+)\]", result.stdout, re.MULTILINE)]
    assert numbers == list(range(1, len(numbers) + 1))


def test_demo_is_honest_about_the_missing_nfs_client(demo):
    workdir, result = demo
    staging = workdir / "kubelet/plugins/demo-volume/globalmount"
    command = re.search(r"mount -t nfs -o (\S+) (\S+):/ (\S+)", result.stdout)
    assert command, result.stdout
    assert command.group(1) == V4_OPTIONS
    assert command.group(3) == str(staging)
    if kernel_has_nfs_client():
        assert "NodeStageVolume: ok" in result.stdout
        assert "NodePublishVolume: ok" in result.stdout
    else:
        assert "NodeStageVolume: skipped: this machine's kernel has no NFS client" in result.stdout
        assert "mount.nfs: No such device" in result.stdout  # the node really ran mount
        assert "NodeStageVolume: ok" not in result.stdout
        assert "NodePublishVolume: skipped" in result.stdout
        assert "over NFSv4 with libnfs" in result.stdout


def test_demo_leaves_nothing_running_and_logs_no_secrets(demo):
    workdir, result = demo
    leftovers = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(workdir).encode() in cmdline.read_bytes():
                leftovers.append(cmdline.parent.name)
        except OSError:
            continue  # the process ended while we looked
    assert not leftovers, f"processes of the demo still running: {leftovers}"
    for log in [*workdir.glob("*.log")]:
        assert "AKID" not in log.read_text(), f"a SecretId reached {log.name}"
    assert "AKID" not in result.stdout


def test_demo_blames_the_kernel_only_for_a_missing_nfs_client(tmp_path):
    """When NodeStageVolume fails for another reason, the demo fails with the node's answer.

    The demo runs in a bare network namespace (loopback only, no IPv6 address): there the
    reference service cannot bind its mount-target addresses and says so in its log, so the
    node's probe of port 2049 fails before any mount is tried.
    """
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [
            "unshare",
            "-n",
            "sh",
            "-c",
            'ip link set lo up && exec "$@"',
            "sh",
            sys.executable,
            "-m",
            "cfs_demo",
            "--workdir",
            str(workdir),
            "--create-delay",
            "0.05",
            "--node-kernel",
            "host",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    reference_log = (workdir / "reference.log").read_text()
    assert "NFS data plane disabled" in reference_log, (
        f"precondition: the reference service served NFS here after all:\n{reference_log}"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "demo FAILED: NodeStageVolume: UNAVAILABLE: NFS server" in result.stdout
    assert "port 2049 is unreachable" in result.stdout
    assert "kernel has no NFS client" not in result.stdout
    assert "NodeStageVolume: skipped" not in result.stdout


@pytest.mark.skipif(GUEST_MISSING is not None, reason=GUEST_MISSING or "")
def test_the_default_demo_mounts_with_a_real_kernel_in_a_vm(tmp_path):
    """Where this kernel has no NFS client but QEMU is installed, `make demo` runs the node
    plugin in a guest with Debian's kernel: every step runs, none is skipped."""
    with private_network([]):
        result = subprocess.run(
            [sys.executable, "-m", "cfs_demo", "--workdir", str(tmp_path / "demo")],
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    if kernel_has_nfs_client():
        assert "by this machine's kernel" in result.stdout
    else:
        assert "in a QEMU guest: Debian's kernel" in result.stdout
        assert "by the guest's kernel" in result.stdout
        assert "in the guest" in result.stdout  # the file went through the pod's mount
    assert result.stdout.rstrip().endswith("demo finished: 17 steps ok, 0 skipped")
