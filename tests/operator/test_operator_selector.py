"""persistentVolumeClaimSelector: Namespaces, PVCs and PVs created in kmock; the policy's bindings in
the reference service follow claims as they appear, are re-labelled, change namespace labels or go."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.kube import (
    NAMESPACE_RESOURCE,
    POLICY_RESOURCE,
    PV_RESOURCE,
    PVC_RESOURCE,
    Cluster,
    calls_by_action,
    condition,
    condition_is,
    fast_cloud_config,
    fast_config,
    make_file_system,
    running_operator,
)

DRIVER = "cfs.csi.tencentcloud.com"


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def volume(name: str, claim: tuple[str, str], csi: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {"csi": csi, "claimRef": {"namespace": claim[0], "name": claim[1]}},
    }


def claim(ns: str, name: str, volume_name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"volumeName": volume_name},
        "status": {"phase": "Bound"},
    }


def bound_to(*fs_ids: str):
    return lambda obj: (
        condition_is(obj, "Ready", "True") and obj["status"].get("fileSystemIds") == sorted(fs_ids)
    )


async def test_bindings_follow_claims(kube, reference, cloud_client):
    cluster = Cluster(kube)
    fs = [make_file_system(cloud_client, reference.region, f"fs{i}") for i in range(4)]
    await cluster.create(NAMESPACE_RESOURCE, namespace("team-a", env="prod"))
    await cluster.create(NAMESPACE_RESOURCE, namespace("team-b", env="dev"))
    # Volume ids as the driver writes them (fs:<id>, subdir:<id>:<path>), a static volume that
    # only names its file system in volumeAttributes, and a volume of some other driver.
    await cluster.create(
        PV_RESOURCE, volume("pv-0", ("team-a", "data"), {"driver": DRIVER, "volumeHandle": f"fs:{fs[0]}"})
    )
    await cluster.create(
        PV_RESOURCE,
        volume("pv-1", ("team-a", "logs"), {"driver": DRIVER, "volumeHandle": f"subdir:{fs[1]}:pvc-logs"}),
    )
    await cluster.create(
        PV_RESOURCE,
        volume(
            "pv-2",
            ("team-b", "data"),
            {"driver": DRIVER, "volumeHandle": "static-share", "volumeAttributes": {"fileSystemId": fs[2]}},
        ),
    )
    await cluster.create(
        PV_RESOURCE,
        volume("pv-3", ("team-a", "other"), {"driver": "ebs.csi.aws.com", "volumeHandle": f"fs:{fs[3]}"}),
    )
    await cluster.create(PVC_RESOURCE, claim("team-a", "data", "pv-0", backup="daily"))
    await cluster.create(PVC_RESOURCE, claim("team-a", "logs", "pv-1"))
    await cluster.create(PVC_RESOURCE, claim("team-b", "data", "pv-2", backup="daily"))
    await cluster.create(PVC_RESOURCE, claim("team-a", "other", "pv-3", backup="daily"))

    async with running_operator(kube, fast_cloud_config(reference), fast_config(selection_interval=0.1)):
        await cluster.create(
            POLICY_RESOURCE,
            {
                "apiVersion": "cfs.tencentcloud.com/v1alpha1",
                "kind": "CfsAutoSnapshotPolicy",
                "metadata": {"name": "prod-daily"},
                "spec": {
                    "dayOfWeek": [1, 2, 3, 4, 5, 6, 7],
                    "hour": [3],
                    "persistentVolumeClaimSelector": {
                        "namespaceSelector": {"matchLabels": {"env": "prod"}},
                        "labelSelector": {
                            "matchExpressions": [{"key": "backup", "operator": "In", "values": ["daily"]}]
                        },
                    },
                },
            },
        )
        await cluster.wait_for(POLICY_RESOURCE, "prod-daily", bound_to(fs[0]))

        # A claim gets the label: its file system is bound.
        await cluster.patch(
            PVC_RESOURCE, "logs", {"metadata": {"labels": {"backup": "daily"}}}, namespace="team-a"
        )
        await cluster.wait_for(POLICY_RESOURCE, "prod-daily", bound_to(fs[0], fs[1]))

        # A namespace starts matching: its claims' file systems are bound too.
        await cluster.patch(NAMESPACE_RESOURCE, "team-b", {"metadata": {"labels": {"env": "prod"}}})
        await cluster.wait_for(POLICY_RESOURCE, "prod-daily", bound_to(fs[0], fs[1], fs[2]))

        # A claim loses the label, another one goes away: both are unbound.
        await cluster.patch(
            PVC_RESOURCE, "data", {"metadata": {"labels": {"backup": None}}}, namespace="team-a"
        )
        await cluster.delete(PVC_RESOURCE, "logs", namespace="team-a")
        obj = await cluster.wait_for(POLICY_RESOURCE, "prod-daily", bound_to(fs[2]))

        reply = cloud_client.call(
            "DescribeAutoSnapshotPolicies", {"AutoSnapshotPolicyId": obj["status"]["autoSnapshotPolicyId"]}
        )
        assert [f["FileSystemId"] for f in reply["AutoSnapshotPolicies"][0]["FileSystems"]] == [fs[2]]
        await cluster.wait_for_events("prod-daily", "Bound", "Unbound")


async def test_unbound_claims_and_claims_outside_the_watched_namespaces(kube, reference, cloud_client):
    cluster = Cluster(kube)
    fs = [make_file_system(cloud_client, reference.region, f"fs{i}") for i in range(4)]
    for name in ("team-a", "team-b"):
        await cluster.create(NAMESPACE_RESOURCE, namespace(name))
    await cluster.create(
        PV_RESOURCE, volume("pv-0", ("team-a", "data"), {"driver": DRIVER, "volumeHandle": f"fs:{fs[0]}"})
    )
    await cluster.create(
        PV_RESOURCE, volume("pv-1", ("team-b", "data"), {"driver": DRIVER, "volumeHandle": f"fs:{fs[1]}"})
    )
    # A claim naming a volume that the volume itself gives to another claim (claimRef) is not bound.
    await cluster.create(
        PV_RESOURCE, volume("pv-2", ("team-a", "owner"), {"driver": DRIVER, "volumeHandle": f"fs:{fs[2]}"})
    )
    await cluster.create(PVC_RESOURCE, claim("team-a", "data", "pv-0"))
    await cluster.create(PVC_RESOURCE, claim("team-b", "data", "pv-1"))
    await cluster.create(PVC_RESOURCE, claim("team-a", "squatter", "pv-2"))
    pending = claim("team-a", "pending", "")
    del pending["spec"]["volumeName"], pending["status"]
    await cluster.create(PVC_RESOURCE, pending)

    config = fast_config(selection_interval=0.1, claim_namespaces=("team-a",))
    async with running_operator(kube, fast_cloud_config(reference), config):
        await cluster.create(
            POLICY_RESOURCE,
            {
                "apiVersion": "cfs.tencentcloud.com/v1alpha1",
                "kind": "CfsAutoSnapshotPolicy",
                "metadata": {"name": "everything"},
                "spec": {"dayOfWeek": [1], "hour": [3], "persistentVolumeClaimSelector": {}},
            },
        )
        # team-b is outside --namespace; the pending claim has no volume yet; the squatter's
        # volume belongs to another claim.
        await cluster.wait_for(POLICY_RESOURCE, "everything", bound_to(fs[0]))

        # The pending claim gets its volume: its file system follows.
        await cluster.create(
            PV_RESOURCE,
            volume("pv-3", ("team-a", "pending"), {"driver": DRIVER, "volumeHandle": f"fs:{fs[3]}"}),
        )
        await cluster.patch(PVC_RESOURCE, "pending", {"spec": {"volumeName": "pv-3"}}, namespace="team-a")
        await cluster.wait_for(POLICY_RESOURCE, "everything", bound_to(fs[0], fs[3]))


async def test_a_selection_that_cannot_be_bound_is_not_retried_every_tick(kube, reference, cloud_client):
    """A claim whose volume names a file system the cloud does not know: BindFailed, and the
    selection timer does not hammer the API with the same set (the change handler retries later)."""
    cluster = Cluster(kube)
    fs = make_file_system(cloud_client, reference.region, "fs-ok")
    await cluster.create(NAMESPACE_RESOURCE, namespace("team-a"))
    await cluster.create(
        PV_RESOURCE, volume("pv-ok", ("team-a", "ok"), {"driver": DRIVER, "volumeHandle": f"fs:{fs}"})
    )
    await cluster.create(
        PV_RESOURCE,
        volume("pv-gone", ("team-a", "gone"), {"driver": DRIVER, "volumeHandle": "fs:cfs-gone0000"}),
    )
    await cluster.create(PVC_RESOURCE, claim("team-a", "ok", "pv-ok"))
    await cluster.create(PVC_RESOURCE, claim("team-a", "gone", "pv-gone"))

    config = fast_config(selection_interval=0.1, slow_retry_delay=60.0)
    async with running_operator(kube, fast_cloud_config(reference), config):
        await cluster.create(
            POLICY_RESOURCE,
            {
                "apiVersion": "cfs.tencentcloud.com/v1alpha1",
                "kind": "CfsAutoSnapshotPolicy",
                "metadata": {"name": "half"},
                "spec": {"dayOfWeek": [1], "hour": [3], "persistentVolumeClaimSelector": {}},
            },
        )
        obj = await cluster.wait_for(
            POLICY_RESOURCE, "half", lambda o: condition_is(o, "Synced", "False", "BindFailed")
        )
        assert (
            obj["status"]["fileSystemIds"] == [fs] and "cfs-gone0000" in condition(obj, "Synced")["message"]
        )

        reference.admin.reset_calls()
        await asyncio.sleep(1.0)  # ten selection ticks
        assert calls_by_action(reference, writes_only=False) == {}

        # A real change of the selection is still followed at once.
        await cluster.delete(PVC_RESOURCE, "gone", namespace="team-a")
        await cluster.wait_for(POLICY_RESOURCE, "half", bound_to(fs))
