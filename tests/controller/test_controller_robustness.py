"""CreateVolume / DeleteVolume under concurrency, controller crashes, throttling storms and failed
creations, against the reference CFS service (faults injected through its admin endpoint)."""

import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from cfs_csi.csipb import csi_pb2
from tests.support.csi import (
    create_request,
    driver_process,
    file_systems,
    managed_groups,
    serving_controller,
)
from tests.support.local import eventually

MANAGED_RULES = {"allowedClients": "10.20.0.0/16"}
HOLD_MS = 2000  # the reference holds the call this long before carrying it out


def call_count(ref, action: str) -> int:
    return ref.admin.calls().get(action, {}).get("count", 0)


def retry_like_provisioner(call, attempts: int = 30):
    """external-provisioner retries every failed call (with backoff) until it succeeds."""
    for attempt in range(attempts):
        try:
            return call()
        except grpc.RpcError as err:
            if attempt == attempts - 1 or err.code() not in (
                grpc.StatusCode.ABORTED,
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.INTERNAL,
            ):
                raise
            time.sleep(0.05)


def test_two_concurrent_creates_with_one_name_make_one_file_system(tmp_path, reference):
    reference.admin.configure(create_delay=1.0)
    with serving_controller(tmp_path, reference) as controller:
        request = create_request("pvc-race", MANAGED_RULES)
        first = controller.stub.CreateVolume.future(request)
        eventually(lambda: controller.servicer.locks.is_held("pvc-race"), what="first call in flight")
        with pytest.raises(grpc.RpcError) as err:
            controller.stub.CreateVolume(request)
        assert err.value.code() == grpc.StatusCode.ABORTED
        volume = first.result().volume
        assert controller.create("pvc-race", MANAGED_RULES).volume_id == volume.volume_id
    assert [fs["FileSystemId"] for fs in file_systems(reference)] == [volume.volume_id.split(":")[1]]


def test_crash_after_create_was_sent_then_retry_finds_exactly_one(tmp_path, reference):
    with driver_process(tmp_path, reference) as driver:
        reference.admin.set_faults([], latency={"CreateCfsFileSystem": HOLD_MS})
        pending = driver.controller.stub.CreateVolume.future(create_request("pvc-crash", MANAGED_RULES))
        # The managed group's rule is the last call before CreateCfsFileSystem.
        eventually(lambda: call_count(reference, "CreateCfsRule") == 1, what="the group's rule")
        time.sleep(0.3)
        assert file_systems(reference) == []  # sent, held, not answered
        driver.kill()
        with pytest.raises(grpc.RpcError):
            pending.result()
        # The held request is carried out although its caller is gone.
        eventually(lambda: len(file_systems(reference)) == 1, what="the held create to land")
        driver.start()
        volume = retry_like_provisioner(lambda: driver.controller.create("pvc-crash", MANAGED_RULES))
        assert [fs["FileSystemId"] for fs in file_systems(reference)] == [volume.volume_id.split(":")[1]]
        assert call_count(reference, "CreateCfsFileSystem") == 1
        assert len(managed_groups(reference)) == 1


def test_duplicates_of_one_name_converge_on_the_oldest(tmp_path, reference, cloud_client):
    """Should a dead caller's create land after a retry created its own file system, the next
    lookup keeps the oldest and deletes the other."""
    body = {
        "Zone": "ap-shanghai-fsi-1",
        "NetInterface": "BASIC",
        "PGroupId": "pgroupbasic",
        "FsName": "cfs-csi-pvc-dup",
    }
    older = cloud_client.call("CreateCfsFileSystem", body)["FileSystemId"]
    time.sleep(1.1)  # CreationTime has one-second resolution
    cloud_client.call("CreateCfsFileSystem", body)
    for fs in file_systems(reference):
        cloud_client.wait_file_system_available(fs["FileSystemId"], timeout=10)
    with serving_controller(tmp_path, reference) as controller:
        volume = controller.create("pvc-dup", {"pGroupId": "pgroupbasic"})
    assert volume.volume_id == f"fs:{older}"
    assert [fs["FileSystemId"] for fs in file_systems(reference)] == [older]


def test_crash_after_delete_was_sent_then_retry_cleans_up(tmp_path, reference):
    with driver_process(tmp_path, reference) as driver:
        volume = driver.controller.create("pvc-del-crash", MANAGED_RULES)
        reference.admin.set_faults([], latency={"DeleteCfsFileSystem": HOLD_MS})
        reference.admin.reset_calls()
        pending = driver.controller.stub.DeleteVolume.future(
            csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id)
        )
        eventually(lambda: call_count(reference, "DescribeCfsFileSystems") >= 1, what="the delete's lookup")
        time.sleep(0.3)
        driver.kill()
        with pytest.raises(grpc.RpcError):
            pending.result()
        driver.start()
        retry_like_provisioner(lambda: driver.controller.delete(volume.volume_id))
        eventually(lambda: not file_systems(reference), what="file system deleted")
        retry_like_provisioner(lambda: driver.controller.delete(volume.volume_id))
        assert managed_groups(reference) == []
        assert "Traceback" not in driver.log()


