"""The operator as the chart runs it (its Deployment's container, logged in with the chart's
ServiceAccount token, so its RBAC is checked) on a real control plane: custom resources applied
as YAML become cloud objects, `kubectl get` shows the printer columns, the real server refuses
invalid specs at admission (schema and CEL), drift is repaired, failures show in the conditions
and clear again, and deletion runs the finalizer."""

from __future__ import annotations

import pytest
import yaml

from tests.support.chart_lane import REPO, apply, claim
from tests.support.cloud import cloud_client
from tests.support.control_plane import missing

CLUSTER_MISSING = missing()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CLUSTER_MISSING is not None, reason=CLUSTER_MISSING or "")]
EXAMPLES = REPO / "deploy" / "examples"
INVALID = REPO / "tests" / "data" / "operator" / "invalid-cfspermissiongroup.yaml"
FINALIZER = "cfs.tencentcloud.com/finalizer"


def conditions(lane, kind: str, name: str) -> dict[str, dict]:
    return {c["type"]: c for c in lane.get(kind, name).get("status", {}).get("conditions", [])}


def ready(lane, kind: str, name: str) -> dict:
    """The object once its Ready condition is True."""

    def check():
        obj = lane.get(kind, name)
        ready = [c for c in obj.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
        return obj if ready and ready[0]["status"] == "True" else None

    return lane.wait_for(check, f"{kind} {name} Ready")


def rules_of(lane, pgroup_id: str) -> list[str]:
    return sorted(
        r["AuthClientIp"] for r in lane.reference.admin.state()["Rules"] if r["PGroupId"] == pgroup_id
    )


def test_invalid_specs_are_refused_at_admission_by_schema_and_cel(lane):
    refused = lane.plane.kubectl("apply", "-f", str(INVALID), check=False)
    assert refused.returncode != 0
    for field in ("spec.deletionPolicy", "spec.rules[0].rwPermission", "spec.rules[0].priority",
                  "spec.rules[1].clientIp"):  # fmt: skip
        assert field in refused.stderr, refused.stderr
    no_schedule = {"apiVersion": "cfs.tencentcloud.com/v1alpha1", "kind": "CfsAutoSnapshotPolicy",
                   "metadata": {"name": "no-schedule"}, "spec": {"aliveDays": 7}}  # fmt: skip
    refused = lane.plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(no_schedule), check=False)
    assert "dayOfWeek and hour are required" in refused.stderr, refused.stderr
    names = lane.plane.kubectl("get", "cfspermissiongroups,cfsautosnapshotpolicies", "-o", "name").stdout
    assert "broken" not in names and "no-schedule" not in names


