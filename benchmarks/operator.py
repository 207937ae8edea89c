"""Operator throughput and drift repair against the reference CFS service.

kopf runs for real (in-process) against kmock's Kubernetes API; the reference service enforces
its documented rate limits (20 calls/s for every permission-group action). N permission groups
with R rules each are applied at once, then one rule is deleted behind the operator's back.

Floor: every action has its own limit, so the best any client can do is the busiest action's
calls divided by its limit: max over actions of calls(action) / limit(action). For 200 x 5 that
is CreateCfsRule: 1000 / 20 = 50 s. Target: time to all Ready / floor <= 1.2 (the client also
keeps a safety margin under each limit, so no throttled replies are expected).
Also printed: API calls per object, throttled replies, and the drift-repair latency (at most
one drift interval plus the repair itself).

The reference service allows 100 permission groups per region (a quota it chose; the vendor
docs state none), so 200 groups need that quota raised there; the benchmark stops with the
reference's QuotaExceeded message otherwise.

Run from the repository root: .venv/bin/python -m benchmarks.operator [--groups N --rules R]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from cfs_cloud import CfsClient
from cfs_cloud.limits import DOCUMENTED_RATE_LIMITS, UNDOCUMENTED_ACTION_RATE_LIMIT
from cfs_operator.config import OperatorConfig
from tests.support.kube import (
    PGROUP_RESOURCE,
    Cluster,
    condition_is,
    fast_cloud_config,
    kube_api,
    objects_of,
    running_operator,
)
from tests.support.reference import running_reference

TARGET_RATIO = 1.2
DRIFT_INTERVAL = 30.0


def group(index: int, rules: int) -> dict:
    return {
        "apiVersion": "cfs.tencentcloud.com/v1alpha1",
        "kind": "CfsPermissionGroup",
        "metadata": {"name": f"bench-{index:04d}"},
        "spec": {
            "rules": [
                {
                    "clientIp": f"10.{index // 250}.{index % 250}.{r}",
                    "rwPermission": "RW",
                    "userPermission": "no_root_squash",
                    "priority": r + 1,
                }
                for r in range(rules)
            ]
        },
    }


def per_action_floor(calls: dict[str, int]) -> tuple[float, str]:
    seconds = {
        action: n / DOCUMENTED_RATE_LIMITS.get(action, UNDOCUMENTED_ACTION_RATE_LIMIT)
        for action, n in calls.items()
    }
    busiest = max(seconds, key=seconds.get)
    return seconds[busiest], busiest


async def wait_until(predicate, timeout: float, poll: float = 0.2) -> float:
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"not reached within {timeout} s")
        await asyncio.sleep(poll)
    return time.perf_counter() - started


async def run(groups: int, rules: int, work_dir: Path) -> bool:
    with running_reference(work_dir / "reference", create_delay=0.05, nfs="off") as ref:
        cloud_config = fast_cloud_config(ref, retry_deadline=30.0, retry_max_delay=2.0)
        checker = CfsClient(fast_cloud_config(ref))
        async with kube_api() as api:
            cluster = Cluster(api)
            config = OperatorConfig(drift_interval=DRIFT_INTERVAL, selection_interval=DRIFT_INTERVAL)
            async with running_operator(api, cloud_config, config):
                ref.admin.reset_calls()
                started, t0 = time.perf_counter(), time.time()
                await asyncio.gather(
                    *(cluster.create(PGROUP_RESOURCE, group(i, rules)) for i in range(groups))
                )

                def all_ready() -> bool:
                    objects = list(objects_of(api, PGROUP_RESOURCE))
                    quota = [obj for obj in objects if condition_is(obj, "Synced", "False", "QuotaExceeded")]
                    if quota:
                        message = next(
                            c["message"] for c in quota[0]["status"]["conditions"] if c["type"] == "Synced"
                        )
                        raise SystemExit(
                            f"{len(quota)} permission group(s) refused by the reference: {message}"
                        )
                    return sum(condition_is(obj, "Ready", "True") for obj in objects) == groups

                # Generous: three times the floor plus start-up, so a stuck run ends with an error.
                await wait_until(all_ready, timeout=3 * groups * rules / 20 + 60, poll=0.5)
                wall = time.perf_counter() - started
                log = ref.admin.calls()
                calls = {action: entry["count"] for action, entry in log.items() if entry["count"]}
                codes = Counter(code for entry in log.values() for _, code in entry["calls"])
                throttled = sum(n for code, n in codes.items() if code.startswith("RequestLimitExceeded"))
                floor, busiest = per_action_floor(calls)
                total = sum(calls.values())
                ratio = wall / floor

                print(f"operator: {groups} permission groups x {rules} rules applied at once")
                print(f"  time to all Ready      {wall:8.2f} s")
                print(
                    f"  floor                  {floor:8.2f} s  ({busiest}: {calls[busiest]} calls at "
                    f"{DOCUMENTED_RATE_LIMITS.get(busiest, UNDOCUMENTED_ACTION_RATE_LIMIT):g}/s)"
                )
                print(f"  ratio                  {ratio:8.3f}    (target <= {TARGET_RATIO})")
                print(
                    f"  API calls per object   {total / groups:8.2f}    ({total} calls: "
                    + ", ".join(f"{a} {n}" for a, n in sorted(calls.items()))
                    + ")"
                )
                print(f"  throttled replies      {throttled:8d}")
                stamps = sorted(float(stamp) for stamp, _ in log[busiest]["calls"])
                print(
                    f"  {busiest} span  {stamps[-1] - stamps[0]:8.2f} s  (first call {stamps[0] - t0:.2f} s "
                    f"after apply, last {stamps[-1] - t0:.2f} s)"
                )

                # Drift: one rule deleted in the "console"; the timer notices and recreates it.
                victim = cluster.get(PGROUP_RESOURCE, "bench-0000")
                pgroup_id = victim["status"]["pGroupId"]
                deleted = victim["status"]["rules"][0]
                checker.call("DeleteCfsRule", {"PGroupId": pgroup_id, "RuleId": deleted["ruleId"]})

                def repaired() -> bool:
                    obj = cluster.get(PGROUP_RESOURCE, "bench-0000")
                    return condition_is(obj, "Synced", "True", "DriftRepaired")

                latency = await wait_until(repaired, timeout=3 * DRIFT_INTERVAL)
                present = {
                    r["AuthClientIp"]
                    for r in checker.call("DescribeCfsRules", {"PGroupId": pgroup_id})["RuleList"]
                }
                print(
                    f"  drift repair latency   {latency:8.2f} s  (drift interval {DRIFT_INTERVAL:g} s, "
                    f"{groups} "
                    f"groups sharing the describe limits; rule back: {deleted['clientIp'] in present})"
                )
    return ratio <= TARGET_RATIO and deleted["clientIp"] in present


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--rules", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cfs-operator-bench-") as work_dir:
        ok = asyncio.run(run(args.groups, args.rules, Path(work_dir)))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
