"""The node plugin on a real kernel: NFS mounts by Debian's kernel in a QEMU guest.

The host side runs in this test module's own network namespace: the reference service with real
nfs-ganesha (NFSv4 and, with rpcbind, NFSv3) at its mount-target addresses, and the real
controller, which provisions the volumes. One guest boot then runs the real `cfs-csi-driver
--mode node` against those volume contexts (tests/vm/guest_calls.py): stage, publish read-write
and read-only, write and read, stats, unpublish and unstage, each twice, for a filesystem-mode
volume over NFSv4.0 and NFSv3, a subdir-mode volume, a static PV and a volume restored from a
snapshot; and the permission-group rules as a real NFS client meets them. The tests below assert
on what the guest observed and on the reference's data directories.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cfs_csi.csipb import csi_pb2
from cfs_demo.guest import Guest, missing
from tests.support.csi import (
    MOUNT_CAPABILITY,
    READ_ONLY_CAPABILITY,
    data_dir,
    wait_ready,
)
from tests.support.reference import call, sdk_client
from tests.support.vm_node import Plan, capability, nfs_host, run_plan

GANESHA = shutil.which("ganesha.nfsd")
VM_MISSING = missing()
pytestmark = [
    pytest.mark.nfs,
    pytest.mark.slow,
    pytest.mark.skipif(VM_MISSING is not None, reason=VM_MISSING or ""),
    pytest.mark.skipif(
        GANESHA is None or shutil.which("rpcbind") is None, reason="needs nfs-ganesha and rpcbind"
    ),
]

KUBELET = "/var/lib/kubelet"
DRIVER = "cfs.csi.tencentcloud.com"
VENDOR_V4 = ("vers=4.0", "hard", "timeo=600", "retrans=2", "noresvport")
VENDOR_V3 = ("vers=3", "hard", "nolock", "proto=tcp", "timeo=600", "retrans=2", "noresvport")
HOST_FILE, HOST_TEXT = "from-host.txt", "written on the host\n"
GUEST_TEXT = "written through the kernel of the guest\n"
NOBODY = 65534
LISTED_CLIENTS = ("fs-v4", "fs-v3")  # volumes whose client list the host reads mid-run
CLIENT_LIST_TIMEOUT = 30.0  # a client's connection may outlive its unmount for a moment
MOUNT_TIMEOUT = 10  # the plugin's bound on every mount, umount and statvfs


class ScenarioPlan(Plan):
    """The steps of this module's scenarios."""

    def volume_round_trip(
        self, name: str, volume_id: str, context: dict[str, str], list_clients: bool
    ) -> None:
        """Stage, publish rw and ro, write and read, stats, unpublish, unstage: each twice;
        `list_clients`: the host lists the file system's clients while mounted and after."""
        staging = f"{KUBELET}/plugins/kubernetes.io/csi/{DRIVER}/{name}/globalmount"
        rw, ro = (
            f"{KUBELET}/pods/pod-{name}-{kind}/volumes/kubernetes.io~csi/{name}/mount"
            for kind in ("rw", "ro")
        )
        stage = {
            "volume_id": volume_id,
            "staging_target_path": staging,
            "volume_capability": capability(),
            "volume_context": context,
        }
        publish = {"volume_id": volume_id, "staging_target_path": staging, "volume_context": context}
        self.shell(f"{name}/prepare", f"mkdir -p {staging} $(dirname {rw}) $(dirname {ro})")
        self.rpc(f"{name}/stage", "NodeStageVolume", **stage)
        self.rpc(f"{name}/stage-again", "NodeStageVolume", **stage)
        self.shell(f"{name}/mounts-staged", "cat /proc/mounts")
        self.rpc(
            f"{name}/publish-rw",
            "NodePublishVolume",
            target_path=rw,
            volume_capability=capability(),
            **publish,
        )
        self.rpc(
            f"{name}/publish-rw-again",
            "NodePublishVolume",
            target_path=rw,
            volume_capability=capability(),
            **publish,
        )
        self.rpc(
            f"{name}/publish-ro",
            "NodePublishVolume",
            target_path=ro,
            readonly=True,
            volume_capability=capability(),
            **publish,
        )
        self.shell(f"{name}/read-host-file", f"cat {rw}/{HOST_FILE}")
        self.shell(f"{name}/write", f"printf '{GUEST_TEXT}' > {rw}/from-guest.txt && sync")
        self.shell(f"{name}/write-ro", f"echo no > {ro}/refused.txt")
        self.shell(f"{name}/read-through-ro", f"cat {ro}/from-guest.txt")
        self.shell(f"{name}/mounts-published", "cat /proc/mounts")
        self.rpc(f"{name}/stats", "NodeGetVolumeStats", volume_id=volume_id, volume_path=rw)
        if list_clients:
            self.handshake(f"{name}/clients-while-mounted")
        self.shell(f"{name}/statvfs", f"stat -f -c '%b %S %c' {rw}")
        for target in (("rw", rw), ("ro", ro)):
            self.rpc(
                f"{name}/unpublish-{target[0]}",
                "NodeUnpublishVolume",
                volume_id=volume_id,
                target_path=target[1],
            )
            self.rpc(
                f"{name}/unpublish-{target[0]}-again",
                "NodeUnpublishVolume",
                volume_id=volume_id,
                target_path=target[1],
            )
        self.rpc(f"{name}/unstage", "NodeUnstageVolume", volume_id=volume_id, staging_target_path=staging)
        self.rpc(
            f"{name}/unstage-again", "NodeUnstageVolume", volume_id=volume_id, staging_target_path=staging
        )
        self.shell(f"{name}/mounts-after", f"cat /proc/mounts; ls -d {rw} {staging} 2>&1; true")
        if list_clients:
            self.handshake(f"{name}/clients-after-unmount")

    def server_failure(
        self, name: str, volume_id: str, context: dict[str, str], other: tuple[str, dict[str, str]]
    ) -> None:
        """The file system's NFS server stops answering while mounted (the host SIGSTOPs its
        ganesha): stats say abnormal, a stage of another volume meanwhile is not held up,
        unpublish and unstage still finish; once the server answers again a stage works."""
        staging, target = staging_of(name), target_of(name, "rw")
        other_id, other_context = other
        mount = {"volume_id": volume_id, "volume_context": context, "volume_capability": capability()}
        self.shell(
            f"{name}/prepare",
            f"mkdir -p {staging} {staging}-again $(dirname {target}) {staging_of(name + '-other')}",
        )
        self.rpc(f"{name}/stage", "NodeStageVolume", staging_target_path=staging, **mount)
        self.rpc(
            f"{name}/publish", "NodePublishVolume", staging_target_path=staging, target_path=target, **mount
        )
        self.shell(f"{name}/write", f"echo before > {target}/before.txt && sync")
        self.handshake(f"{name}/stop-server")

        def meanwhile(plan: Plan) -> None:
            plan.rpc(f"{name}/stats", "NodeGetVolumeStats", volume_id=volume_id, volume_path=target)
            plan.rpc(
                f"{name}/stage-other",
                "NodeStageVolume",
                volume_id=other_id,
                staging_target_path=staging_of(name + "-other"),
                volume_context=other_context,
                volume_capability=capability(),
            )

        self.parallel(f"{name}/meanwhile", meanwhile)
        self.rpc(f"{name}/unpublish", "NodeUnpublishVolume", volume_id=volume_id, target_path=target)
        self.rpc(f"{name}/unstage", "NodeUnstageVolume", volume_id=volume_id, staging_target_path=staging)
        self.shell(f"{name}/mounts-after", "cat /proc/mounts")
        self.handshake(f"{name}/start-server")
        self.rpc(f"{name}/stage-again", "NodeStageVolume", staging_target_path=f"{staging}-again", **mount)
        self.shell(f"{name}/read-again", f"cat {staging}-again/before.txt")
        self.rpc(
            f"{name}/unstage-again",
            "NodeUnstageVolume",
            volume_id=volume_id,
            staging_target_path=f"{staging}-again",
        )
        self.rpc(
            f"{name}/unstage-other",
            "NodeUnstageVolume",
            volume_id=other_id,
            staging_target_path=staging_of(name + "-other"),
        )

    def rule_check(self, name: str, volume_id: str, context: dict[str, str]) -> None:
        """Stage read-write whatever the rules say (as a hand-written static PV could), write as
        root, unstage: what the server allows shows in the outcomes."""
        staging = f"{KUBELET}/plugins/kubernetes.io/csi/{DRIVER}/{name}/globalmount"
        self.shell(f"{name}/prepare", f"mkdir -p {staging}")
        self.rpc(
            f"{name}/stage",
            "NodeStageVolume",
            volume_id=volume_id,
            staging_target_path=staging,
            volume_capability=capability(),
            volume_context=context,
            timeout=60,
        )
        self.shell(f"{name}/write", f"echo root > {staging}/by-root.txt")
        self.rpc(f"{name}/unstage", "NodeUnstageVolume", volume_id=volume_id, staging_target_path=staging)


