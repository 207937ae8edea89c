"""CfsAutoSnapshotPolicy end to end: kopf running for real against kmock's Kubernetes API and the
reference CFS service over HTTP. The cloud is checked through a second cfs_cloud client."""

from __future__ import annotations

from typing import Any

import pytest

from cfs_cloud import CfsClient, CfsNotFound
from tests.support.kube import (
    PGROUP_RESOURCE,
    POLICY_RESOURCE,
    calls_by_action,
    condition,
    condition_is,
    fast_cloud_config,
    fast_config,
    make_file_system,
    running_operator,
)

KIND = {"apiVersion": "cfs.tencentcloud.com/v1alpha1", "kind": "CfsAutoSnapshotPolicy"}


def policy(resource_name: str, /, **spec: Any) -> dict[str, Any]:
    return {**KIND, "metadata": {"name": resource_name}, "spec": spec}


def ready(obj: dict[str, Any] | None) -> bool:
    return condition_is(obj, "Ready", "True")


def cloud_policy(client: CfsClient, policy_id: str) -> dict[str, Any] | None:
    try:
        reply = client.call("DescribeAutoSnapshotPolicies", {"AutoSnapshotPolicyId": policy_id})
    except CfsNotFound:
        return None
    return next((p for p in reply["AutoSnapshotPolicies"] if p["AutoSnapshotPolicyId"] == policy_id), None)


def bound(client: CfsClient, policy_id: str) -> set[str]:
    return {fs["FileSystemId"] for fs in cloud_policy(client, policy_id)["FileSystems"]}


def synced_with(**status: Any):
    return lambda obj: ready(obj) and all(obj["status"].get(k) == v for k, v in status.items())


@pytest.fixture
def file_systems(cloud_client, reference) -> list[str]:
    return [make_file_system(cloud_client, reference.region, f"fs{i}") for i in range(3)]


async def test_create_edit_and_delete_with_fewest_calls(kube, cluster, reference, cloud_client, file_systems):
    fs1, fs2, fs3 = file_systems
    async with running_operator(kube, fast_cloud_config(reference), fast_config()):
        reference.admin.reset_calls()
        await cluster.create(
            POLICY_RESOURCE,
            policy("nightly", dayOfWeek=[1, 3, 5], hour=[2], aliveDays=7, fileSystemIds=[fs1, fs2]),
        )
        obj = await cluster.wait_for(POLICY_RESOURCE, "nightly", ready)
        policy_id = obj["status"]["autoSnapshotPolicyId"]
        assert obj["status"]["fileSystemIds"] == sorted([fs1, fs2]) and obj["status"]["fileSystemCount"] == 2
        assert obj["status"]["nextActiveTime"]
        cloud = cloud_policy(cloud_client, policy_id)
        assert (
            cloud["PolicyName"],
            cloud["DayOfWeek"],
            cloud["Hour"],
            cloud["AliveDays"],
            cloud["IsActive"],
        ) == ("nightly", "1,3,5", "2", 7, 1)
        assert bound(cloud_client, policy_id) == {fs1, fs2}
        # Both file systems in one bind call.
        assert calls_by_action(reference) == {"CreateAutoSnapshotPolicy": 1, "BindAutoSnapshotPolicy": 1}
        await cluster.wait_for_events("nightly", "Created", "Bound")

        # Settings edited in place (one update); one file system swapped (one unbind, one bind).
        reference.admin.reset_calls()
        await cluster.patch(
            POLICY_RESOURCE,
            "nightly",
            {"spec": {"hour": [1, 13], "aliveDays": 30, "isActive": False, "fileSystemIds": [fs2, fs3]}},
        )
        await cluster.wait_for(POLICY_RESOURCE, "nightly", synced_with(fileSystemIds=sorted([fs2, fs3])))
        cloud = cloud_policy(cloud_client, policy_id)
        assert (cloud["Hour"], cloud["AliveDays"], cloud["IsActive"]) == ("1,13", 30, 0)
        assert bound(cloud_client, policy_id) == {fs2, fs3}
        assert calls_by_action(reference) == {
            "UpdateAutoSnapshotPolicy": 1,
            "UnbindAutoSnapshotPolicy": 1,
            "BindAutoSnapshotPolicy": 1,
        }

        # Delete (the default for created policies): unbind everything, then delete.
        reference.admin.reset_calls()
        await cluster.delete(POLICY_RESOURCE, "nightly")
        await cluster.wait_for(POLICY_RESOURCE, "nightly", lambda o: o is None)
        assert cloud_policy(cloud_client, policy_id) is None
        assert calls_by_action(reference) == {"UnbindAutoSnapshotPolicy": 1, "DeleteAutoSnapshotPolicy": 1}


