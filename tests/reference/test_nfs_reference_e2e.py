"""End to end through the reference service's API with `--nfs on`: a file system created over
the API is served by ganesha at the IP DescribeMountTargets reports, with its permission group
applied; SizeByte follows the data written over NFS; a file system restored from a snapshot
serves the snapshot's data.

The service runs in a private network namespace (tests.support.netns) so its mount-target
addresses and port 2049 belong to this test alone; the official SDK drives the API.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from cfs_reference.nfs import GaneshaDataPlane
from tests.support import local
from tests.support.netns import NfsClient, nfs_url, private_network
from tests.support.reference import call, running_reference, sdk_client

GANESHA = shutil.which("ganesha.nfsd")
pytestmark = [
    pytest.mark.nfs,
    pytest.mark.slow,
    pytest.mark.skipif(
        GANESHA is None or shutil.which("nfs-cp") is None,
        reason="needs Debian packages nfs-ganesha nfs-ganesha-vfs libnfs-utils",
    ),
]

CLIENT, STRANGER = "127.0.0.2", "127.0.0.3"
VPC = {"NetInterface": "VPC", "VpcId": "vpc-1a2b3c4d", "SubnetId": "subnet-1a2b3c4d"}
# libnfs 4.0 fails NFSv4 writes of more than ~3.8 KB per file (reads are fine), so the data
# is several small files.
FILES = {f"part-{n}.txt": f"{n}" * 3000 for n in range(8)}


def eventually(check: Callable[[], object], what: str):
    """The service applies exports and sizes asynchronously: poll until check() is truthy."""
    return local.eventually(check, what, timeout=30.0, interval=0.1)


def create_file_system(api, name: str, group: str, **extra) -> dict:
    """Create, wait until available; the FileSystemInfo and its mount target."""
    params = {"Zone": "ap-shanghai-fsi-1", "PGroupId": group, "FsName": name, **VPC, **extra}
    fs_id = call(api, "CreateCfsFileSystem", **params)["FileSystemId"]
    eventually(lambda: describe(api, fs_id)["LifeCycleState"] == "available", f"{fs_id} available")
    return call(api, "DescribeMountTargets", FileSystemId=fs_id)["MountTargets"][0]


def describe(api, fs_id: str) -> dict:
    return call(api, "DescribeCfsFileSystems", FileSystemId=fs_id)["FileSystems"][0]


@dataclass(frozen=True)
class Service:
    api: object  # the official SDK's CommonClient
    client: NfsClient  # the address the permission group's one rule admits (rw, no_root_squash)
    stranger: NfsClient  # an address no rule names
    group: str
    rule_id: str


@pytest.fixture
def service(tmp_path):
    """The reference service with --nfs on, in this test's own network namespace."""
    work_dir = tmp_path / "reference"
    try:
        with (
            private_network([CLIENT, STRANGER]) as clients,
            running_reference(work_dir, create_delay=0.05, nfs="on") as reference,
        ):
            api = sdk_client(reference)
            group = call(api, "CreateCfsPGroup", Name="nfs_e2e")["PGroupId"]
            rule_id = call(api, "CreateCfsRule", PGroupId=group, AuthClientIp=CLIENT, Priority=1,
                           RWPermission="rw", UserPermission="no_root_squash")["RuleId"]  # fmt: skip
            yield Service(api, clients[CLIENT], clients[STRANGER], group, rule_id)
    finally:
        # Had the service died without stopping its ganesha processes, reap them the way its
        # next start would (pid files under <state-dir>/nfs).
        leftovers = GaneshaDataPlane(work_dir / "state" / "nfs", binary=GANESHA)
        leftovers.start()
        leftovers.stop()


def test_api_file_system_is_served_sized_and_restored_from_snapshot(service):
    api, client = service.api, service.client
    source = create_file_system(api, "source", service.group)

    # <IpAddress>:/ is the file system (NFSv4), once the service has applied the export.
    eventually(lambda: client.list(nfs_url(source["IpAddress"], "/")).returncode == 0,
               "the export of the new file system")  # fmt: skip
    for name, content in FILES.items():
        written = client.write(nfs_url(source["IpAddress"], f"/{name}"), content)
        assert written.returncode == 0, written.stderr
    refused = service.stranger.list(nfs_url(source["IpAddress"], "/"))
    assert refused.returncode != 0 and "NFS4ERR_ACCESS" in refused.stderr

    total = sum(len(content) for content in FILES.values())
    size = eventually(
        lambda: (s := describe(api, source["FileSystemId"])["SizeByte"]) >= total and s,
        "SizeByte to count the written data",
    )
    assert size == total

    snapshot = call(api, "CreateCfsSnapshot", FileSystemId=source["FileSystemId"],
                    SnapshotName="nfs_e2e")["SnapshotId"]  # fmt: skip
    eventually(
        lambda: (
            call(api, "DescribeCfsSnapshots", SnapshotId=snapshot)["Snapshots"][0]["Status"] == "available"
        ),
        "the snapshot",
    )
    restored = create_file_system(api, "restored", service.group, SnapId=snapshot)
    assert restored["IpAddress"] != source["IpAddress"]

    eventually(lambda: client.list(nfs_url(restored["IpAddress"], "/")).returncode == 0,
               "the export of the restored file system")  # fmt: skip
    for name, content in FILES.items():
        assert client.read(nfs_url(restored["IpAddress"], f"/{name}")).stdout == content


def test_api_rule_group_and_delete_changes_reach_the_export(service):
    api, client = service.api, service.client
    target = create_file_system(api, "rules", service.group)
    root = nfs_url(target["IpAddress"], "/")
    eventually(lambda: client.write(nfs_url(target["IpAddress"], "/rw.txt"), "rw").returncode
               == 0, "the client to write")  # fmt: skip

    call(api, "UpdateCfsRule", PGroupId=service.group, RuleId=service.rule_id, RWPermission="ro")
    read_only_file = nfs_url(target["IpAddress"], "/ro.txt")
    eventually(lambda: "NFS4ERR_ROFS" in client.write(read_only_file, "ro").stderr,
               "the rule change to make the export read-only")  # fmt: skip

    # A group with no rules allows everyone, the stranger included.
    open_group = call(api, "CreateCfsPGroup", Name="nfs_open")["PGroupId"]
    call(api, "UpdateCfsFileSystemPGroup", FileSystemId=target["FileSystemId"],
         PGroupId=open_group)  # fmt: skip
    eventually(lambda: service.stranger.list(root).returncode == 0, "the new group to admit all")

    call(api, "DeleteCfsFileSystem", FileSystemId=target["FileSystemId"])
    eventually(lambda: client.list(root).returncode != 0, "the export to disappear")