def test_throttle_storm_provisions_everything_once(tmp_path, reference):
    reference.admin.set_faults(
        [
            {"action": "*", "code": "RequestLimitExceeded", "rate": 0.3},
            {"action": "*", "code": "InternalError", "rate": 0.05},
        ]
    )
    names = [f"pvc-storm-{n:02d}" for n in range(12)]
    with serving_controller(tmp_path, reference) as controller, ThreadPoolExecutor(len(names)) as pool:
        volumes = list(
            pool.map(
                lambda name: retry_like_provisioner(lambda: controller.create(name, MANAGED_RULES)), names
            )
        )
        fs_names = sorted(fs["FsName"] for fs in file_systems(reference))
        assert fs_names == sorted(f"cfs-csi-{name}" for name in names)
        assert len({v.volume_id for v in volumes}) == len(names)
        assert len(managed_groups(reference)) == 1
        throttled = [
            code for _, code in reference.admin.calls()["CreateCfsFileSystem"]["calls"] if code != "OK"
        ]
        assert throttled, "the storm must actually have hit CreateCfsFileSystem"
        list(pool.map(lambda v: retry_like_provisioner(lambda: controller.delete(v.volume_id)), volumes))
    assert file_systems(reference) == []
    assert managed_groups(reference) == []


def test_create_failed_leaks_nothing(tmp_path, reference):
    reference.admin.set_faults([], create_failed_rate=1.0)
    with serving_controller(tmp_path, reference) as controller:
        with pytest.raises(grpc.RpcError) as err:
            controller.create("pvc-doomed", MANAGED_RULES)
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert "create_failed" in err.value.details() and "RequestId" in err.value.details()
        assert file_systems(reference) == []
        assert managed_groups(reference) == []
        reference.admin.set_faults([])
        volume = controller.create("pvc-doomed", MANAGED_RULES)
        (fs,) = file_systems(reference)
        assert volume.volume_id == f"fs:{fs['FileSystemId']}" and fs["LifeCycleState"] == "available"


def test_wait_timeout_is_aborted_and_retry_finishes_the_same_volume(tmp_path, reference):
    reference.admin.configure(create_delay=1.5)
    with serving_controller(tmp_path, reference, create_timeout=0.3) as controller:
        with pytest.raises(grpc.RpcError) as err:
            controller.create("pvc-slow")
        assert err.value.code() == grpc.StatusCode.ABORTED
        assert "the wait ends at --create-timeout 0.3s" in err.value.details()
        (fs,) = file_systems(reference)
        volume = retry_like_provisioner(lambda: controller.create("pvc-slow"))
        assert volume.volume_id == f"fs:{fs['FileSystemId']}"
        assert len(file_systems(reference)) == 1


def test_a_clone_waits_for_snapshot_and_restore_within_one_create_timeout(tmp_path, reference):
    """The temporary snapshot and the restored file system each take 0.4 s; with a 0.6 s
    --create-timeout the first call must give up (ABORTED) instead of waiting 0.4 + 0.4 s, so
    the provisioner's own timeout is never overrun; its retry finishes the same clone."""
    reference.admin.configure(create_delay=0.4)
    with serving_controller(tmp_path, reference, create_timeout=0.6) as controller:
        source = retry_like_provisioner(lambda: controller.create("pvc-origin"))
        clone_of = csi_pb2.VolumeContentSource(
            volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=source.volume_id)
        )
        with pytest.raises(grpc.RpcError) as err:
            controller.create("pvc-copy", volume_content_source=clone_of)
        assert err.value.code() == grpc.StatusCode.ABORTED
        clone = retry_like_provisioner(lambda: controller.create("pvc-copy", volume_content_source=clone_of))
        assert clone.content_source.volume.volume_id == source.volume_id
        assert len(file_systems(reference)) == 2
        assert reference.admin.state()["Snapshots"] == []  # the temporary snapshot is gone


def test_probe_stays_ready_while_the_api_throttles_but_not_with_a_rejected_key(tmp_path, reference):
    """A busy API must not make the liveness sidecar restart the controller; a bad key must."""
    probe = csi_pb2.ProbeRequest()
    reference.admin.set_faults(
        [{"action": "DescribeCfsServiceStatus", "code": "RequestLimitExceeded", "rate": 1.0}]
    )
    with serving_controller(tmp_path / "busy", reference) as controller:
        assert controller.identity.Probe(probe, timeout=10).ready.value is True
    reference.admin.set_faults([])
    with serving_controller(tmp_path / "bad-key", reference, secret_key="wrong") as controller:
        assert controller.identity.Probe(probe, timeout=10).ready.value is False


def test_the_controller_gives_up_with_a_caller_whose_deadline_passed(tmp_path, reference):
    """The provisioner's call times out while the file system is still creating. The server
    stops waiting with it, so the volume's lock is free for the retry (instead of answering
    ABORTED "in progress" until --create-timeout) and the retry finishes the same volume."""
    reference.admin.configure(create_delay=5.0)
    with serving_controller(tmp_path, reference, create_timeout=30) as controller:
        with pytest.raises(grpc.RpcError) as err:
            controller.stub.CreateVolume(create_request("pvc-impatient"), timeout=0.5)
        # Whichever side notices the shared deadline first: both tell the provisioner to retry.
        assert err.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED)
        time.sleep(0.3)  # let the server notice the deadline it shares with the caller
        volume = controller.stub.CreateVolume(create_request("pvc-impatient"), timeout=30).volume
        (fs,) = file_systems(reference)
        assert volume.volume_id == f"fs:{fs['FileSystemId']}"