async def test_drift_and_retain(kube, cluster, reference, cloud_client, file_systems):
    fs1, fs2, _ = file_systems
    async with running_operator(kube, fast_cloud_config(reference), fast_config(drift_interval=0.3)):
        await cluster.create(
            POLICY_RESOURCE,
            policy("kept", dayOfWeek=[7], hour=[0], fileSystemIds=[fs1, fs2], deletionPolicy="Retain"),
        )
        obj = await cluster.wait_for(POLICY_RESOURCE, "kept", ready)
        policy_id = obj["status"]["autoSnapshotPolicyId"]

        # Behind the operator's back: a file system unbound and the schedule changed.
        cloud_client.call(
            "UnbindAutoSnapshotPolicy", {"AutoSnapshotPolicyId": policy_id, "FileSystemIds": fs1}
        )
        cloud_client.call("UpdateAutoSnapshotPolicy", {"AutoSnapshotPolicyId": policy_id, "DayOfWeek": "1,2"})
        await cluster.wait_for(
            POLICY_RESOURCE, "kept", lambda o: condition_is(o, "Synced", "True", "DriftRepaired")
        )
        assert bound(cloud_client, policy_id) == {fs1, fs2}
        assert cloud_policy(cloud_client, policy_id)["DayOfWeek"] == "7"
        await cluster.wait_for_events("kept", "DriftRepaired", "Bound", "PolicyUpdated")

        await cluster.delete(POLICY_RESOURCE, "kept")
        await cluster.wait_for(POLICY_RESOURCE, "kept", lambda o: o is None)
        assert bound(cloud_client, policy_id) == {fs1, fs2}  # Retain leaves policy and bindings


async def test_adoption_keeps_bindings_unless_told(kube, cluster, reference, cloud_client, file_systems):
    fs1, fs2, _ = file_systems
    existing = cloud_client.call(
        "CreateAutoSnapshotPolicy", {"PolicyName": "legacy", "DayOfWeek": "6", "Hour": "4", "AliveDays": 3}
    )["AutoSnapshotPolicyId"]
    cloud_client.call(
        "BindAutoSnapshotPolicy", {"AutoSnapshotPolicyId": existing, "FileSystemIds": f"{fs1},{fs2}"}
    )
    async with running_operator(kube, fast_cloud_config(reference), fast_config()):
        reference.admin.reset_calls()
        await cluster.create(POLICY_RESOURCE, policy("adopted", autoSnapshotPolicyId=existing))
        obj = await cluster.wait_for(POLICY_RESOURCE, "adopted", ready)
        assert obj["status"]["adopted"] is True and obj["status"]["policyName"] == "legacy"
        assert obj["status"]["fileSystemIds"] == sorted([fs1, fs2])
        assert calls_by_action(reference) == {}

        await cluster.patch(POLICY_RESOURCE, "adopted", {"spec": {"fileSystemIds": [fs2], "aliveDays": 9}})
        await cluster.wait_for(POLICY_RESOURCE, "adopted", synced_with(fileSystemIds=[fs2]))
        assert bound(cloud_client, existing) == {fs2}
        assert cloud_policy(cloud_client, existing)["AliveDays"] == 9

        await cluster.delete(POLICY_RESOURCE, "adopted")
        await cluster.wait_for(POLICY_RESOURCE, "adopted", lambda o: o is None)
        assert cloud_policy(cloud_client, existing) is not None  # adopted: Retain by default


