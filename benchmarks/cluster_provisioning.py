"""Claims to Bound through the real csi-provisioner on a real control plane.

The cluster lane's parts (tests/support/chart_lane.py): etcd, kube-apiserver,
kube-controller-manager, the chart installed with the project's renderer, one controller pod
(our controller, csi-provisioner, csi-resizer, csi-snapshotter, livenessprobe with exactly the
chart's args, logged in with the chart's ServiceAccount) and the reference CFS service with a 2 s
creation delay and its documented rate limits (CreateCfsFileSystem 10/s). N claims of the
chart's `cfs` class are created at once (concurrent POSTs) and their PVs and Bound phases polled,
over plain HTTP: kubectl's start-up and discovery would blur the figures.

Floor: the i-th claim to bind cannot do so before i/10 s + the creation delay (the API creates
at most 10 file systems a second). Printed: p50/p95 of (Bound - creation delay), p95 and max of
(Bound - its floor), wall/floor of the last claim. Goal: p95 within 1 s of the floor.

Run from the repository root: .venv/bin/python -m benchmarks.cluster_provisioning [--claims 20 50 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from benchmarks.provision import percentile
from tests.support.chart_lane import Lane, claim, lane_values, running_lane
from tests.support.control_plane import missing, running_control_plane
from tests.support.reference import running_reference

CREATE_DELAY = 2.0
CREATE_LIMIT = 10.0  # CreateCfsFileSystem calls per second
GOAL_EXCESS = 1.0  # seconds above the floor, at p95
POLL = 0.1
CREATORS = 20  # concurrent claim POSTs


def create_claims(lane: Lane, names: list[str]) -> dict[str, float]:
    """POST the claims at once; claim -> monotonic time its creation was acknowledged."""

    def create(name: str) -> tuple[str, float]:
        lane.plane.request("POST", "/api/v1/namespaces/default/persistentvolumeclaims", claim(name, "cfs"))
        return name, time.monotonic()

    with ThreadPoolExecutor(CREATORS) as pool:
        return dict(pool.map(create, names))


def watch_claims(lane: Lane, names: set[str], timeout: float) -> tuple[dict[str, float], dict[str, float]]:
    """(claim -> monotonic time its PV existed, claim -> monotonic time it was Bound)."""
    provisioned: dict[str, float] = {}
    bound: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(bound) < len(names):
        claims = lane.plane.request("GET", "/api/v1/namespaces/default/persistentvolumeclaims")["items"]
        volumes = {
            item["metadata"]["name"]
            for item in lane.plane.request("GET", "/api/v1/persistentvolumes")["items"]
        }
        now = time.monotonic()
        for item in claims:
            name = item["metadata"]["name"]
            if name not in names:
                continue
            if name not in provisioned and f"pvc-{item['metadata']['uid']}" in volumes:
                provisioned[name] = now
            if name not in bound and item.get("status", {}).get("phase") == "Bound":
                bound[name] = now
                provisioned.setdefault(name, now)
        if now > deadline:
            raise SystemExit(f"only {len(bound)} of {len(names)} claims bound after {timeout:.0f} s")
        time.sleep(POLL)
    return provisioned, bound


def excess_over_floor(times: dict[str, float], started: float) -> list[float]:
    """Seconds each claim took beyond its floor: the i-th to finish cannot before i/10 s + the
    creation delay after the first claim was created."""
    return [
        t - started - ((i + 1) / CREATE_LIMIT + CREATE_DELAY) for i, t in enumerate(sorted(times.values()))
    ]


def run(lane: Lane, count: int, round_no: int) -> bool:
    names = [f"bench{round_no}-{i:04d}" for i in range(count)]
    lane.reference.admin.reset_calls()
    created = create_claims(lane, names)
    started = min(created.values())
    provisioned, bound = watch_claims(lane, set(names), timeout=60 + count)
    above_delay = [bound[name] - created[name] - CREATE_DELAY for name in names]
    excess = excess_over_floor(bound, started)
    pv_excess = excess_over_floor(provisioned, started)
    wall = max(bound.values()) - started
    floor = count / CREATE_LIMIT + CREATE_DELAY
    calls = lane.reference.admin.calls()
    throttled = sum(
        1 for entry in calls.values() for _, code in entry["calls"] if code.startswith("RequestLimit")
    )
    per_claim = sum(entry["count"] for entry in calls.values()) / count
    ok = percentile(excess, 0.95) <= GOAL_EXCESS
    print(f"\n== {count} claims at once")
    p50, p95 = percentile(above_delay, 0.5), percentile(above_delay, 0.95)
    print(f"Bound - create delay: p50 {p50:.2f} s, p95 {p95:.2f} s")
    print(f"Bound - floor (i/{CREATE_LIMIT:g} s + {CREATE_DELAY:g} s): p95 {percentile(excess, 0.95):.2f} s, "
          f"max {max(excess):.2f} s (goal p95 <= {GOAL_EXCESS} s) {'ok' if ok else 'MISSED'}")  # fmt: skip
    print(f"PV created - floor: min {min(pv_excess):.2f} s, p50 {percentile(pv_excess, 0.5):.2f} s, "
          f"p95 {percentile(pv_excess, 0.95):.2f} s (the provisioner's part)")  # fmt: skip
    print(f"wall {wall:.2f} s, floor {floor:.2f} s, wall/floor {wall / floor:.3f}")
    print(f"CFS API calls per claim {per_claim:.2f}, throttled replies {throttled}")
    for action, entry in sorted(calls.items()):
        print(f"  {action:32s} {entry['count'] / count:.2f}")
    lane.plane.kubectl("delete", "pvc", "-n", "default", "--all", "--wait=false")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, nargs="+", default=[20, 50, 200])
    args = parser.parse_args()
    if absent := missing():
        print(f"skipped: {absent}")
        return 0
    with tempfile.TemporaryDirectory(prefix="cfs-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        plane = stack.enter_context(running_control_plane(work / "plane", controllers=True))
        ref = stack.enter_context(running_reference(work / "reference", create_delay=CREATE_DELAY, nfs="off"))
        values = lane_values(ref, fast_retries=False, controller={"replicas": 1})
        pods = {"cfs-csi-controller-0": "controller"}
        lane = stack.enter_context(running_lane(plane, ref, values, work / "pods", ["node-a"], pods))
        results = [run(lane, count, round_no) for round_no, count in enumerate(args.claims)]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
