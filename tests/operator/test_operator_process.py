"""The `cfs-operator` program itself: flags, credentials from the environment, kubeconfig login,
kopf peering (one active replica, a standby that takes over), liveness endpoint, Prometheus
metrics, and a clean exit on SIGTERM. Replicas run as subprocesses against kmock (served by this
test's event loop) and the reference service."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.support.kube import (
    PGROUP_RESOURCE,
    Cluster,
    condition_is,
)
from tests.support.local import free_port

STARTUP_TIMEOUT = 30.0
PEERING = "cfs-operator"
PEERING_RESOURCE = "kopf.dev/v1/clusterkopfpeerings"
CHANGE_RECONCILED = (
    'cfs_operator_reconciles_total{kind="CfsPermissionGroup",result="ok",trigger="change"} 1.0'
)


async def get_text(url: str) -> tuple[int, str] | None:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as reply,
        ):
            return reply.status, await reply.text()
    except aiohttp.ClientError:
        return None


@dataclass
class Replica:
    process: asyncio.subprocess.Process
    metrics_url: str
    log_path: Path

    async def metrics(self) -> str:
        status, text = await get_text(self.metrics_url)
        assert status == 200
        return text

    async def stop(self) -> int:
        """SIGTERM, as Kubernetes stops a pod; the exit code."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), STARTUP_TIMEOUT)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode


@contextlib.asynccontextmanager
async def operator_replica(name: str, kube: Any, reference: Any, tmp_path: Path) -> AsyncIterator[Replica]:
    """One `cfs-operator` process with peering, logged in through a kubeconfig; ready when its
    liveness endpoint answers."""
    kubeconfig = tmp_path / f"{name}.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "kmock",
                "clusters": [{"name": "kmock", "cluster": {"server": str(kube.url).rstrip("/")}}],
                "users": [{"name": "tester", "user": {}}],
                "contexts": [
                    {
                        "name": "kmock",
                        "context": {"cluster": "kmock", "user": "tester", "namespace": "default"},
                    }
                ],
            }
        )
    )
    liveness, metrics = free_port(), free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "KUBECONFIG": str(kubeconfig),
        "CFS_ENDPOINT": reference.url,
        "TENCENTCLOUD_REGION": reference.region,
        "TENCENTCLOUD_SECRET_ID": reference.secret_id,
        "TENCENTCLOUD_SECRET_KEY": reference.secret_key,
    }
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cfs_operator",
            "--liveness",
            f"http://127.0.0.1:{liveness}/healthz",
            "--metrics-address",
            f"127.0.0.1:{metrics}",
            "--drift-interval",
            "60",
            "--peering",
            PEERING,
            # Claims limited to one namespace: the peering stays cluster-wide (ClusterKopfPeering).
            "--namespace",
            "default",
            "--log-level",
            "DEBUG",
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    replica = Replica(process, f"http://127.0.0.1:{metrics}/metrics", log_path)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while (await get_text(f"http://127.0.0.1:{liveness}/healthz") or (0,))[0] != 200:
            assert process.returncode is None, log_path.read_text()
            assert time.monotonic() < deadline, "liveness endpoint never answered:\n" + log_path.read_text()
            await asyncio.sleep(0.2)
        yield replica
    finally:
        await replica.stop()


def group(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "cfs.tencentcloud.com/v1alpha1",
        "kind": "CfsPermissionGroup",
        "metadata": {"name": name},
        "spec": {"rules": [{"clientIp": "10.7.0.0/16", "priority": 1}]},
    }


async def test_one_active_replica_a_standby_that_takes_over_and_clean_exits(kube, reference, tmp_path):
    cluster = Cluster(kube)
    await cluster.create(
        PEERING_RESOURCE,
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING}},
    )
    async with (
        operator_replica("a", kube, reference, tmp_path) as first,
        operator_replica("b", kube, reference, tmp_path) as second,
    ):
        # Both replicas announced themselves in the peering object.
        await cluster.wait_for(
            PEERING_RESOURCE, PEERING, lambda o: len(o.get("status") or {}) == 2, timeout=STARTUP_TIMEOUT
        )

        await cluster.create(PGROUP_RESOURCE, group("from-process"))
        await cluster.wait_for(
            PGROUP_RESOURCE,
            "from-process",
            lambda o: condition_is(o, "Ready", "True"),
            timeout=STARTUP_TIMEOUT,
        )
        # Exactly one replica reconciled it (kopf pauses every tied replica: priorities differ).
        texts = [await first.metrics(), await second.metrics()]
        active = [CHANGE_RECONCILED in text for text in texts]
        assert active.count(True) == 1, texts
        assert 'cfs_cloud_calls_total{action="CreateCfsRule",code="OK"} 1.0' in texts[active.index(True)]
        leader, standby = (first, second) if active[0] else (second, first)

        # The active replica stops cleanly; the standby takes over at once (the leaver's peering
        # entry expires on exit).
        assert await leader.stop() == 0, leader.log_path.read_text()
        await cluster.create(PGROUP_RESOURCE, group("after-failover"))
        await cluster.wait_for(
            PGROUP_RESOURCE,
            "after-failover",
            lambda o: condition_is(o, "Ready", "True"),
            timeout=STARTUP_TIMEOUT,
        )
        # It created only the new group; the one its peer had made was resumed with a read.
        text = await standby.metrics()
        assert 'cfs_cloud_calls_total{action="CreateCfsPGroup",code="OK"} 1.0' in text
        assert 'cfs_cloud_calls_total{action="DescribeCfsRules",code="OK"} 1.0' in text
    assert standby.process.returncode == 0, standby.log_path.read_text()
    for replica in (first, second):
        assert reference.secret_key not in replica.log_path.read_text()  # even at DEBUG
