"""The API drives the real NFS data plane: file systems created, restored from a snapshot, moved
between permission groups and deleted through the SDK are served (or refused) by nfs-ganesha at
the mount-target IP, read with libnfs (the kernel here has no NFS client)."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.local import eventually
from tests.support.reference import call, running_reference, sdk_client

pytestmark = [
    pytest.mark.nfs,
    pytest.mark.skipif(
        not (shutil.which("ganesha.nfsd") and shutil.which("nfs-cat")),
        reason="needs nfs-ganesha (ganesha.nfsd) and libnfs-utils (nfs-cat)",
    ),
]


def nfs_cat(ip: str, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["nfs-cat", f"nfs://{ip}//{name}?version=4"], capture_output=True, text=True, timeout=30
    )


def file_system(ref, fs_id: str) -> dict:
    return next(f for f in ref.admin.state()["FileSystems"] if f["FileSystemId"] == fs_id)


def available(cfs, fs_id: str) -> bool:
    return (
        call(cfs, "DescribeCfsFileSystems", FileSystemId=fs_id)["FileSystems"][0]["LifeCycleState"]
        == "available"
    )


def test_api_changes_reach_the_nfs_exports(tmp_path):
    # A pool of our own: ganesha binds <ip>:2049 in this network namespace, so other tests'
    # file systems must not get the same addresses.
    pool = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.0/28"
    with running_reference(tmp_path, create_delay=0.1, nfs="on", extra_args=["--mount-ip-pool", pool]) as ref:
        cfs = sdk_client(ref)
        fs_id = call(
            cfs,
            "CreateCfsFileSystem",
            Zone=f"{ref.region}-1",
            NetInterface="BASIC",
            PGroupId="pgroupbasic",
            FsName="nfs_source",
        )["FileSystemId"]
        assert eventually(lambda: available(cfs, fs_id))
        source = file_system(ref, fs_id)
        Path(source["DataDir"], "greeting.txt").write_text("hello over nfs\n")
        served = eventually(lambda: nfs_cat(source["IpAddress"], "greeting.txt").returncode == 0)
        assert served, nfs_cat(source["IpAddress"], "greeting.txt").stderr
        assert nfs_cat(source["IpAddress"], "greeting.txt").stdout == "hello over nfs\n"

        # a group whose only rule admits another client: our loopback client is refused
        group = call(cfs, "CreateCfsPGroup", Name="nfs_elsewhere")["PGroupId"]
        call(cfs, "CreateCfsRule", PGroupId=group, AuthClientIp="10.99.0.1", Priority=1, RWPermission="RW")
        call(cfs, "UpdateCfsFileSystemPGroup", FileSystemId=fs_id, PGroupId=group)
        assert eventually(lambda: nfs_cat(source["IpAddress"], "greeting.txt").returncode != 0)
        rule = call(cfs, "CreateCfsRule", PGroupId=group, AuthClientIp="127.0.0.0/8", Priority=2)
        assert eventually(lambda: nfs_cat(source["IpAddress"], "greeting.txt").returncode == 0)
        call(cfs, "DeleteCfsRule", PGroupId=group, RuleId=rule["RuleId"])
        assert eventually(lambda: nfs_cat(source["IpAddress"], "greeting.txt").returncode != 0)
        call(cfs, "UpdateCfsFileSystemPGroup", FileSystemId=fs_id, PGroupId="pgroupbasic")

        # a snapshot restored into a new file system is served at the new mount target
        snap = call(cfs, "CreateCfsSnapshot", FileSystemId=fs_id, SnapshotName="nfs_snap")["SnapshotId"]
        assert eventually(
            lambda: (
                call(cfs, "DescribeCfsSnapshots", SnapshotId=snap)["Snapshots"][0]["Status"] == "available"
            )
        )
        restored = call(
            cfs,
            "CreateCfsFileSystem",
            Zone=f"{ref.region}-1",
            NetInterface="BASIC",
            PGroupId="pgroupbasic",
            FsName="nfs_restored",
            SnapId=snap,
        )["FileSystemId"]
        assert eventually(lambda: available(cfs, restored))
        restored_ip = file_system(ref, restored)["IpAddress"]
        assert restored_ip != source["IpAddress"]
        assert eventually(lambda: nfs_cat(restored_ip, "greeting.txt").stdout == "hello over nfs\n")

        # deleting a file system stops serving it
        call(cfs, "DeleteCfsFileSystem", FileSystemId=fs_id)
        assert eventually(lambda: nfs_cat(source["IpAddress"], "greeting.txt").returncode != 0)
        assert not Path(source["DataDir"]).exists()
        assert nfs_cat(restored_ip, "greeting.txt").returncode == 0
