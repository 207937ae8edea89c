"""Node plugin latency through the real gRPC API: NodePublish/NodeUnpublish (bind) and stats.

Run as root from the repository root: `.venv/bin/python -m benchmarks.node [--volumes 500]`.
The plugin runs in a private mount namespace (the node-test harness: only `mount -t nfs` is a
stand-in, bind-mounting a local directory); every publish is a real bind mount. Prints p50/p99
and each figure's ratio to its target (ratio <= 1.0 meets the target).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from benchmarks.provision import percentile, timed
from tests.node.test_node_harness import running_node

SERVER = "127.0.0.1"
TARGETS_MS = {"NodePublishVolume p50": 10.0, "NodeUnpublishVolume p50": 10.0, "NodeGetVolumeStats p50": 2.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cfs-node-bench-") as workdir:
        work = Path(workdir)
        (work / "export").mkdir()
        with running_node(work / "node", exports={f"{SERVER}:/": work / "export"}, servers=[SERVER]) as node:
            volumes = [
                (f"fs:cfs-bench{i:04d}", work / f"staging/{i}", work / f"pods/{i}")
                for i in range(args.volumes)
            ]
            context = {"server": SERVER, "path": "/", "vers": "4"}
            for volume_id, staging, _ in volumes:
                node.stage(volume_id, staging, context)
            publish = [1000 * timed(lambda v=v: node.publish(v[0], v[1], v[2])) for v in volumes]
            stats = [1000 * timed(lambda v=v: node.stats(v[0], v[2])) for v in volumes]
            unpublish = [1000 * timed(lambda v=v: node.unpublish(v[0], v[2])) for v in volumes]
            for volume_id, staging, _ in volumes:
                node.unstage(volume_id, staging)

    figures = {
        "NodePublishVolume p50": statistics.median(publish),
        "NodePublishVolume p99": percentile(publish, 0.99),
        "NodeUnpublishVolume p50": statistics.median(unpublish),
        "NodeUnpublishVolume p99": percentile(unpublish, 0.99),
        "NodeGetVolumeStats p50": statistics.median(stats),
    }
    print(f"node benchmark: {args.volumes} volumes, each staged, published, stat'ed, unpublished")
    for name, value in figures.items():
        target = TARGETS_MS.get(name)
        verdict = f"target <= {target:g} ms, ratio {value / target:.2f}" if target else "no target"
        print(f"  {name:26s} {value:8.2f} ms   ({verdict})")


if __name__ == "__main__":
    main()
