"""Durability: kill -9 the service under concurrent load, restart it on the same state, and find
every change it acknowledged (creations present, deletions gone, file systems finished)."""

from __future__ import annotations

import threading
import time

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from tests.support.reference import call, running_reference, sdk_client

WORKERS = 4
LOAD_SECONDS = 1.5


def worker(ref, index: int, stop: threading.Event, acknowledged: dict[str, list]) -> None:
    """Create groups, rules and file systems, delete every other group; record what was acknowledged."""
    cfs = sdk_client(ref)
    n = 0
    while not stop.is_set():
        n += 1
        try:
            group = call(cfs, "CreateCfsPGroup", Name=f"dur_{index}_{n}")["PGroupId"]
            acknowledged["groups"].append(group)
            rule = call(
                cfs, "CreateCfsRule", PGroupId=group, AuthClientIp=f"10.{index}.{n % 250}.1", Priority=1
            )
            acknowledged["rules"].append(rule["RuleId"])
            fs = call(
                cfs,
                "CreateCfsFileSystem",
                Zone=f"{ref.region}-1",
                NetInterface="BASIC",
                PGroupId=group,
                FsName=f"dur_{index}_{n}",
            )
            acknowledged["file_systems"].append(fs["FileSystemId"])
            if n % 2 == 0:
                spare = call(cfs, "CreateCfsPGroup", Name=f"dur_spare_{index}_{n}")["PGroupId"]
                call(cfs, "DeleteCfsPGroup", PGroupId=spare)
                acknowledged["deleted_groups"].append(spare)
        except (TencentCloudSDKException, OSError):
            return  # the service died mid-call: that change was never acknowledged


def test_kill_minus_nine_under_load_loses_nothing_acknowledged(tmp_path):
    with running_reference(tmp_path, create_delay=0.2, extra_args=["--no-rate-limits"]) as ref:
        acknowledged: dict[str, list] = {"groups": [], "rules": [], "file_systems": [], "deleted_groups": []}
        stop = threading.Event()
        threads = [threading.Thread(target=worker, args=(ref, i, stop, acknowledged)) for i in range(WORKERS)]
        for thread in threads:
            thread.start()
        time.sleep(LOAD_SECONDS)
        ref.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert len(acknowledged["file_systems"]) >= WORKERS  # the load really ran

        ref.restart()
        state = ref.admin.state()
        groups = {g["PGroupId"] for g in state["PGroups"]}
        rules = {r["RuleId"] for r in state["Rules"]}
        file_systems = {f["FileSystemId"]: f for f in state["FileSystems"]}
        assert set(acknowledged["groups"]) <= groups
        assert set(acknowledged["rules"]) <= rules
        assert set(acknowledged["file_systems"]) <= set(file_systems)
        assert not set(acknowledged["deleted_groups"]) & groups
        # lifecycles carry on after the restart: every file system reaches available
        time.sleep(0.3)
        cfs = sdk_client(ref)
        listed = call(cfs, "DescribeCfsFileSystems")["FileSystems"]
        states = {f["FileSystemId"]: f["LifeCycleState"] for f in listed}
        assert all(states[fs_id] == "available" for fs_id in acknowledged["file_systems"])
        # ids stay unique after the restart (the allocator sees the recovered state)
        fresh = call(
            cfs,
            "CreateCfsFileSystem",
            Zone=f"{ref.region}-1",
            NetInterface="BASIC",
            PGroupId="pgroupbasic",
            FsName="after_restart",
        )["FileSystemId"]
        assert fresh not in file_systems
        ips = [f["IpAddress"] for f in ref.admin.state()["FileSystems"]]
        assert len(ips) == len(set(ips))