@dataclass
class World:
    """What the host made, and what the guest saw."""

    clients: dict[str, list[dict[str, Any]]]  # DescribeCfsFileSystemClients at handshakes
    reference: Any
    volumes: dict[str, tuple[str, dict[str, str], Path]]  # name -> (volume id, context, data dir)
    results: dict[str, dict[str, Any]]
    guest_log: str
    plugin_log: str


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("vm")
    guest = Guest(work / "guest")
    with nfs_host(work) as (ref, controller):
        yield build_world(guest, ref, controller)


def build_world(guest: Guest, ref, controller) -> World:
    volumes: dict[str, tuple[str, dict[str, str], Path]] = {}

    def provision(name: str, parameters: dict[str, str], **fields: Any) -> None:
        volume = controller.create(name, parameters, **fields)
        context = dict(volume.volume_context)
        fs_id = context.get("fileSystemId") or volume.volume_id.split(":")[1]
        root = data_dir(ref, fs_id)
        if parameters.get("provisioningMode") == "subdir":
            root = root / context["path"]
        (root / HOST_FILE).write_text(HOST_TEXT)
        volumes[name] = (volume.volume_id, context, root)

    provision("fs-v4", {})
    provision("fs-v3", {"vers": "3"})
    shared = controller.create("shared", {})
    shared_id = shared.volume_id.split(":")[1]
    provision("subdir", {"provisioningMode": "subdir", "fileSystemId": shared_id})
    # A static PV: attributes written by hand for a file system made outside Kubernetes.
    static_target = dict(shared.volume_context)
    volumes["static"] = (
        "static-pv-handle",
        {"server": static_target["server"], "path": "/", "vers": "4"},
        data_dir(ref, shared_id),
    )
    (data_dir(ref, shared_id) / HOST_FILE).write_text(HOST_TEXT)
    # Restored from a snapshot: the host file is in the snapshot, not written afterwards.
    source = controller.create("snap-source", {})
    (data_dir(ref, source.volume_id.split(":")[1]) / HOST_FILE).write_text(HOST_TEXT)
    snapshot = wait_ready(controller, "snap-1", source.volume_id)
    restored = controller.create(
        "restored",
        {},
        volume_content_source=csi_pb2.VolumeContentSource(
            snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=snapshot.snapshot_id)
        ),
    )
    volumes["restored"] = (
        restored.volume_id,
        dict(restored.volume_context),
        data_dir(ref, restored.volume_id.split(":")[1]),
    )

    plan = ScenarioPlan()
    plan.rpc("probe", "Probe")
    for name, (volume_id, context, _) in volumes.items():
        plan.volume_round_trip(name, volume_id, context, list_clients=name in LISTED_CLIENTS)
    # Permission-group rules as a real NFS client meets them. The guest reaches the mount
    # targets from 127.0.0.1 (slirp connects from the host side).
    rules = {
        "rule-ro": {"allowedClients": "127.0.0.1", "rwPermission": "RO"},
        "rule-root-squash": {"allowedClients": "127.0.0.1", "userPermission": "root_squash"},
        "rule-stranger": {"allowedClients": "10.9.9.9"},
    }
    for name, parameters in rules.items():
        read_only = parameters.get("rwPermission") == "RO"
        volume = controller.create(
            name, parameters, volume_capabilities=[READ_ONLY_CAPABILITY] if read_only else [MOUNT_CAPABILITY]
        )
        volumes[name] = (
            volume.volume_id,
            dict(volume.volume_context),
            data_dir(ref, volume.volume_id.split(":")[1]),
        )
        volumes[name][2].chmod(0o777)  # a squashed root may then create files, owned by nobody
        plan.rule_check(name, volume.volume_id, dict(volume.volume_context))
    failing = controller.create("failing", {})
    failing_context = dict(failing.volume_context)
    plan.server_failure(
        "failing", failing.volume_id, failing_context, (volumes["fs-v4"][0], volumes["fs-v4"][1])
    )
    ganesha_pid_file = ref.state_dir / "nfs" / failing_context["server"] / "ganesha.pid"

    def signal_ganesha(signal_number: int) -> None:
        os.kill(int(ganesha_pid_file.read_text().strip()), signal_number)

    api = sdk_client(ref)
    clients_seen: dict[str, list[str]] = {}

    def record_clients(name: str, label: str, until_gone: bool) -> None:
        fs_id = volumes[name][1].get("fileSystemId") or volumes[name][0].split(":")[1]
        deadline = time.monotonic() + CLIENT_LIST_TIMEOUT
        while True:
            listed = call(api, "DescribeCfsFileSystemClients", FileSystemId=fs_id)["ClientList"]
            if bool(listed) != until_gone or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        clients_seen[f"{name}/{label}"] = listed

    handshakes = {
        "failing--stop-server": functools.partial(signal_ganesha, signal.SIGSTOP),
        "failing--start-server": functools.partial(signal_ganesha, signal.SIGCONT),
    }
    for name in LISTED_CLIENTS:
        for label, until_gone in (("clients-while-mounted", False), ("clients-after-unmount", True)):
            handshakes[f"{name}--{label}"] = functools.partial(record_clients, name, label, until_gone)
    run = run_plan(guest, plan, handshakes, "--mount-timeout", str(MOUNT_TIMEOUT))
    return World(clients_seen, ref, volumes, run.results, run.log, run.plugin_log)


