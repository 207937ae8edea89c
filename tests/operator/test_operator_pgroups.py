"""CfsPermissionGroup end to end: kopf running for real against kmock's Kubernetes API and the
reference CFS service over HTTP. The cloud is checked through a second cfs_cloud client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from cfs_cloud import CfsClient
from tests.support.kube import (
    PGROUP_RESOURCE,
    calls_by_action,
    condition,
    condition_is,
    fast_cloud_config,
    fast_config,
    make_file_system,
    running_operator,
)

KIND = {"apiVersion": "cfs.tencentcloud.com/v1alpha1", "kind": "CfsPermissionGroup"}
FINALIZER = "cfs.tencentcloud.com/finalizer"


def rule(client_ip: str, priority: int, rw: str = "RO", squash: str = "root_squash") -> dict[str, Any]:
    return {"clientIp": client_ip, "rwPermission": rw, "userPermission": squash, "priority": priority}


def group(resource_name: str, /, **spec: Any) -> dict[str, Any]:
    return {**KIND, "metadata": {"name": resource_name}, "spec": spec}


def ready(obj: dict[str, Any] | None) -> bool:
    return condition_is(obj, "Ready", "True")


def ready_at(generation_marker: str):
    """Ready and reconciled after the spec change that set description=generation_marker."""
    return lambda obj: (
        ready(obj)
        and obj["status"].get("lastSyncTime")
        and obj.get("spec", {}).get("description") == generation_marker
        and condition(obj, "Synced")["message"] == "the cloud matches the spec"
        and _applied(obj)
    )


def _applied(obj: dict[str, Any]) -> bool:
    wanted = {
        (r["clientIp"], r.get("rwPermission", "RO"), r.get("userPermission", "root_squash"), r["priority"])
        for r in obj["spec"].get("rules", [])
    }
    have = {
        (r["clientIp"], r["rwPermission"], r["userPermission"], r["priority"]) for r in obj["status"]["rules"]
    }
    return wanted == have


def cloud_rules(client: CfsClient, pgroup_id: str) -> set[tuple[str, str, str, int]]:
    reply = client.call("DescribeCfsRules", {"PGroupId": pgroup_id})
    return {
        (r["AuthClientIp"], r["RWPermission"].upper(), r["UserPermission"], r["Priority"])
        for r in reply["RuleList"]
    }


def cloud_group(client: CfsClient, pgroup_id: str) -> dict[str, Any] | None:
    groups = client.call("DescribeCfsPGroups", {})["PGroupList"]
    return next((g for g in groups if g["PGroupId"] == pgroup_id), None)


async def test_create_update_and_delete_with_fewest_calls(kube, cluster, reference, cloud_client):
    async with running_operator(kube, fast_cloud_config(reference), fast_config()):
        await cluster.create(
            PGROUP_RESOURCE,
            group(
                "web",
                description="v1",
                rules=[rule("10.0.0.0/24", 10, "RW"), rule("10.0.1.5", 20), rule("*", 100)],
            ),
        )
        obj = await cluster.wait_for(PGROUP_RESOURCE, "web", ready_at("v1"))
        pgroup_id = obj["status"]["pGroupId"]
        assert obj["status"]["name"] == "web" and obj["status"]["ruleCount"] == 3
        assert all(r["ruleId"] for r in obj["status"]["rules"])
        assert FINALIZER in obj["metadata"]["finalizers"]
        assert cloud_rules(cloud_client, pgroup_id) == {
            ("10.0.0.0/24", "RW", "root_squash", 10),
            ("10.0.1.5", "RO", "root_squash", 20),
            ("*", "RO", "root_squash", 100),
        }
        assert calls_by_action(reference) == {"CreateCfsPGroup": 1, "CreateCfsRule": 3}
        await cluster.wait_for_events("web", "Created", "RuleCreated")

        # One rule changed, one replaced by another client, the description edited:
        # two in-place rule updates and one group update, nothing deleted or recreated.
        reference.admin.reset_calls()
        await cluster.patch(
            PGROUP_RESOURCE,
            "web",
            {
                "spec": {
                    "description": "v2",
                    "rules": [
                        rule("10.0.0.0/24", 5, "RW", "no_root_squash"),
                        rule("10.0.2.0/24", 30),
                        rule("*", 100),
                    ],
                }
            },
        )
        obj = await cluster.wait_for(PGROUP_RESOURCE, "web", ready_at("v2"))
        assert cloud_rules(cloud_client, pgroup_id) == {
            ("10.0.0.0/24", "RW", "no_root_squash", 5),
            ("10.0.2.0/24", "RO", "root_squash", 30),
            ("*", "RO", "root_squash", 100),
        }
        assert cloud_group(cloud_client, pgroup_id)["DescInfo"] == "v2"
        assert calls_by_action(reference) == {"UpdateCfsRule": 2, "UpdateCfsPGroup": 1}

        # Rules removed: one delete each, nothing else.
        reference.admin.reset_calls()
        await cluster.patch(
            PGROUP_RESOURCE, "web", {"spec": {"description": "v3", "rules": [rule("*", 100)]}}
        )
        await cluster.wait_for(PGROUP_RESOURCE, "web", ready_at("v3"))
        assert cloud_rules(cloud_client, pgroup_id) == {("*", "RO", "root_squash", 100)}
        assert calls_by_action(reference) == {"DeleteCfsRule": 2, "UpdateCfsPGroup": 1}

        # deletionPolicy defaults to Delete for a group the operator created.
        await cluster.delete(PGROUP_RESOURCE, "web")
        await cluster.wait_for(PGROUP_RESOURCE, "web", lambda o: o is None)
        assert cloud_group(cloud_client, pgroup_id) is None
        await cluster.wait_for_events("web", "Deleted")


async def test_drift_is_repaired_by_the_timer(kube, cluster, reference, cloud_client):
    async with running_operator(kube, fast_cloud_config(reference), fast_config(drift_interval=0.3)):
        await cluster.create(
            PGROUP_RESOURCE, group("drifty", rules=[rule("10.1.0.0/16", 1), rule("10.2.0.1", 2)])
        )
        obj = await cluster.wait_for(PGROUP_RESOURCE, "drifty", ready)
        pgroup_id = obj["status"]["pGroupId"]
        by_ip = {r["clientIp"]: r["ruleId"] for r in obj["status"]["rules"]}

        # Behind the operator's back: one rule deleted, the other loosened, a stranger added.
        cloud_client.call("DeleteCfsRule", {"PGroupId": pgroup_id, "RuleId": by_ip["10.1.0.0/16"]})
        cloud_client.call(
            "UpdateCfsRule",
            {
                "PGroupId": pgroup_id,
                "RuleId": by_ip["10.2.0.1"],
                "RWPermission": "RW",
                "UserPermission": "no_root_squash",
            },
        )
        cloud_client.call(
            "CreateCfsRule",
            {
                "PGroupId": pgroup_id,
                "AuthClientIp": "192.168.0.0/16",
                "RWPermission": "RW",
                "UserPermission": "no_root_squash",
                "Priority": 50,
            },
        )

        await cluster.wait_for(
            PGROUP_RESOURCE, "drifty", lambda o: condition_is(o, "Synced", "True", "DriftRepaired")
        )
        assert cloud_rules(cloud_client, pgroup_id) == {
            ("10.1.0.0/16", "RO", "root_squash", 1),
            ("10.2.0.1", "RO", "root_squash", 2),
        }
        await cluster.wait_for_events("drifty", "DriftRepaired")

        # The group itself deleted in the console: recreated under a new id.
        cloud_client.call("DeleteCfsPGroup", {"PGroupId": pgroup_id})
        obj = await cluster.wait_for(
            PGROUP_RESOURCE, "drifty", lambda o: ready(o) and o["status"]["pGroupId"] != pgroup_id
        )
        assert cloud_rules(cloud_client, obj["status"]["pGroupId"]) == {
            ("10.1.0.0/16", "RO", "root_squash", 1),
            ("10.2.0.1", "RO", "root_squash", 2),
        }
        await cluster.wait_for_events("drifty", "Missing")


async def test_adoption_takes_over_rules_and_retains_by_default(kube, cluster, reference, cloud_client):
    existing = cloud_client.call("CreateCfsPGroup", {"Name": "legacy", "DescInfo": "made by hand"})[
        "PGroupId"
    ]
    for ip, priority in (("10.9.0.0/16", 1), ("10.8.0.1", 2)):
        cloud_client.call(
            "CreateCfsRule",
            {
                "PGroupId": existing,
                "AuthClientIp": ip,
                "RWPermission": "RW",
                "UserPermission": "no_root_squash",
                "Priority": priority,
            },
        )
    async with running_operator(kube, fast_cloud_config(reference), fast_config()):
        reference.admin.reset_calls()
        await cluster.create(PGROUP_RESOURCE, group("adopted", pGroupId=existing))
        obj = await cluster.wait_for(PGROUP_RESOURCE, "adopted", ready)
        assert obj["status"]["pGroupId"] == existing and obj["status"]["adopted"] is True
        assert obj["status"]["name"] == "legacy"
        assert {(r["clientIp"], r["priority"]) for r in obj["status"]["rules"]} == {
            ("10.9.0.0/16", 1),
            ("10.8.0.1", 2),
        }
        assert calls_by_action(reference) == {}  # taken over as it is

        # Once spec.rules is given, the adopted rules are managed like any other.
        await cluster.patch(
            PGROUP_RESOURCE,
            "adopted",
            {"spec": {"description": "managed", "rules": [rule("10.9.0.0/16", 1, "RW", "no_root_squash")]}},
        )
        await cluster.wait_for(PGROUP_RESOURCE, "adopted", ready_at("managed"))
        assert cloud_rules(cloud_client, existing) == {("10.9.0.0/16", "RW", "no_root_squash", 1)}

        await cluster.delete(PGROUP_RESOURCE, "adopted")
        await cluster.wait_for(PGROUP_RESOURCE, "adopted", lambda o: o is None)
        assert cloud_group(cloud_client, existing) is not None  # Retain is the default for adopted groups
        await cluster.wait_for_events("adopted", "Retained")

        # Adopting a group that does not exist can never work.
        await cluster.create(PGROUP_RESOURCE, group("ghost", pGroupId="pgroup-doesnotexist"))
        obj = await cluster.wait_for(
            PGROUP_RESOURCE, "ghost", lambda o: condition_is(o, "Ready", "False", "InvalidSpec")
        )
        assert "spec.pGroupId" in condition(obj, "Ready")["message"]


async def test_deleting_a_group_in_use_waits_for_its_file_systems(kube, cluster, reference, cloud_client):
    async with running_operator(kube, fast_cloud_config(reference), fast_config()):
        await cluster.create(PGROUP_RESOURCE, group("busy", rules=[rule("*", 1, "RW")]))
        obj = await cluster.wait_for(PGROUP_RESOURCE, "busy", ready)
        pgroup_id = obj["status"]["pGroupId"]
        fs_id = make_file_system(cloud_client, reference.region, "busy-fs", pgroup_id)

        await cluster.delete(PGROUP_RESOURCE, "busy")
        obj = await cluster.wait_for(PGROUP_RESOURCE, "busy", lambda o: condition_is(o, "InUse", "True"))
        assert FINALIZER in obj["metadata"]["finalizers"]
        assert pgroup_id in condition(obj, "InUse")["message"]
        assert cloud_group(cloud_client, pgroup_id) is not None
        await cluster.wait_for_events("busy", "InUse")

        # Once the file system moves to another group, the retried delete goes through.
        cloud_client.call("UpdateCfsFileSystemPGroup", {"FileSystemId": fs_id, "PGroupId": "pgroupbasic"})
        await cluster.wait_for(PGROUP_RESOURCE, "busy", lambda o: o is None)
        assert cloud_group(cloud_client, pgroup_id) is None


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("RequestLimitExceeded", "Throttled"),
        ("InternalError", "CloudBusy"),
        ("FailedOperation.PgroupIsUpdating", "CloudBusy"),
    ],
)
async def test_transient_failures_are_retried_until_the_cloud_recovers(
    kube, cluster, reference, cloud_client, code, reason
):
    reference.admin.set_faults([{"action": "CreateCfsRule", "code": code, "rate": 1.0}])
    async with running_operator(kube, fast_cloud_config(reference), fast_config()):
        await cluster.create(
            PGROUP_RESOURCE, group("throttled", rules=[rule("10.3.0.0/16", 1), rule("10.4.0.0/16", 2)])
        )
        obj = await cluster.wait_for(
            PGROUP_RESOURCE, "throttled", lambda o: condition_is(o, "Synced", "False", reason)
        )
        # The group exists and its id is kept, so the retry continues instead of creating another.
        pgroup_id = obj["status"]["pGroupId"]
        assert code in condition(obj, "Synced")["message"]

        reference.admin.set_faults([])
        obj = await cluster.wait_for(PGROUP_RESOURCE, "throttled", lambda o: ready(o) and _applied(o))
        assert obj["status"]["pGroupId"] == pgroup_id
        assert cloud_rules(cloud_client, pgroup_id) == {
            ("10.3.0.0/16", "RO", "root_squash", 1),
            ("10.4.0.0/16", "RO", "root_squash", 2),
        }
        groups = [
            g for g in cloud_client.call("DescribeCfsPGroups", {})["PGroupList"] if g["Name"] == "throttled"
        ]
        assert len(groups) == 1


async def test_name_taken_by_someone_else_vs_our_own_interrupted_create(
    kube, cluster, reference, cloud_client
):
    foreign = cloud_client.call("CreateCfsPGroup", {"Name": "taken"})["PGroupId"]
    ours = cloud_client.call("CreateCfsPGroup", {"Name": "lost-reply"})["PGroupId"]
    async with running_operator(kube, fast_cloud_config(reference), fast_config()):
        # Someone else's group: never taken over silently.
        await cluster.create(PGROUP_RESOURCE, group("taken", rules=[rule("*", 1)]))
        obj = await cluster.wait_for(
            PGROUP_RESOURCE, "taken", lambda o: condition_is(o, "Ready", "False", "InvalidSpec")
        )
        assert condition(obj, "Ready")["message"].startswith(
            "spec.name: a permission group named 'taken' already exists"
        )
        assert cloud_rules(cloud_client, foreign) == set()

        # Our own create whose reply was lost (status remembers the name being created): recovered.
        await cluster.create(
            PGROUP_RESOURCE,
            {**group("lost-reply", rules=[rule("*", 1)]), "status": {"creating": "lost-reply"}},
        )
        obj = await cluster.wait_for(PGROUP_RESOURCE, "lost-reply", ready)
        assert obj["status"]["pGroupId"] == ours and obj["status"]["adopted"] is False
        assert cloud_rules(cloud_client, ours) == {("*", "RO", "root_squash", 1)}


async def test_bad_credentials_are_reported_without_the_secret(kube, cluster, reference):
    secret = "not-the-key-" + "x" * 20
    async with running_operator(kube, fast_cloud_config(reference, secret_key=secret), fast_config()):
        await cluster.create(PGROUP_RESOURCE, group("denied", rules=[rule("*", 1)]))
        obj = await cluster.wait_for(
            PGROUP_RESOURCE, "denied", lambda o: condition_is(o, "Ready", "False", "AuthFailure")
        )
        assert "AuthFailure" in condition(obj, "Ready")["message"]
        events = await cluster.wait_for_events("denied", "AuthFailure")
    assert secret not in json.dumps(obj) + json.dumps(events)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"rules": [rule("10.0.0.1", 1), rule("10.0.0.1/32", 2)]}, "spec.rules[1].clientIp"),
        ({"rules": [rule("10.0.0.1/24", 1)]}, "spec.rules[0].clientIp"),
        ({"rules": [rule(f"10.0.{i // 250}.{i % 250}", 1) for i in range(101)]}, "spec.rules"),
        ({"rules": [rule("*", 0)]}, "spec.rules[0].priority"),
        ({"name": "bad name!"}, "spec.name"),
    ],
)
async def test_invalid_specs_never_reach_the_cloud(kube, cluster, reference, spec, field):
    async with running_operator(kube, fast_cloud_config(reference), fast_config()):
        reference.admin.reset_calls()
        await cluster.create(PGROUP_RESOURCE, group("invalid", **spec))
        obj = await cluster.wait_for(
            PGROUP_RESOURCE, "invalid", lambda o: condition_is(o, "Ready", "False", "InvalidSpec")
        )
        assert condition(obj, "Ready")["message"].startswith(field + ":")
        assert "pGroupId" not in obj["status"]
        assert calls_by_action(reference) == {}

        # Fixing the spec is all it takes.
        await cluster.patch(
            PGROUP_RESOURCE, "invalid", {"spec": {"name": "fixed", "rules": [rule("10.0.0.0/24", 1)]}}
        )
        obj = await cluster.wait_for(PGROUP_RESOURCE, "invalid", ready)
        assert obj["status"]["name"] == "fixed"


async def test_spec_change_waiting_behind_a_drift_repair_uses_the_recreated_group(
    kube, cluster, reference, cloud_client
):
    """A change handler reads the resource before waiting for the object's lock; if the drift timer
    meanwhile recreates the group, the change must land on the new group, not create a third one."""
    async with running_operator(kube, fast_cloud_config(reference), fast_config(drift_interval=0.3)):
        await cluster.create(
            PGROUP_RESOURCE, group("raced", description="before", rules=[rule("10.5.0.0/16", 1)])
        )
        obj = await cluster.wait_for(PGROUP_RESOURCE, "raced", ready_at("before"))
        original = obj["status"]["pGroupId"]

        # Slow rule creation keeps the drift repair (recreating the group) holding the lock.
        reference.admin.set_faults([], latency={"CreateCfsRule": 1500})
        reference.admin.reset_calls()
        cloud_client.call("DeleteCfsPGroup", {"PGroupId": original})
        await cluster.wait_for(
            PGROUP_RESOURCE,
            "raced",
            lambda o: (
                len(groups_named(cloud_client, "raced")) == 1
                and groups_named(cloud_client, "raced")[0]["PGroupId"] != original
            ),
        )
        await cluster.patch(PGROUP_RESOURCE, "raced", {"spec": {"description": "after"}})

        def settled(obj: dict[str, Any] | None) -> bool:
            named = groups_named(cloud_client, "raced")
            return (
                ready(obj)
                and len(named) == 1
                and named[0]["DescInfo"] == "after"
                and obj["status"]["pGroupId"] == named[0]["PGroupId"]
                and _applied(obj)
            )

        obj = await cluster.wait_for(PGROUP_RESOURCE, "raced", settled)
        reference.admin.set_faults([])
        assert cloud_rules(cloud_client, obj["status"]["pGroupId"]) == {
            ("10.5.0.0/16", "RO", "root_squash", 1)
        }
        # One recreation only: the waiting change handler did not try to create the group again.
        assert calls_by_action(reference)["CreateCfsPGroup"] == 1
        assert "InvalidSpec" not in cluster.event_reasons("raced")


async def test_drift_timer_leaves_an_unworkable_spec_alone_until_it_changes(
    kube, cluster, reference, cloud_client
):
    async with running_operator(kube, fast_cloud_config(reference), fast_config(drift_interval=0.1)):
        await cluster.create(
            PGROUP_RESOURCE, group("stuck", description="ok", rules=[rule("10.6.0.0/16", 1)])
        )
        await cluster.wait_for(PGROUP_RESOURCE, "stuck", ready_at("ok"))
        await cluster.patch(
            PGROUP_RESOURCE, "stuck", {"spec": {"rules": [rule("10.6.0.1", 1), rule("10.6.0.1/32", 2)]}}
        )
        obj = await cluster.wait_for(
            PGROUP_RESOURCE, "stuck", lambda o: condition_is(o, "Ready", "False", "InvalidSpec")
        )
        assert condition(obj, "Synced")["reason"] == "InvalidSpec"
        await cluster.wait_for_events("stuck", "InvalidSpec")

        # Ten drift intervals later: no second Warning, no cloud call.
        reference.admin.reset_calls()
        await asyncio.sleep(1.0)
        assert cluster.event_reasons("stuck").count("InvalidSpec") == 1
        assert calls_by_action(reference, writes_only=False) == {}

        # The fix is picked up by the change handler and the timer maintains the group again.
        await cluster.patch(
            PGROUP_RESOURCE, "stuck", {"spec": {"description": "fixed", "rules": [rule("10.6.0.1", 1)]}}
        )
        obj = await cluster.wait_for(PGROUP_RESOURCE, "stuck", ready_at("fixed"))
        cloud_client.call(
            "DeleteCfsRule",
            {"PGroupId": obj["status"]["pGroupId"], "RuleId": obj["status"]["rules"][0]["ruleId"]},
        )
        await cluster.wait_for(
            PGROUP_RESOURCE, "stuck", lambda o: condition_is(o, "Synced", "True", "DriftRepaired")
        )


async def test_the_default_group_can_be_adopted_but_a_change_to_it_is_not_retried(
    kube, cluster, reference, cloud_client
):
    async with running_operator(kube, fast_cloud_config(reference), fast_config()):
        await cluster.create(PGROUP_RESOURCE, group("default", pGroupId="pgroupbasic"))
        obj = await cluster.wait_for(PGROUP_RESOURCE, "default", ready)
        assert obj["status"]["adopted"] is True and obj["status"]["ruleCount"] == 1

        # The account's default group is read-only in CFS ("UnsupportedOperation"): permanent.
        await cluster.patch(PGROUP_RESOURCE, "default", {"spec": {"description": "mine"}})
        obj = await cluster.wait_for(
            PGROUP_RESOURCE, "default", lambda o: condition_is(o, "Ready", "False", "CloudRejected")
        )
        assert "UnsupportedOperation" in condition(obj, "Ready")["message"]
        reference.admin.reset_calls()
        await asyncio.sleep(0.5)  # five retry delays of fast_config
        assert calls_by_action(reference) == {}

        await cluster.delete(PGROUP_RESOURCE, "default")
        await cluster.wait_for(PGROUP_RESOURCE, "default", lambda o: o is None)
        assert cloud_group(cloud_client, "pgroupbasic") is not None


async def test_a_spec_change_supersedes_one_still_being_retried(kube, cluster, reference, cloud_client):
    reference.admin.set_faults([{"action": "CreateCfsRule", "code": "RequestLimitExceeded", "rate": 1.0}])
    async with running_operator(kube, fast_cloud_config(reference), fast_config()):
        await cluster.create(
            PGROUP_RESOURCE,
            group("moving", description="v1", rules=[rule("10.8.0.0/16", 1), rule("10.9.0.0/16", 2)]),
        )
        obj = await cluster.wait_for(
            PGROUP_RESOURCE, "moving", lambda o: condition_is(o, "Synced", "False", "Throttled")
        )
        pgroup_id = obj["status"]["pGroupId"]

        # While the create keeps failing, the spec moves on to a rule set the cloud can take now
        # (no new rule needed): the retry applies the new spec, not the old one.
        await cluster.patch(PGROUP_RESOURCE, "moving", {"spec": {"description": "v2", "rules": []}})
        obj = await cluster.wait_for(PGROUP_RESOURCE, "moving", ready_at("v2"))
        assert obj["status"]["pGroupId"] == pgroup_id and obj["status"]["ruleCount"] == 0
        reference.admin.set_faults([])
        assert cloud_rules(cloud_client, pgroup_id) == set()
        assert cloud_group(cloud_client, pgroup_id)["DescInfo"] == "v2"


async def test_a_create_refused_by_the_cloud_leaves_no_claim_on_the_name(
    kube, cluster, reference, cloud_client
):
    """The "creating" mark (which lets a later attempt take a same-named group as its own) only
    survives attempts that may have created the group unseen; a refused create drops it."""
    reference.admin.set_faults([{"action": "CreateCfsPGroup", "code": "RequestLimitExceeded", "rate": 1.0}])
    async with running_operator(kube, fast_cloud_config(reference), fast_config()):
        await cluster.create(PGROUP_RESOURCE, group("contested", rules=[rule("*", 1)]))
        obj = await cluster.wait_for(
            PGROUP_RESOURCE, "contested", lambda o: condition_is(o, "Synced", "False", "Throttled")
        )
        assert "creating" not in obj["status"] or obj["status"]["creating"] is None

        reference.admin.set_faults([])
        obj = await cluster.wait_for(PGROUP_RESOURCE, "contested", ready)
        assert cloud_rules(cloud_client, obj["status"]["pGroupId"]) == {("*", "RO", "root_squash", 1)}


def groups_named(client: CfsClient, name: str) -> list[dict[str, Any]]:
    return [g for g in client.call("DescribeCfsPGroups", {})["PGroupList"] if g["Name"] == name]
