"""Per-call overhead of cfs_cloud over the raw SDK, against the reference CFS service.

Both sides send the same signed DescribeCfsFileSystems over loopback, sequentially, through
one HTTP session each; the reference runs without rate limits and the client's own limiter is
disabled for the action, so the difference is our layer's bookkeeping (limiter lookup, retry
loop, metrics, error typing, credential check), not deliberate waiting.

Run from the repository root: .venv/bin/python -m benchmarks.client_overhead [--calls N]
Floor: cfs_cloud/raw ratio <= 1.10 (our layer must cost under 10% of a loopback call).
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

from cfs_cloud import CfsClient, CloudConfig
from tests.support.reference import running_reference

ACTION = "DescribeCfsFileSystems"
FLOOR_RATIO = 1.10


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per round (5 rounds)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, running_reference(
            Path(tmp), create_delay=0.05, nfs="off", extra_args=["--no-rate-limits"]) as ref:
        sdk = SdkCfsClient(Credential(ref.secret_id, ref.secret_key), ref.region,
                           ClientProfile(httpProfile=HttpProfile(endpoint=ref.endpoint,
                                                                 protocol="http")))
        ours = CfsClient(CloudConfig(endpoint=ref.url, region=ref.region,
                                     secret_id=ref.secret_id, secret_key=ref.secret_key,
                                     rate_limits={ACTION: 0}))
        # Interleave the two so drift in machine load hits both alike.
        raw_times, our_times = [], []
        for _ in range(3):
            raw_times.append(per_call_seconds(lambda: sdk.call_json(ACTION, {}), args.calls))
            our_times.append(per_call_seconds(lambda: ours.call(ACTION, {}), args.calls))
    raw, our = min(raw_times), min(our_times)
    ratio = our / raw
    print(f"raw SDK:   {raw * 1e6:8.1f} us/call")
    print(f"cfs_cloud: {our * 1e6:8.1f} us/call")
    print(f"overhead:  {(our - raw) * 1e6:8.1f} us/call")
    print(f"ratio cfs_cloud/raw = {ratio:.3f} (floor: <= {FLOOR_RATIO:.2f}) "
          f"{'OK' if ratio <= FLOOR_RATIO else 'ABOVE FLOOR'}")
    return 0 if ratio <= FLOOR_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
