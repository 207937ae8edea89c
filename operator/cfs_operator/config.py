"""The operator's own settings (CLI flags); the cloud settings are cfs_cloud's CloudConfig."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorConfig:
    # How often each resource re-reads the cloud and repairs drift.
    drift_interval: float = 300.0
    # How often a policy re-resolves its claim selector from the in-memory indices (no API
    # call unless the selection changed).
    selection_interval: float = 10.0
    # Transient failures (throttling, InternalError, busy group) retry after
    # retry_delay * 2^attempt, capped at max_retry_delay.
    retry_delay: float = 2.0
    max_retry_delay: float = 120.0
    # Failures that wait on something outside the operator: a group still in use, quota, credentials.
    slow_retry_delay: float = 30.0
    # Threads running blocking cloud calls; the client's rate limiter paces them.
    workers: int = 32
    # Namespaces whose claims snapshot-policy selectors may pick (empty: every namespace).
    claim_namespaces: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "drift_interval",
            "selection_interval",
            "retry_delay",
            "max_retry_delay",
            "slow_retry_delay",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")

    def retry_after(self, attempt: int, slow: bool) -> float:
        if slow:
            return self.slow_retry_delay
        return min(self.max_retry_delay, self.retry_delay * 2 ** min(attempt, 16))
