"""The `cfs-operator` program itself: flags, credentials from the environment, kubeconfig login,
kopf peering, liveness endpoint, Prometheus metrics, and a clean exit on SIGTERM. It runs as a subprocess
against kmock (served by this test's event loop) and the reference service."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time

import aiohttp
import yaml

from tests.support.kube import kube  # noqa: F401  (pytest fixture)
from tests.support.kube import PGROUP_RESOURCE, Cluster, condition_is

STARTUP_TIMEOUT = 30.0
PEERING_RESOURCE = "kopf.dev/v1/clusterkopfpeerings"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def get_text(url: str) -> tuple[int, str] | None:
    try:
        async with aiohttp.ClientSession() as session, session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as reply:
            return reply.status, await reply.text()
    except aiohttp.ClientError:
        return None


async def test_operator_process_end_to_end(kube, reference, tmp_path):
    cluster = Cluster(kube)
    await cluster.create(PEERING_RESOURCE, {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                                            "metadata": {"name": "cfs-operator"}})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": str(kube.url).rstrip("/")}}],
        "users": [{"name": "tester", "user": {}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "tester", "namespace": "default"}}],
    }))
    liveness, metrics = free_port(), free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig),
        "CFS_ENDPOINT": reference.url, "TENCENTCLOUD_REGION": reference.region,
        "TENCENTCLOUD_SECRET_ID": reference.secret_id, "TENCENTCLOUD_SECRET_KEY": reference.secret_key,
    }
    log_path = tmp_path / "operator.log"
    with open(log_path, "wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cfs_operator", "--liveness", f"http://127.0.0.1:{liveness}/healthz",
            "--metrics-address", f"127.0.0.1:{metrics}", "--drift-interval", "60", "--peering", "cfs-operator",
            # Claims limited to one namespace: the peering stays cluster-wide (ClusterKopfPeering).
            "--namespace", "default", "--log-level", "DEBUG",
            env=env, stdout=log, stderr=asyncio.subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while (await get_text(f"http://127.0.0.1:{liveness}/healthz") or (0,))[0] != 200:
            assert process.returncode is None, log_path.read_text()
            assert time.monotonic() < deadline, "liveness endpoint never answered:\n" + log_path.read_text()
            await asyncio.sleep(0.2)

        await cluster.create(PGROUP_RESOURCE, {
            "apiVersion": "cfs.tencentcloud.com/v1alpha1", "kind": "CfsPermissionGroup",
            "metadata": {"name": "from-process"}, "spec": {"rules": [{"clientIp": "10.7.0.0/16", "priority": 1}]}})
        await cluster.wait_for(PGROUP_RESOURCE, "from-process", lambda o: condition_is(o, "Ready", "True"),
                               timeout=STARTUP_TIMEOUT)

        # The replica announced itself in the peering object (one active replica among peers).
        peering = cluster.get(PEERING_RESOURCE, "cfs-operator")
        assert peering.get("status"), peering

        status, text = await get_text(f"http://127.0.0.1:{metrics}/metrics")
        assert status == 200
        assert 'cfs_operator_reconciles_total{kind="CfsPermissionGroup",result="ok",trigger="change"} 1.0' in text
        assert 'cfs_cloud_calls_total{action="CreateCfsRule",code="OK"} 1.0' in text
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STARTUP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
    assert process.returncode == 0, log_path.read_text()
    output = log_path.read_text()
    assert reference.secret_key not in output      # even at DEBUG