def mount_line(mounts: str, path: str) -> list[str] | None:
    for line in mounts.splitlines():
        fields = line.split()
        if fields[1] == path:
            return fields
    return None


VOLUMES = ("fs-v4", "fs-v3", "subdir", "static", "restored")


def outcome(world: World, label: str) -> dict[str, Any]:
    assert label in world.results, (
        f"no outcome for {label}; guest log:\n{world.guest_log}\n{world.plugin_log}"
    )
    return world.results[label]


def ok(world: World, label: str) -> dict[str, Any]:
    result = outcome(world, label)
    assert result.get("code") == "OK", f"{label}: {result}\nplugin log:\n{world.plugin_log[-3000:]}"
    return result


def staging_of(name: str) -> str:
    return f"{KUBELET}/plugins/kubernetes.io/csi/{DRIVER}/{name}/globalmount"


def target_of(name: str, kind: str) -> str:
    return f"{KUBELET}/pods/pod-{name}-{kind}/volumes/kubernetes.io~csi/{name}/mount"


def test_the_plugin_in_the_guest_is_ready(world):
    assert ok(world, "probe")["reply"]["ready"] is True


@pytest.mark.parametrize("name", VOLUMES)
def test_stage_is_a_kernel_nfs_mount_with_the_vendor_options(world, name):
    ok(world, f"{name}/stage")
    ok(world, f"{name}/stage-again")
    _, context, _ = world.volumes[name]
    fields = mount_line(outcome(world, f"{name}/mounts-staged")["stdout"], staging_of(name))
    assert fields is not None, f"{staging_of(name)} is not mounted"
    source, fstype, options = fields[0], fields[2], fields[3].split(",")
    if context.get("vers") == "3":
        assert (source, fstype) == (f"{context['server']}:/{context['fsid']}", "nfs")
        assert set(VENDOR_V3) <= set(options), options
    else:
        assert (source, fstype) == (f"{context['server']}:/{context.get('path', '/').strip('/')}", "nfs4")
        assert set(VENDOR_V4) <= set(options), options


