"""Prometheus metrics of the CFS API client (default registry; names fixed by the contract)."""

from prometheus_client import Counter, Histogram

CALLS = Counter(
    "cfs_cloud_calls_total",
    "CFS API requests sent, one per HTTP attempt, by action and reply code (OK on success)",
    ["action", "code"],
)
RETRIES = Counter(
    "cfs_cloud_retries_total", "CFS API requests repeated after a retryable failure", ["action"]
)
THROTTLED = Counter("cfs_cloud_throttled_total", "CFS API replies of RequestLimitExceeded*", ["action"])
CALL_SECONDS = Histogram(
    "cfs_cloud_call_seconds",
    "Duration of a CFS API call including client-side rate limiting and retries",
    ["action"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
