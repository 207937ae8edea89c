"""Provisioning throughput of the CSI controller against the reference CFS service.

The real driver (`python -m cfs_csi --mode controller`) serves gRPC on a unix socket; N
CreateVolume calls come from 100 concurrent callers (external-provisioner's default worker
count), then N DeleteVolume calls the same way. The reference service runs with a 2 s creation
delay and its documented rate limits (CreateCfsFileSystem 10/s, everything else 20/s).

Floors (the best any client can do under the documented limits):
- create: N / 10 s + creation delay   (target wall/floor <= 1.10)
- delete: N / 20 s                    (DeleteCfsFileSystem 20/s)
Targets: <= 3.5 API calls per created volume on average, 0 throttled replies, 0 leaked file
systems; a lone volume on an idle service within 0.5 s of the creation delay.

Run from the repository root: .venv/bin/python -m benchmarks.provision [--volumes N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cfs_csi.csipb import csi_pb2
from tests.support.csi import DriverProcess, create_request
from tests.support.reference import running_reference

CALLERS = 100
CREATE_DELAY = 2.0
CREATE_LIMIT = 10.0
DELETE_LIMIT = 20.0
FLOOR_RATIO = 1.10
MAX_CALLS_PER_VOLUME = 3.5
SINGLE_VOLUME_OVERHEAD = 0.5


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def run_phase(label: str, calls: list, floor: float, ref) -> tuple[float, dict]:
    ref.admin.reset_calls()
    started = time.perf_counter()
    with ThreadPoolExecutor(CALLERS) as pool:
        latencies = list(pool.map(timed, calls))
    wall = time.perf_counter() - started
    log = ref.admin.calls()
    per_action = {action: entry["count"] / len(calls) for action, entry in sorted(log.items())}
    throttled = sum(
        1 for entry in log.values() for _, code in entry["calls"] if code.startswith("RequestLimitExceeded")
    )
    print(f"\n== {label}: {len(calls)} volumes, {CALLERS} callers")
    print(f"wall {wall:.2f} s, floor {floor:.2f} s, wall/floor {wall / floor:.3f} (target <= {FLOOR_RATIO})")
    print(f"API calls per volume: {sum(per_action.values()):.2f}")
    for action, count in per_action.items():
        print(f"  {action:32s} {count:.2f}")
    print(f"throttled replies: {throttled} (target 0)")
    print(
        f"per-volume latency p50 {percentile(latencies, 0.5):.2f} s, p99 {percentile(latencies, 0.99):.2f} s"
    )
    return wall / floor, {"calls": sum(per_action.values()), "throttled": throttled}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=200)
    args = parser.parse_args()
    n = args.volumes
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_reference(Path(tmp) / "reference", create_delay=CREATE_DELAY, nfs="off") as ref,
    ):
        driver = DriverProcess(Path(tmp), ref, create_timeout=120, log_level="INFO")
        try:
            controller = driver.start()
            # One volume alone on the idle service: how promptly `available` is noticed.
            started = time.perf_counter()
            lone = controller.create("pvc-bench-single")
            single = time.perf_counter() - started
            controller.delete(lone.volume_id)
            print(
                f"single volume: {single:.2f} s, minus creation delay {single - CREATE_DELAY:.2f} s "
                f"(target <= {SINGLE_VOLUME_OVERHEAD})"
            )

            volumes = {}

            def create(index: int):
                def call():
                    volumes[index] = controller.stub.CreateVolume(
                        create_request(f"pvc-bench-{index:04d}"), timeout=300
                    ).volume

                return call

            create_ratio, create_stats = run_phase(
                "create", [create(i) for i in range(n)], n / CREATE_LIMIT + CREATE_DELAY, ref
            )
            fs_count = len(ref.admin.state()["FileSystems"])
            print(f"file systems: {fs_count}, leaked/duplicated: {fs_count - n} (must be 0)")

            def delete(volume):
                return lambda: controller.stub.DeleteVolume(
                    csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id), timeout=300
                )

            delete_ratio, delete_stats = run_phase(
                "delete", [delete(v) for v in volumes.values()], n / DELETE_LIMIT, ref
            )
            left = len(ref.admin.state()["FileSystems"])
            print(f"file systems left after delete: {left} (must be 0)")
        finally:
            driver.kill()
    ok = (
        create_ratio <= FLOOR_RATIO
        and create_stats["calls"] <= MAX_CALLS_PER_VOLUME
        and create_stats["throttled"] == 0
        and delete_stats["throttled"] == 0
        and fs_count == n
        and left == 0
        and single - CREATE_DELAY <= SINGLE_VOLUME_OVERHEAD
    )
    print("\nall targets met" if ok else "\nsome targets missed (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