async def test_unknown_file_system_is_reported_and_the_rest_bound(
    kube, cluster, reference, cloud_client, file_systems
):
    fs1 = file_systems[0]
    async with running_operator(kube, fast_cloud_config(reference), fast_config()):
        await cluster.create(
            POLICY_RESOURCE,
            policy("partial", dayOfWeek=[2], hour=[3], fileSystemIds=[fs1, "cfs-doesnotexist"]),
        )
        obj = await cluster.wait_for(
            POLICY_RESOURCE, "partial", lambda o: condition_is(o, "Synced", "False", "BindFailed")
        )
        assert "cfs-doesnotexist" in condition(obj, "Synced")["message"]
        assert bound(cloud_client, obj["status"]["autoSnapshotPolicyId"]) == {fs1}

        await cluster.patch(POLICY_RESOURCE, "partial", {"spec": {"fileSystemIds": [fs1]}})
        await cluster.wait_for(POLICY_RESOURCE, "partial", synced_with(fileSystemIds=[fs1]))


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"dayOfWeek": [8], "hour": [1]}, "spec.dayOfWeek[0]"),
        ({"dayOfWeek": [1], "hour": [24]}, "spec.hour[0]"),
        ({"hour": [1]}, "spec.dayOfWeek"),
        ({"dayOfWeek": [1], "hour": [1], "fileSystemIds": ["nfs-1"]}, "spec.fileSystemIds[0]"),
        (
            {
                "dayOfWeek": [1],
                "hour": [1],
                "persistentVolumeClaimSelector": {
                    "labelSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}
                },
            },
            "spec.persistentVolumeClaimSelector.labelSelector.matchExpressions[0].values",
        ),
    ],
)
async def test_invalid_specs_never_reach_the_cloud(kube, cluster, reference, spec, field):
    async with running_operator(kube, fast_cloud_config(reference), fast_config()):
        reference.admin.reset_calls()
        await cluster.create(POLICY_RESOURCE, policy("invalid", **spec))
        obj = await cluster.wait_for(
            POLICY_RESOURCE, "invalid", lambda o: condition_is(o, "Ready", "False", "InvalidSpec")
        )
        assert condition(obj, "Ready")["message"].startswith(field + ":")
        assert calls_by_action(reference) == {}


async def test_finalizers_are_released_when_the_cloud_objects_are_already_gone(
    kube, cluster, reference, cloud_client, file_systems
):
    async with running_operator(kube, fast_cloud_config(reference), fast_config()):
        await cluster.create(
            POLICY_RESOURCE, policy("vanished", dayOfWeek=[1], hour=[1], fileSystemIds=file_systems[:1])
        )
        await cluster.create(
            PGROUP_RESOURCE,
            {
                "apiVersion": "cfs.tencentcloud.com/v1alpha1",
                "kind": "CfsPermissionGroup",
                "metadata": {"name": "vanished"},
                "spec": {"rules": [{"clientIp": "*", "priority": 1}]},
            },
        )
        policy_id = (await cluster.wait_for(POLICY_RESOURCE, "vanished", ready))["status"][
            "autoSnapshotPolicyId"
        ]
        pgroup_id = (await cluster.wait_for(PGROUP_RESOURCE, "vanished", ready))["status"]["pGroupId"]
        cloud_client.call("DeleteAutoSnapshotPolicy", {"AutoSnapshotPolicyId": policy_id})
        cloud_client.call("DeleteCfsPGroup", {"PGroupId": pgroup_id})

        reference.admin.reset_calls()
        await cluster.delete(POLICY_RESOURCE, "vanished")
        await cluster.delete(PGROUP_RESOURCE, "vanished")
        await cluster.wait_for(POLICY_RESOURCE, "vanished", lambda o: o is None)
        await cluster.wait_for(PGROUP_RESOURCE, "vanished", lambda o: o is None)
        # One look (policy) or one attempt (group) each, nothing retried, no Warning.
        assert calls_by_action(reference, writes_only=False) == {
            "DescribeAutoSnapshotPolicies": 1,
            "DeleteCfsPGroup": 1,
        }
        warnings = [e for e in cluster.events("vanished") if e.get("type") == "Warning"]
        assert warnings == []
