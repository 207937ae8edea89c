"""Per-call overhead of cfs_cloud over the raw SDK, against the reference CFS service;
plus how soon `wait_file_system_available` notices a file system becoming available.

Both sides send the same signed DescribeCfsFileSystems over loopback, sequentially, through
one HTTP session each; the reference runs without rate limits and the client's own limiter is
disabled for the action, so the difference is our layer's bookkeeping (limiter lookup, retry
loop, metrics, error typing, credential check), not deliberate waiting.

Run from the repository root: .venv/bin/python -m benchmarks.client_overhead [--calls N]
Floors: cfs_cloud/raw ratio <= 1.10 (our layer must cost under 10% of a loopback call);
notice latency / poll_max_interval <= 1.2 for a single idle volume.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tencentcloud.cfs.v20190719.cfs_client import CfsClient as SdkCfsClient
from tencentcloud.common.credential import Credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from cfs_cloud import CfsClient
from tests.support.cloud import cloud_client
from tests.support.reference import running_reference

ACTION = "DescribeCfsFileSystems"
FLOOR_RATIO = 1.10
NOTICE_FLOOR_RATIO = 1.2
CREATE_DELAY = 1.0


def per_call_seconds(call, calls: int, rounds: int = 5) -> float:
    """Median over rounds of the mean seconds per call (after a warm-up)."""
    for _ in range(20):
        call()
    means = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        means.append((time.perf_counter() - start) / calls)
    return statistics.median(means)


def notice_latencies(ref, client: CfsClient, rounds: int) -> list[float]:
    """Seconds between a file system becoming available (its create reply + the reference's
    create delay) and the waiter returning it."""
    ref.admin.configure(create_delay=CREATE_DELAY)
    latencies = []
    for i in range(rounds):
        params = {
            "Zone": f"{ref.region}-1",
            "NetInterface": "BASIC",
            "PGroupId": "pgroupbasic",
            "FsName": f"bench-{i}",
        }
        fs_id = client.call("CreateCfsFileSystem", params)["FileSystemId"]
        available_at = time.monotonic() + CREATE_DELAY
        client.wait_file_system_available(fs_id, timeout=30)
        latencies.append(time.monotonic() - available_at)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per round (5 rounds)")
    parser.add_argument("--rounds", type=int, default=5, help="creates for the notice latency")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        running_reference(Path(tmp), create_delay=0.05, nfs="off", extra_args=["--no-rate-limits"]) as ref,
    ):
        sdk = SdkCfsClient(
            Credential(ref.secret_id, ref.secret_key),
            ref.region,
            ClientProfile(httpProfile=HttpProfile(endpoint=ref.endpoint, protocol="http")),
        )
        ours = cloud_client(ref, rate_limits={ACTION: 0})
        # Interleave the two so drift in machine load hits both alike.
        raw_times, our_times = [], []
        for _ in range(3):
            raw_times.append(per_call_seconds(lambda: sdk.call_json(ACTION, {}), args.calls))
            our_times.append(per_call_seconds(lambda: ours.call(ACTION, {}), args.calls))
        latencies = notice_latencies(ref, ours, args.rounds)
    raw, our = min(raw_times), min(our_times)
    ratio = our / raw
    notice_ratio = max(latencies) / ours.config.poll_max_interval
    print(f"raw SDK:   {raw * 1e6:8.1f} us/call")
    print(f"cfs_cloud: {our * 1e6:8.1f} us/call")
    print(f"overhead:  {(our - raw) * 1e6:8.1f} us/call")
    print(
        f"ratio cfs_cloud/raw = {ratio:.3f} (floor: <= {FLOOR_RATIO:.2f}) "
        f"{'OK' if ratio <= FLOOR_RATIO else 'ABOVE FLOOR'}"
    )
    print(
        f"waiter notice latency: median {statistics.median(latencies) * 1e3:.0f} ms, "
        f"max {max(latencies) * 1e3:.0f} ms over {len(latencies)} creates"
    )
    print(
        f"ratio max latency/poll_max_interval = {notice_ratio:.2f} "
        f"(floor: <= {NOTICE_FLOOR_RATIO:.1f}) "
        f"{'OK' if notice_ratio <= NOTICE_FLOOR_RATIO else 'ABOVE FLOOR'}"
    )
    return 0 if ratio <= FLOOR_RATIO and notice_ratio <= NOTICE_FLOOR_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