@pytest.mark.parametrize("name", VOLUMES)
def test_publish_binds_read_write_and_read_only(world, name):
    for label in ("publish-rw", "publish-rw-again", "publish-ro"):
        ok(world, f"{name}/{label}")
    mounts = outcome(world, f"{name}/mounts-published")["stdout"]
    staged = mount_line(mounts, staging_of(name))
    rw, ro = mount_line(mounts, target_of(name, "rw")), mount_line(mounts, target_of(name, "ro"))
    assert rw and ro and staged
    assert rw[0] == ro[0] == staged[0]  # binds of the staged mount
    assert rw[3].split(",")[0] == "rw" and ro[3].split(",")[0] == "ro"
    refused = outcome(world, f"{name}/write-ro")
    assert refused["returncode"] != 0 and "Read-only file system" in refused["stderr"]
    assert outcome(world, f"{name}/read-through-ro")["stdout"] == GUEST_TEXT


@pytest.mark.parametrize("name", VOLUMES)
def test_data_crosses_between_the_guest_and_the_export(world, name):
    assert outcome(world, f"{name}/read-host-file")["stdout"] == HOST_TEXT
    assert outcome(world, f"{name}/write")["returncode"] == 0
    written = world.volumes[name][2] / "from-guest.txt"
    assert written.read_text() == GUEST_TEXT
    assert written.stat().st_uid == 0  # no_root_squash, the managed groups' default


