"""Benchmark: signed DescribeCfsFileSystems requests per second against the reference service.

8 concurrent clients (keep-alive connections on loopback) each send freshly TC3-signed
requests for a fixed time; the service runs in its own process with rate limits off and a
handful of file systems to describe. The figure is printed as a ratio against the floor the
issue sets (1,000 requests/s on a 2-core machine), so the service is never the bottleneck of
the client tests.

    .venv/bin/python benchmarks/reference.py [--seconds 5] [--clients 8] [--file-systems 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cfs_reference.signatures import (  # noqa: E402  (after the sys.path line, like a script)
    tc3_authorization,
    tc3_canonical_request,
    tc3_date,
    tc3_signature,
    tc3_string_to_sign,
)
from tests.support.reference import call, running_reference, sdk_client  # noqa: E402

FLOOR_REQUESTS_PER_SECOND = 1000.0
ACTION, VERSION = "DescribeCfsFileSystems", "2019-07-19"


def signed_headers(ref, body: bytes) -> dict[str, str]:
    """A TC3 request exactly as the docs build it (content-type and host signed)."""
    timestamp = int(time.time())
    date = tc3_date(timestamp)
    headers = {"content-type": "application/json", "host": ref.endpoint}
    canonical = tc3_canonical_request("POST", "", headers, ["content-type", "host"], body)
    scope = f"{date}/cfs/tc3_request"
    signature = tc3_signature(ref.secret_key, date, "cfs", tc3_string_to_sign(timestamp, scope, canonical))
    return {
        "Content-Type": "application/json",
        "Host": ref.endpoint,
        "Authorization": tc3_authorization(ref.secret_id, scope, ["content-type", "host"], signature),
        "X-TC-Action": ACTION,
        "X-TC-Version": VERSION,
        "X-TC-Region": ref.region,
        "X-TC-Timestamp": str(timestamp),
    }


async def client(
    session: aiohttp.ClientSession, ref, stop_at: float, counts: list[int], errors: list[str]
) -> None:
    body = json.dumps({"Limit": 10}).encode()
    while time.monotonic() < stop_at:
        async with session.post(ref.url + "/", data=body, headers=signed_headers(ref, body)) as reply:
            payload = await reply.json(content_type=None)
        if "Error" in payload["Response"]:
            errors.append(payload["Response"]["Error"]["Code"])
        else:
            counts[0] += 1


async def measure(ref, clients: int, seconds: float) -> tuple[int, list[str], float]:
    counts, errors = [0], []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        await asyncio.gather(
            *(client(session, ref, started + seconds, counts, errors) for _ in range(clients))
        )
        elapsed = time.monotonic() - started
    return counts[0], errors, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--file-systems", type=int, default=10)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as work,
        running_reference(
            Path(work), create_delay=0.0, nfs="off", extra_args=["--no-rate-limits", "--log-level", "WARNING"]
        ) as ref,
    ):
        cfs = sdk_client(ref)
        for n in range(args.file_systems):
            call(
                cfs,
                "CreateCfsFileSystem",
                Zone=f"{ref.region}-1",
                NetInterface="VPC",
                PGroupId="pgroupbasic",
                VpcId="vpc-bench",
                SubnetId="subnet-bench",
                FsName=f"bench{n}",
            )
        asyncio.run(measure(ref, args.clients, 0.5))  # warm-up: connections, caches
        ok, errors, elapsed = asyncio.run(measure(ref, args.clients, args.seconds))
    rate = ok / elapsed
    print(f"signed {ACTION}: {ok} ok in {elapsed:.2f} s with {args.clients} clients = {rate:.0f} req/s")
    print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    print(
        f"ratio to the {FLOOR_REQUESTS_PER_SECOND:.0f} req/s floor: {rate / FLOOR_REQUESTS_PER_SECOND:.2f}x"
    )
    return 0 if not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
