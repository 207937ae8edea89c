"""NodeStageVolume on a real kernel against a raw `mount -t nfs` with the same options.

Run as root from the repository root: `.venv/bin/python -m benchmarks.node_vm [--rounds 20]`.
One QEMU guest (cfs_demo/guest.py, software emulation) runs the real node plugin; the host
side is the reference service with real nfs-ganesha in a private network namespace. In the
guest, alternately: NodeStageVolume + NodeUnstageVolume through gRPC, and the same `mount -t
nfs -o <vendor options>` + `umount` from a shell. Prints p50 of each, their ratio (goal <= 1.1),
and NodePublishVolume p50 (bind mounts of the staged volume). Times are the guest's own clock:
absolute figures are those of an emulated CPU, the ratio is what carries over.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from cfs_demo.guest import Guest, missing
from tests.support.vm_node import Plan, capability, nfs_host, run_plan

KUBELET = "/var/lib/kubelet"
VENDOR_V4_OPTIONS = "vers=4.0,noresvport,hard,timeo=600,retrans=2"
RATIO_GOAL = 1.1


def build_plan(volume_id: str, context: dict[str, str], rounds: int, publishes: int) -> Plan:
    plan = Plan()
    staging, raw = f"{KUBELET}/bench/globalmount", f"{KUBELET}/bench/raw"
    targets = [f"{KUBELET}/pods/bench-{n}/mount" for n in range(publishes)]
    plan.shell("prepare", f"mkdir -p {staging} {raw} " + " ".join(t.rsplit("/", 1)[0] for t in targets))
    stage = {"volume_id": volume_id, "staging_target_path": staging, "volume_capability": capability(),
             "volume_context": context}  # fmt: skip
    source = f"{context['server']}:/"
    for n in range(rounds):
        plan.rpc(f"stage-{n}", "NodeStageVolume", **stage)
        plan.rpc(f"unstage-{n}", "NodeUnstageVolume", volume_id=volume_id, staging_target_path=staging)
        plan.shell(f"prepare-{n}", f"mkdir -p {staging}")
        plan.shell(f"raw-mount-{n}", f"mount -t nfs -o {VENDOR_V4_OPTIONS} {source} {raw}")
        plan.shell(f"raw-umount-{n}", f"umount {raw}")
    plan.rpc("stage", "NodeStageVolume", **stage)
    for n, target in enumerate(targets):
        plan.rpc(f"publish-{n}", "NodePublishVolume", volume_id=volume_id, staging_target_path=staging,
                 target_path=target, volume_capability=capability(), volume_context=context)  # fmt: skip
    for n, target in enumerate(targets):
        plan.rpc(f"unpublish-{n}", "NodeUnpublishVolume", volume_id=volume_id, target_path=target)
    plan.rpc("unstage", "NodeUnstageVolume", volume_id=volume_id, staging_target_path=staging)
    return plan


def p50_ms(results: dict[str, dict], prefix: str, count: int) -> float:
    samples = []
    for n in range(count):
        outcome = results[f"{prefix}-{n}"]
        if outcome.get("code", "OK") != "OK" or outcome.get("returncode", 0) != 0:
            raise SystemExit(f"{prefix}-{n} failed: {outcome}")
        samples.append(outcome["seconds"] * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--publishes", type=int, default=50)
    args = parser.parse_args()
    if reason := missing():
        raise SystemExit(reason)
    with tempfile.TemporaryDirectory(prefix="cfs-node-vm-bench-") as workdir:
        work = Path(workdir)
        guest = Guest(work / "guest")
        with nfs_host(work) as (_, controller):
            volume = controller.create("bench", {})
            plan = build_plan(volume.volume_id, dict(volume.volume_context), args.rounds, args.publishes)
            results = run_plan(guest, plan).results
    stage = p50_ms(results, "stage", args.rounds)
    raw = p50_ms(results, "raw-mount", args.rounds)
    publish = p50_ms(results, "publish", args.publishes)
    print(
        f"NodeStageVolume p50       {stage:8.1f} ms  ({args.rounds} rounds, real NFSv4.0 mount in the guest)"
    )
    print(f"raw mount -t nfs p50      {raw:8.1f} ms  (same options and server, from a shell)")
    print(f"stage / raw mount         {stage / raw:8.3f}     (goal <= {RATIO_GOAL})")
    print(f"NodePublishVolume p50     {publish:8.1f} ms  ({args.publishes} binds of the staged mount)")


if __name__ == "__main__":
    main()
