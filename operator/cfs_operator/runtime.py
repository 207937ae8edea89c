"""What every handler shares, handed to kopf as its memo: settings, the cloud client, workers."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cfs_cloud import CfsClient
from cfs_operator.config import OperatorConfig

T = TypeVar("T")


@dataclass
class OperatorRuntime:
    config: OperatorConfig
    client: CfsClient
    executor: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=self.config.workers, thread_name_prefix="cfs-cloud")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking cloud function in the worker pool, keeping the event loop free."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args))

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
