"""The reference service's NFS data plane, driven directly with ExportSpecs.

Everything is real: ganesha.nfsd processes started by GaneshaDataPlane, libnfs clients
(nfs-cp, nfs-cat, nfs-ls), rpcbind for NFSv3. Each test runs in a private network namespace
(tests.support.netns) where clients have distinct source addresses, so port 2049 and the
mount-target addresses never collide with other tests.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from cfs_reference.nfs import (
    DataPlaneError,
    DataPlaneUnavailable,
    ExportRule,
    ExportSpec,
    GaneshaDataPlane,
    NullDataPlane,
    make_data_plane,
)
from cfs_reference.nfs.ganesha_config import ordered_rules
from tests.support.netns import nfs_url, private_network, private_rpcbind

GANESHA = shutil.which("ganesha.nfsd")
pytestmark = [
    pytest.mark.nfs,
    pytest.mark.skipif(
        GANESHA is None or shutil.which("nfs-cp") is None,
        reason="needs Debian packages nfs-ganesha nfs-ganesha-vfs libnfs-utils",
    ),
]

CLIENT_A, CLIENT_B, CLIENT_C = "127.0.0.2", "127.0.0.3", "127.0.0.4"
MOUNT_IP, OTHER_MOUNT_IP = "127.16.0.1", "127.16.0.2"
NOBODY = 65534  # ganesha's default anonymous uid/gid


@pytest.fixture
def clients():
    with private_network([CLIENT_A, CLIENT_B, CLIENT_C]) as by_address:
        yield by_address


@pytest.fixture
def plane(clients, tmp_path):
    data_plane = GaneshaDataPlane(tmp_path / "nfs", binary=GANESHA, watch_interval=0.1)
    data_plane.start()
    try:
        yield data_plane
    finally:
        data_plane.stop()


def file_system(tmp_path: Path, number: int, ip_address: str, *rules: ExportRule) -> ExportSpec:
    data_dir = tmp_path / "data" / f"cfs-{number:08d}"
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o777)  # so squashed users can create files too
    return ExportSpec(f"cfs-{number:08d}", f"fsid{number:04d}", ip_address, data_dir, rules)


def rule(client: str, access: str = "RW", squash: str = "no_root_squash", priority: int = 10):
    return ExportRule(client=client, access=access, squash=squash, priority=priority)


def v4(name: str = "", ip_address: str = MOUNT_IP, uid: int = 0) -> str:
    return nfs_url(ip_address, f"/{name}", uid=uid, gid=uid)


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr


def assert_refused(result: subprocess.CompletedProcess, error: str) -> None:
    assert result.returncode != 0 and error in result.stderr, result.stderr


def test_rw_rule_writes_and_ro_rule_gets_read_only_error(plane, clients, tmp_path):
    spec = file_system(tmp_path, 1, MOUNT_IP, rule(CLIENT_A, "RW"), rule(CLIENT_B, "RO"))
    plane.apply([spec])

    assert_ok(clients[CLIENT_A].write(v4("a.txt"), "from A"))
    assert (spec.data_dir / "a.txt").read_text() == "from A"

    assert_refused(clients[CLIENT_B].write(v4("b.txt"), "from B"), "NFS4ERR_ROFS")
    assert not (spec.data_dir / "b.txt").exists()
    read = clients[CLIENT_B].read(v4("a.txt"))
    assert_ok(read)
    assert read.stdout == "from A"


def test_unlisted_client_is_refused(plane, clients, tmp_path):
    plane.apply([file_system(tmp_path, 1, MOUNT_IP, rule(CLIENT_A))])

    assert_ok(clients[CLIENT_A].list(v4()))
    assert_refused(clients[CLIENT_C].list(v4()), "NFS4ERR_ACCESS")


def test_empty_permission_group_allows_everyone(plane, clients, tmp_path):
    spec = file_system(tmp_path, 1, MOUNT_IP)
    plane.apply([spec])

    for address in (CLIENT_A, CLIENT_C):
        assert_ok(clients[address].write(v4(f"{address}.txt"), address))
    assert sorted(path.name for path in spec.data_dir.iterdir()) == [
        f"{CLIENT_A}.txt",
        f"{CLIENT_C}.txt",
    ]


# (squash mode, owner of a file created as root, owner of a file created as uid 1000)
SQUASH_OWNERS = [
    ("no_root_squash", 0, 1000),
    ("root_squash", NOBODY, 1000),
    ("all_squash", NOBODY, NOBODY),
    ("no_all_squash", 0, 1000),
]


@pytest.mark.parametrize("squash, root_owner, user_owner", SQUASH_OWNERS)
def test_squash_mode_decides_file_ownership(plane, clients, tmp_path, squash, root_owner,
                                           user_owner):  # fmt: skip
    spec = file_system(tmp_path, 1, MOUNT_IP, rule(CLIENT_A, "RW", squash))
    plane.apply([spec])

    assert_ok(clients[CLIENT_A].write(v4("by-root.txt", uid=0), "root"))
    assert_ok(clients[CLIENT_A].write(v4("by-user.txt", uid=1000), "user"))
    for name, owner in (("by-root.txt", root_owner), ("by-user.txt", user_owner)):
        status = (spec.data_dir / name).stat()
        assert (status.st_uid, status.st_gid) == (owner, owner), name


def test_single_ip_beats_cidr_at_equal_priority(plane, clients, tmp_path):
    spec = file_system(
        tmp_path,
        1,
        MOUNT_IP,
        rule("127.0.0.0/24", "RW", priority=10),  # listed first on purpose
        rule(CLIENT_B, "RO", priority=10),
    )
    plane.apply([spec])

    assert_refused(clients[CLIENT_B].write(v4("b.txt"), "B"), "NFS4ERR_ROFS")
    assert_ok(clients[CLIENT_C].write(v4("c.txt"), "C"))


def test_higher_priority_cidr_beats_lower_priority_single_ip(plane, clients, tmp_path):
    spec = file_system(
        tmp_path,
        1,
        MOUNT_IP,
        rule(CLIENT_B, "RW", priority=50),
        rule("127.0.0.0/24", "RO", priority=1),
    )
    plane.apply([spec])

    assert_refused(clients[CLIENT_B].write(v4("b.txt"), "B"), "NFS4ERR_ROFS")


def test_rule_changes_apply_without_restarting_ganesha(plane, clients, tmp_path):
    spec = file_system(tmp_path, 1, MOUNT_IP, rule(CLIENT_A, "RW"))
    plane.apply([spec])
    pid = plane.server_pid(MOUNT_IP)
    assert_ok(clients[CLIENT_A].write(v4("first.txt"), "1"))

    plane.apply([replace(spec, rules=(rule(CLIENT_A, "RO"),))])
    assert_refused(clients[CLIENT_A].write(v4("second.txt"), "2"), "NFS4ERR_ROFS")

    plane.apply([replace(spec, rules=(rule(CLIENT_C, "RW"),))])
    assert_refused(clients[CLIENT_A].list(v4()), "NFS4ERR_ACCESS")
    assert_ok(clients[CLIENT_C].write(v4("third.txt"), "3"))

    assert plane.server_pid(MOUNT_IP) == pid
    os.kill(pid, 0)  # still the same, live process


def test_unchanged_state_is_not_reloaded(plane, tmp_path):
    spec = file_system(tmp_path, 1, MOUNT_IP, rule(CLIENT_A))
    plane.apply([spec])
    log_file = tmp_path / "nfs" / MOUNT_IP / "ganesha.log"
    size = log_file.stat().st_size

    plane.apply([spec])

    assert log_file.stat().st_size == size  # no SIGHUP, nothing re-read


def test_each_mount_target_serves_only_its_file_system(plane, clients, tmp_path):
    first = file_system(tmp_path, 1, MOUNT_IP)
    second = file_system(tmp_path, 2, OTHER_MOUNT_IP)
    plane.apply([first, second])

    assert_ok(clients[CLIENT_A].write(v4("one.txt", MOUNT_IP), "1"))
    assert_ok(clients[CLIENT_A].write(v4("two.txt", OTHER_MOUNT_IP), "2"))
    assert [path.name for path in first.data_dir.iterdir()] == ["one.txt"]
    listing = clients[CLIENT_A].list(v4(ip_address=OTHER_MOUNT_IP))
    assert_ok(listing)
    assert "two.txt" in listing.stdout and "one.txt" not in listing.stdout


def test_deleting_a_file_system_removes_its_export(plane, clients, tmp_path):
    kept = file_system(tmp_path, 1, MOUNT_IP)
    deleted = file_system(tmp_path, 2, OTHER_MOUNT_IP)
    plane.apply([kept, deleted])
    kept_pid = plane.server_pid(MOUNT_IP)
    deleted_pid = plane.server_pid(OTHER_MOUNT_IP)

    plane.apply([kept])

    assert_refused(clients[CLIENT_A].list(v4(ip_address=OTHER_MOUNT_IP)), "Failed to mount")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((OTHER_MOUNT_IP, 2049), timeout=5).close()
    assert not Path(f"/proc/{deleted_pid}").exists()
    assert not (tmp_path / "nfs" / OTHER_MOUNT_IP).exists()
    assert plane.server_pid(MOUNT_IP) == kept_pid
    assert_ok(clients[CLIENT_A].list(v4()))


def test_stop_ends_every_ganesha(plane, tmp_path):
    plane.apply([file_system(tmp_path, 1, MOUNT_IP), file_system(tmp_path, 2, OTHER_MOUNT_IP)])
    pids = [plane.server_pid(MOUNT_IP), plane.server_pid(OTHER_MOUNT_IP)]

    plane.stop()

    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert plane.server_pid(MOUNT_IP) is None


def test_a_ganesha_that_dies_is_restarted(plane, clients, tmp_path):
    plane.apply([file_system(tmp_path, 1, MOUNT_IP, rule(CLIENT_A))])
    crashed = plane.server_pid(MOUNT_IP)

    os.kill(crashed, signal.SIGKILL)

    deadline = time.monotonic() + 20
    while plane.server_pid(MOUNT_IP) in (crashed, None):
        assert time.monotonic() < deadline, "the watchdog did not restart ganesha"
        time.sleep(0.05)
    assert_ok(clients[CLIENT_A].list(v4()))


def test_a_restart_that_fails_is_retried_until_it_succeeds(clients, tmp_path, caplog):
    binary = tmp_path / "bin" / "ganesha.nfsd"  # a link the test can take away and put back
    binary.parent.mkdir()
    binary.symlink_to(GANESHA)
    plane = GaneshaDataPlane(tmp_path / "nfs", binary=str(binary), watch_interval=0.1)
    plane.start()
    try:
        plane.apply([file_system(tmp_path, 1, MOUNT_IP, rule(CLIENT_A))])
        crashed = plane.server_pid(MOUNT_IP)
        binary.unlink()
        os.kill(crashed, signal.SIGKILL)

        deadline = time.monotonic() + 20
        while "restarting ganesha failed" not in caplog.text:
            assert time.monotonic() < deadline, "the watchdog did not try to restart ganesha"
            time.sleep(0.05)
        assert "could not start" in caplog.text
        binary.symlink_to(GANESHA)

        while plane.server_pid(MOUNT_IP) is None:
            assert time.monotonic() < deadline, "the watchdog gave up after a failed restart"
            time.sleep(0.05)
        assert_ok(clients[CLIENT_A].list(v4()))
    finally:
        plane.stop()


CRASHING_SERVICE = """
import os, sys
from pathlib import Path
from cfs_reference.nfs import ExportSpec, GaneshaDataPlane
plane = GaneshaDataPlane(Path(sys.argv[1]), binary=sys.argv[2])
plane.start()
plane.apply([ExportSpec("cfs-00000001", "fsid0001", sys.argv[3], Path(sys.argv[4]), ())])
print(plane.server_pid(sys.argv[3]), flush=True)
os.kill(os.getpid(), 9)
"""


def test_orphans_of_a_crashed_service_are_reaped_on_start(clients, tmp_path):
    spec = file_system(tmp_path, 1, MOUNT_IP)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_SERVICE, str(tmp_path / "nfs"), GANESHA, MOUNT_IP,
         str(spec.data_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    orphan = int(crashed.stdout)
    try:
        assert Path(f"/proc/{orphan}/cmdline").read_bytes().startswith(GANESHA.encode())

        plane = GaneshaDataPlane(tmp_path / "nfs", binary=GANESHA)
        plane.start()
        try:
            assert not Path(f"/proc/{orphan}").exists() or zombie(orphan)
            plane.apply([spec])  # the address is free again
            assert_ok(clients[CLIENT_A].list(v4()))
        finally:
            plane.stop()
    finally:
        if Path(f"/proc/{orphan}").exists() and not zombie(orphan):
            os.kill(orphan, signal.SIGKILL)


def test_a_pid_file_naming_someone_else_s_process_is_not_trusted(tmp_path):
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        instance = tmp_path / "nfs" / MOUNT_IP
        instance.mkdir(parents=True)
        (instance / "ganesha.pid").write_text(str(bystander.pid))  # a reused pid

        plane = GaneshaDataPlane(tmp_path / "nfs", binary=GANESHA)
        plane.start()
        plane.stop()

        assert bystander.poll() is None
        assert not instance.exists()
    finally:
        bystander.kill()
        bystander.wait()


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except OSError:
        return False


@pytest.fixture
def rpcbind(clients):
    with private_rpcbind():
        yield


@pytest.mark.skipif(shutil.which("rpcbind") is None, reason="needs Debian package rpcbind")
def test_nfsv3_reaches_each_file_system_at_its_fsid_path(rpcbind, clients, tmp_path):
    spec = file_system(tmp_path, 1, MOUNT_IP, rule(CLIENT_A, "RW"))
    deleted = file_system(tmp_path, 2, OTHER_MOUNT_IP)
    plane = GaneshaDataPlane(tmp_path / "nfs", binary=GANESHA, nfsv3=True)
    plane.start()
    try:
        plane.apply([spec, deleted])
        v3 = nfs_url(MOUNT_IP, f"{spec.fsid}/v3.txt", version=3)

        assert_ok(clients[CLIENT_A].write(v3, "over v3"))
        assert (spec.data_dir / "v3.txt").read_text() == "over v3"
        assert clients[CLIENT_A].read(v4("v3.txt")).stdout == "over v3"
        assert_refused(clients[CLIENT_A].list(nfs_url(MOUNT_IP, "", version=3)), "MNT3ERR_ACCES")
        assert_refused(clients[CLIENT_C].list(nfs_url(MOUNT_IP, spec.fsid, version=3)), "MNT3ERR")
        assert_ok(clients[CLIENT_A].list(nfs_url(OTHER_MOUNT_IP, deleted.fsid, version=3)))

        # Instances share rpcbind's NFS and MOUNT registrations; removing one keeps them.
        plane.apply([spec])
        assert clients[CLIENT_A].read(v3).stdout == "over v3"
    finally:
        plane.stop()


@pytest.mark.parametrize(
    "bad_rule, message",
    [
        (rule(CLIENT_A, access="RWX"), "rule access must be one of RO, RW, not 'RWX'"),
        (rule(CLIENT_A, squash="squash"), "rule squash must be one of all_squash, no_all_squash"),
        (rule(CLIENT_A, priority=0), "rule priority must be an integer 1..100, not 0"),
        (rule("10.0.0.0/33"), "rule client must be '*', an IPv4 address or an IPv4 CIDR"),
    ],
)
def test_invalid_spec_is_rejected_before_anything_changes(plane, tmp_path, bad_rule, message):
    good = file_system(tmp_path, 1, MOUNT_IP)
    bad = file_system(tmp_path, 2, OTHER_MOUNT_IP, bad_rule)

    with pytest.raises(ValueError, match=re.escape(f"cfs-00000002: {message}")):
        plane.apply([good, bad])
    assert plane.server_pid(MOUNT_IP) is None


def test_a_mount_target_ganesha_cannot_serve_is_reported_and_others_still_served(plane, tmp_path):
    unreachable = file_system(tmp_path, 2, "192.0.2.77")  # not an address of this namespace

    with pytest.raises(DataPlaneError) as raised:
        plane.apply([file_system(tmp_path, 1, MOUNT_IP), unreachable])
    assert "ganesha for 192.0.2.77 exited during start" in str(raised.value)
    assert "Cannot assign requested address" in str(raised.value)
    assert plane.server_pid(MOUNT_IP) is not None
    assert plane.server_pid("192.0.2.77") is None


def test_paths_with_backslashes_quotes_and_spaces_are_served(clients, tmp_path):
    # ganesha reads backslash escapes inside its double-quoted strings; the state dir holds
    # the config, recovery dir and %include path, the data dir the export's Path.
    unusual = tmp_path / 'state \\ "quoted" #$x'
    data_dir = unusual / "data" / "cfs-00000001"
    data_dir.mkdir(parents=True)
    (data_dir / "marker").write_text("found")
    plane = GaneshaDataPlane(unusual / "nfs", binary=GANESHA)
    plane.start()
    try:
        plane.apply([ExportSpec("cfs-00000001", "fsid0001", MOUNT_IP, data_dir, ())])
        read = clients[CLIENT_A].read(v4("marker"))
        assert_ok(read)
        assert read.stdout == "found"
    finally:
        plane.stop()


def test_a_data_dir_with_a_line_break_is_rejected_before_anything_changes(plane, tmp_path):
    broken = tmp_path / "line\nbreak"
    broken.mkdir()
    spec = replace(file_system(tmp_path, 1, MOUNT_IP), data_dir=broken)

    with pytest.raises(ValueError, match="cfs-00000001: data_dir .* must not contain a line break"):
        plane.apply([spec])
    assert plane.server_pid(MOUNT_IP) is None


def test_two_file_systems_cannot_share_a_mount_target(plane, tmp_path):
    with pytest.raises(ValueError, match="share ip_address 127.16.0.1"):
        plane.apply([file_system(tmp_path, 1, MOUNT_IP), file_system(tmp_path, 2, MOUNT_IP)])


def test_rules_are_ordered_by_priority_then_narrowest_client_first():
    rules = (
        rule("*", priority=5),
        rule("10.0.0.0/8", priority=5),
        rule("10.0.0.7", priority=5),
        rule("10.0.0.0/16", priority=5),
        rule("10.0.0.0/24", priority=1),
        rule("0.0.0.0/0", priority=100),
    )
    assert [match for match, _ in ordered_rules(rules)] == [
        "10.0.0.0/24",
        "10.0.0.7",
        "10.0.0.0/16",
        "10.0.0.0/8",
        "*",
        "*",
    ]


def test_make_data_plane_modes(tmp_path):
    assert isinstance(make_data_plane("off", tmp_path), NullDataPlane)
    with pytest.raises(ValueError, match="nfs mode must be one of auto, on, off, not 'yes'"):
        make_data_plane("yes", tmp_path)


def test_make_data_plane_on_refuses_a_namespace_where_ganesha_cannot_bind_one_address(tmp_path):
    # A fresh namespace without a non-loopback IPv6 address: ganesha would listen everywhere.
    with private_network([]):
        subprocess.run(["ip", "-6", "addr", "flush", "dev", "lo"], check=True)
        assert isinstance(make_data_plane("auto", tmp_path), NullDataPlane)
        with pytest.raises(DataPlaneUnavailable, match="non-loopback IPv6 address"):
            make_data_plane("on", tmp_path)
    with private_network([]):
        assert isinstance(make_data_plane("on", tmp_path), GaneshaDataPlane)