@pytest.mark.parametrize("name", VOLUMES)
def test_stats_are_the_mounts_statfs(world, name):
    usage = {u["unit"]: u for u in ok(world, f"{name}/stats")["reply"]["usage"]}
    blocks, block_size, inodes = map(int, outcome(world, f"{name}/statvfs")["stdout"].split())
    assert int(usage["BYTES"]["total"]) == blocks * block_size
    assert int(usage["INODES"]["total"]) == inodes
    assert ok(world, f"{name}/stats")["reply"]["volume_condition"].get("abnormal", False) is False


@pytest.mark.parametrize("name", VOLUMES)
def test_unpublish_and_unstage_remove_the_mounts_and_repeat_as_done(world, name):
    for label in (
        "unpublish-rw",
        "unpublish-rw-again",
        "unpublish-ro",
        "unpublish-ro-again",
        "unstage",
        "unstage-again",
    ):
        ok(world, f"{name}/{label}")
    after = outcome(world, f"{name}/mounts-after")["stdout"]
    for path in (staging_of(name), target_of(name, "rw"), target_of(name, "ro")):
        assert mount_line(after, path) is None
    assert f"cannot access '{target_of(name, 'rw')}'" in after  # the plugin removed its directories


def test_a_read_only_rule_refuses_writes_from_the_kernel_client(world):
    ok(world, "rule-ro/stage")
    refused = outcome(world, "rule-ro/write")
    assert refused["returncode"] != 0 and "Read-only file system" in refused["stderr"], refused
    ok(world, "rule-ro/unstage")


def test_root_squash_maps_the_guest_root_to_nobody(world):
    ok(world, "rule-root-squash/stage")
    assert outcome(world, "rule-root-squash/write")["returncode"] == 0
    owner = (world.volumes["rule-root-squash"][2] / "by-root.txt").stat()
    assert (owner.st_uid, owner.st_gid) == (NOBODY, NOBODY)


def test_a_client_outside_the_rules_cannot_mount_and_gets_a_precise_error(world):
    refused = outcome(world, "rule-stranger/stage")
    assert refused["code"] in ("PERMISSION_DENIED", "NOT_FOUND"), refused
    assert world.volumes["rule-stranger"][1]["server"] in refused["message"]
    # An answer, not a hang: the call would otherwise end DEADLINE_EXCEEDED at its 60 s deadline.


@pytest.mark.parametrize("name", LISTED_CLIENTS)
def test_the_guest_is_a_listed_client_while_mounted(world, name):
    _, context, _ = world.volumes[name]
    listed = world.clients[f"{name}/clients-while-mounted"]
    assert [(c["CfsVip"], c["ClientIp"], c["LinkStatus"]) for c in listed] == [
        (context["server"], "127.0.0.1", 1)
    ]
    assert world.clients[f"{name}/clients-after-unmount"] == []


def test_a_server_that_stops_answering_is_reported_and_cleaned_up_without_blocking_others(world):
    stats = ok(world, "failing/stats")
    assert stats["reply"]["volume_condition"]["abnormal"] is True, stats
    assert "does not answer" in stats["reply"]["volume_condition"]["message"]
    assert (
        f"did not finish within {MOUNT_TIMEOUT}s and was killed"
        in stats["reply"]["volume_condition"]["message"]
    )
    other = ok(world, "failing/stage-other")
    assert other["finished"] < stats["finished"]  # staged while the stats call was still hanging
    ok(world, "failing/unpublish")
    ok(world, "failing/unstage")
    after = outcome(world, "failing/mounts-after")["stdout"]
    assert mount_line(after, staging_of("failing")) is None
    assert mount_line(after, target_of("failing", "rw")) is None
    ok(world, "failing/stage-again")
    assert outcome(world, "failing/read-again")["stdout"] == "before\n"
    ok(world, "failing/unstage-again")
    ok(world, "failing/unstage-other")