def test_a_permission_group_lives_its_whole_life_through_the_chart_operator(lane):
    lane.plane.kubectl("apply", "-f", str(EXAMPLES / "cfs-permissiongroup.yaml"))
    obj = ready(lane, "cfspermissiongroup", "web-tier")
    pgroup_id = obj["status"]["pGroupId"]
    assert obj["metadata"]["finalizers"] == [FINALIZER]
    assert rules_of(lane, pgroup_id) == sorted(["10.0.1.0/24", "10.0.0.5", "*"])
    listed = lane.plane.kubectl("get", "cfspermissiongroup", "web-tier").stdout.splitlines()
    assert listed[0].split()[:5] == ["NAME", "ID", "READY", "RULES", "BOUND"], listed
    assert listed[1].split()[:4] == ["web-tier", pgroup_id, "True", "3"], listed
    # kopf posts events in the background; a cluster-scoped object's go to the operator's own
    # namespace (its ServiceAccount's), not to default.
    created = lane.wait_for(
        lambda: [
            e
            for e in lane.events("CfsPermissionGroup", "web-tier", lane.namespace)
            if e["reason"] == "Created"
        ],
        "a Created event on web-tier",
    )
    assert pgroup_id in created[0]["message"], created

    # Drift: a rule deleted behind the operator's back comes back.
    rule_id = obj["status"]["rules"][0]["ruleId"]
    cloud_client(lane.reference).call("DeleteCfsRule", {"PGroupId": pgroup_id, "RuleId": rule_id})
    lane.wait_for(
        lambda: (
            conditions(lane, "cfspermissiongroup", "web-tier").get("Synced", {}).get("reason")
            == "DriftRepaired"
        ),
        "drift repaired",
    )
    assert rules_of(lane, pgroup_id) == sorted(["10.0.1.0/24", "10.0.0.5", "*"])

    # A later change the cloud rejects: Ready turns False with the reason; a fix brings it back.
    lane.reference.admin.set_faults(
        [{"action": "CreateCfsRule", "code": "InvalidParameterValue.InvalidAuthClientIp", "rate": 1.0}]
    )
    extra_rule = {
        "clientIp": "10.0.2.0/24",
        "rwPermission": "RO",
        "userPermission": "root_squash",
        "priority": 20,
    }
    patch = {"spec": {"rules": [*obj["spec"]["rules"], extra_rule]}}
    lane.plane.kubectl("patch", "cfspermissiongroup", "web-tier", "--type=merge", "-p", yaml.safe_dump(patch))
    failed = lane.wait_for(
        lambda: (
            (c := conditions(lane, "cfspermissiongroup", "web-tier").get("Ready"))
            and c["status"] == "False"
            and c
        ),
        "Ready False after a rejected change",
    )
    assert failed["reason"] == "CloudRejected" and "spec.rules[].clientIp" in failed["message"], failed
    lane.reference.admin.set_faults([])
    extra_rule["priority"] = 21  # a new generation: the operator tries again
    lane.plane.kubectl("patch", "cfspermissiongroup", "web-tier", "--type=merge", "-p", yaml.safe_dump(patch))
    ready(lane, "cfspermissiongroup", "web-tier")
    assert "10.0.2.0/24" in rules_of(lane, pgroup_id)

    lane.plane.kubectl("delete", "cfspermissiongroup", "web-tier", "--timeout=60s")
    assert pgroup_id not in {g["PGroupId"] for g in lane.reference.admin.state()["PGroups"]}


def test_a_snapshot_policy_follows_the_claims_its_selector_picks(lane):
    lane.plane.kubectl("label", "namespace", "default", "env=prod", "--overwrite")
    apply(lane.plane, [claim("nightly", "cfs", labels={"backup": "nightly"})])
    lane.wait_for(lambda: lane.phase("pvc", "nightly") == "Bound", "claim nightly Bound")
    pv = lane.get("pv", lane.get("pvc", "nightly", "-n", "default")["spec"]["volumeName"])
    file_system_id = pv["spec"]["csi"]["volumeAttributes"]["fileSystemId"]

    lane.plane.kubectl("apply", "-f", str(EXAMPLES / "cfs-autosnapshotpolicy-pvc-selector.yaml"))

    def bound_to_the_claim():
        obj = ready(lane, "cfsautosnapshotpolicy", "prod-nightly")
        policy_id = obj["status"]["autoSnapshotPolicyId"]
        bindings = lane.reference.admin.state()["Bindings"]
        return policy_id if any(b["FileSystemId"] == file_system_id for b in bindings) else None

    policy_id = lane.wait_for(bound_to_the_claim, "policy prod-nightly bound to the claim's file system")
    listed = lane.plane.kubectl("get", "cfsautosnapshotpolicy", "prod-nightly").stdout.splitlines()
    assert listed[1].split()[:4] == ["prod-nightly", policy_id, "True", "1"], listed

    # The claim loses its label: the binding goes.
    lane.plane.kubectl("label", "pvc", "nightly", "-n", "default", "backup-")
    lane.wait_for(
        lambda: (
            not any(b["FileSystemId"] == file_system_id for b in lane.reference.admin.state()["Bindings"])
        ),
        "the binding removed",
    )
    lane.plane.kubectl("delete", "cfsautosnapshotpolicy", "prod-nightly", "--timeout=60s")
    assert policy_id not in {
        p["AutoSnapshotPolicyId"] for p in lane.reference.admin.state()["AutoSnapshotPolicies"]
    }
