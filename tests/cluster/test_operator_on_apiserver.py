"""The operator against a real kube-apiserver (tests/support/control_plane.py), not kmock: the
chart's CRDs are served and enforced by the real server, and `cfs-operator` reconciles a
CfsPermissionGroup applied with kubectl against the reference service: Ready, drift repaired,
finalizer on deletion."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.control_plane import ControlPlane, missing, running_control_plane

REPO = Path(__file__).resolve().parents[2]
CLUSTER_MISSING = missing()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CLUSTER_MISSING is not None, reason=CLUSTER_MISSING or "")]
CHART_CRDS = REPO / "charts" / "cfs-csi" / "crds"
EXAMPLE = REPO / "deploy" / "examples" / "cfs-permissiongroup.yaml"
INVALID = REPO / "tests" / "data" / "operator" / "invalid-cfspermissiongroup.yaml"
WAIT_SECONDS = 60.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[ControlPlane]:
    with running_control_plane(tmp_path_factory.mktemp("control-plane")) as plane:
        plane.kubectl("apply", "-f", str(CHART_CRDS))
        plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        yield plane


def eventually(check, what):
    """check()'s first truthy result; on timeout the assertion says what(), e.g. with a log."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what()}"
        time.sleep(0.25)
    return result


def test_the_real_server_refuses_an_invalid_permission_group_at_admission(cluster):
    refused = cluster.kubectl("apply", "-f", str(INVALID), check=False)
    assert refused.returncode != 0
    for field in ("spec.deletionPolicy", "spec.rules[0].rwPermission", "spec.rules[0].priority",
                  "spec.rules[1].clientIp"):  # fmt: skip
        assert field in refused.stderr, refused.stderr
    assert cluster.kubectl("get", "cfspermissiongroups", "-o", "name").stdout == ""


def test_the_operator_reconciles_a_permission_group_applied_with_kubectl(
    cluster, reference, cloud_client, tmp_path
):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "KUBECONFIG": str(cluster.kubeconfig),
        "CFS_ENDPOINT": reference.url,
        "TENCENTCLOUD_REGION": reference.region,
        "TENCENTCLOUD_SECRET_ID": reference.secret_id,
        "TENCENTCLOUD_SECRET_KEY": reference.secret_key,
    }
    log = tmp_path / "operator.log"
    with open(log, "wb") as out:
        argv = [sys.executable, "-m", "cfs_operator", "--drift-interval", "1", "--log-level", "DEBUG"]
        operator = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        cluster.kubectl("apply", "-f", str(EXAMPLE))

        def ready():
            obj = cluster.get("cfspermissiongroup", "web-tier")
            conditions = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
            return obj if conditions.get("Ready", {}).get("status") == "True" else None

        obj = eventually(ready, lambda: "web-tier Ready; operator log:\n" + log.read_text()[-3000:])
        pgroup_id = obj["status"]["pGroupId"]
        assert obj["metadata"]["finalizers"] == ["cfs.tencentcloud.com/finalizer"]
        groups = {g["PGroupId"]: g for g in reference.admin.state()["PGroups"]}
        assert pgroup_id in groups
        rules = sorted(
            r["AuthClientIp"] for r in reference.admin.state()["Rules"] if r["PGroupId"] == pgroup_id
        )
        assert rules == sorted(["10.0.1.0/24", "10.0.0.5", "*"])
        assert obj["status"]["ruleCount"] == 3

        # Drift: a rule deleted behind the operator's back comes back, and the status says so.
        cloud_client.call(
            "DeleteCfsRule", {"PGroupId": pgroup_id, "RuleId": obj["status"]["rules"][0]["ruleId"]}
        )

        def repaired():
            conditions = cluster.get("cfspermissiongroup", "web-tier").get("status", {}).get("conditions", [])
            return any(c["type"] == "Synced" and c["reason"] == "DriftRepaired" for c in conditions)

        eventually(repaired, lambda: "drift repair; operator log:\n" + log.read_text()[-3000:])
        rules_now = [r for r in reference.admin.state()["Rules"] if r["PGroupId"] == pgroup_id]
        assert sorted(r["AuthClientIp"] for r in rules_now) == sorted(["10.0.1.0/24", "10.0.0.5", "*"])

        cluster.kubectl("delete", "-f", str(EXAMPLE), "--timeout=60s")
        assert pgroup_id not in {g["PGroupId"] for g in reference.admin.state()["PGroups"]}
    finally:
        operator.terminate()
        operator.wait(30)
