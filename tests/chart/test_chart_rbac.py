"""Least-privilege RBAC: the rendered Roles grant exactly what each component uses, no more.

- Sidecars: the lists below are the upstream kubernetes-csi RBAC (deploy/kubernetes/rbac.yaml of
  external-provisioner / external-resizer / external-snapshotter) cut to the features this chart
  turns on: no ControllerPublish (so no volumeattachments), no group snapshots, no
  VolumeAttributesClass. Each rule says why it exists.
- Operator: derived from the code — the handlers cfs_operator.handlers.register() puts into a
  kopf registry (resources handled -> list/watch/patch, indexed -> list/watch) — plus the kopf
  framework rules listed with their reasons.
- The driver plugin never calls the Kubernetes API (checked in its source), so its pods get no
  token and its ServiceAccount no bindings.
- The reference service, when it serves NFS, manages one Service per file system in its own
  namespace: its Role is derived from the Kubernetes calls in cfs_reference.nfs.kube_services
  (the only module that makes any); with NFS off it gets no token and no binding.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import kopf
import pytest
import yaml

from cfs_operator import handlers
from cfs_operator.config import OperatorConfig
from tests.support.renderer import render

REPO = Path(__file__).resolve().parents[2]

READ = {"get", "list", "watch"}
EVENTS = ({"list", "watch", "create", "update", "patch"}, "record events on the objects it works on")

# (apiGroup, resource, resourceNames) -> (verbs, why)
SIDECAR_RULES = {
    "provisioner": {
        ("", "persistentvolumes", ()): (
            {"get", "list", "watch", "create", "patch", "delete"},
            "create PVs for claims, delete them (and their finalizer) on release",
        ),
        ("", "persistentvolumeclaims", ()): (
            {"get", "list", "watch", "update"},
            "watch claims to provision, annotate them",
        ),
        ("storage.k8s.io", "storageclasses", ()): (READ, "StorageClass parameters of a claim"),
        ("storage.k8s.io", "csinodes", ()): (READ, "topology: the zones nodes report"),
        ("", "nodes", ()): (READ, "topology: node labels"),
        ("snapshot.storage.k8s.io", "volumesnapshots", ()): (
            READ,
            "restore: the claim's dataSource (v6 watches them; the cluster lane showed it)",
        ),
        ("snapshot.storage.k8s.io", "volumesnapshotcontents", ()): (
            {"get", "list"},
            "restore: the snapshot handle",
        ),
        ("", "events", ()): EVENTS,
    },
    "resizer": {
        ("", "persistentvolumes", ()): (
            {"get", "list", "watch", "patch"},
            "record the new capacity on the PV",
        ),
        ("", "persistentvolumeclaims", ()): (READ, "watch claims whose request grew"),
        ("", "persistentvolumeclaims/status", ()): ({"patch"}, "resize conditions and capacity on the claim"),
        ("", "events", ()): EVENTS,
    },
    "snapshotter": {
        ("snapshot.storage.k8s.io", "volumesnapshotclasses", ()): (READ, "parameters of a snapshot's class"),
        ("snapshot.storage.k8s.io", "volumesnapshotcontents", ()): (
            {"get", "list", "watch", "create", "update", "patch"},
            "create/delete snapshots for contents",
        ),
        ("snapshot.storage.k8s.io", "volumesnapshotcontents/status", ()): (
            {"update", "patch"},
            "readyToUse, handle, size",
        ),
        ("", "events", ()): EVENTS,
    },
}
LEASES = {
    ("coordination.k8s.io", "leases", ()): (
        {"get", "list", "watch", "create", "update", "delete"},
        "leader election of the three sidecars (replicas > 1)",
    )
}


def credentials_rule(*secret_names):
    return {
        ("", "secrets", secret_names): (
            {"get"},
            "secrets named by StorageClasses / VolumeSnapshotClasses, these only",
        )
    }


# kopf framework needs, independent of what the handlers watch.
OPERATOR_FRAMEWORK_RULES = {
    ("apiextensions.k8s.io", "customresourcedefinitions", ()): (
        {"list", "watch"},
        "kopf notices CRDs appearing at run time",
    ),
    ("", "events", ()): ({"create"}, "kopf.event() and kopf's own warnings"),
}
PEERING_RULE = {
    ("kopf.dev", "clusterkopfpeerings", ()): (
        {"get", "list", "watch", "patch"},
        "kopf peering: one active replica, heartbeats",
    )
}


def operator_rules_from_code() -> dict:
    """Rules the operator's registered kopf handlers need (kopf has no public registry walk)."""
    registry = kopf.OperatorRegistry()
    handlers.register(registry, OperatorConfig())
    rules: dict = {}
    handled = {
        (h.selector.group, h.selector.any_name)
        for reg in (registry._changing, registry._spawning)
        for h in reg.get_all_handlers()
    }
    indexed = {(h.selector.group, h.selector.any_name) for h in registry._indexing.get_all_handlers()}
    for group, plural in handled:
        # watch + patch finalizers, progress annotations; status through the /status subresource.
        rules[(group, plural, ())] = ({"list", "watch", "patch"}, "handlers")
        rules[(group, f"{plural}/status", ())] = ({"patch"}, "status")
    for group, plural in indexed - handled:
        rules[(group, plural, ())] = ({"list", "watch"}, "kopf index")
    return rules


def _by_name(objects, kind):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def granted(objects) -> dict[str, dict]:
    """ServiceAccount name -> {(group, resource, resourceNames): verbs} over all its bindings."""
    roles = {
        **{("ClusterRole", n): r for n, r in _by_name(objects, "ClusterRole").items()},
        **{("Role", n): r for n, r in _by_name(objects, "Role").items()},
    }
    rules: dict[str, dict] = defaultdict(lambda: defaultdict(set))
    for binding in [o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")]:
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount" and subject["namespace"] == render.RELEASE_NAMESPACE
            for rule in role["rules"]:
                names = tuple(rule.get("resourceNames", ()))
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        rules[subject["name"]][(group, resource, names)] |= set(rule["verbs"])
    return rules


def merged(*rule_sets) -> dict:
    result: dict = defaultdict(set)
    for rule_set in rule_sets:
        for key, (verbs, _why) in rule_set.items():
            result[key] |= verbs
    return dict(result)


def rules_per_role(objects, kind, name):
    role = _by_name(objects, kind)[name]
    return merged(
        {
            (g, r, tuple(rule.get("resourceNames", ()))): (set(rule["verbs"]), "")
            for rule in role["rules"]
            for g in rule["apiGroups"]
            for r in rule["resources"]
        }
    )


@pytest.mark.parametrize("name", sorted(SIDECAR_RULES))
def test_each_sidecar_role_is_its_documented_minimum(name):
    objects = render.render_objects()
    assert rules_per_role(objects, "ClusterRole", f"cfs-csi-{name}") == merged(SIDECAR_RULES[name])


@pytest.mark.parametrize(
    "values, expected",
    [
        ({}, merged(LEASES, credentials_rule("cfs-csi-credentials"))),
        ({"credentials": {"existingSecret": "mine"}}, merged(LEASES, credentials_rule("mine"))),
        (
            {"controller": {"replicas": 1, "leaderElection": False}},
            merged(credentials_rule("cfs-csi-credentials")),
        ),
        ({"credentials": {"passToSidecars": False}}, merged(LEASES)),
        (
            {
                "controller": {"replicas": 1, "leaderElection": False},
                "credentials": {"passToSidecars": False},
            },
            {},
        ),
        (
            {"credentials": {"classSecrets": ["team-b-cfs", "cfs-csi-credentials"]}},
            merged(LEASES, credentials_rule("cfs-csi-credentials", "team-b-cfs")),
        ),
        (
            {
                "controller": {"replicas": 1, "leaderElection": False},
                "credentials": {"passToSidecars": False, "classSecrets": ["team-b-cfs"]},
            },
            merged(credentials_rule("team-b-cfs")),
        ),
    ],
    ids=[
        "defaults",
        "existing-secret",
        "ha-off",
        "no-secret-params",
        "neither",
        "class-secrets",
        "class-secrets-only",
    ],
)
def test_controller_namespace_role_follows_the_values(values, expected):
    objects = render.render_objects(values)
    controller = granted(objects)["cfs-csi-controller"]
    cluster_wide = merged(*SIDECAR_RULES.values())
    namespaced = {k: v for k, v in controller.items() if k not in cluster_wide}
    assert namespaced == expected
    assert {k: v for k, v in controller.items() if k in cluster_wide} == cluster_wide
    if not expected:
        assert not _by_name(objects, "Role") and not _by_name(objects, "RoleBinding")


@pytest.mark.parametrize("peering", ["cfs-operator", ""])
def test_operator_role_is_what_its_handlers_and_kopf_need(peering):
    objects = render.render_objects({"operator": {"peering": peering}})
    expected = merged(operator_rules_from_code(), OPERATOR_FRAMEWORK_RULES, PEERING_RULE if peering else {})
    assert dict(granted(objects)["cfs-csi-operator"]) == expected


def test_code_derivation_sees_the_operator_resources():
    rules = operator_rules_from_code()
    assert ("cfs.tencentcloud.com", "cfspermissiongroups", ()) in rules
    assert ("cfs.tencentcloud.com", "cfsautosnapshotpolicies", ()) in rules
    assert rules[("", "persistentvolumeclaims", ())][0] == {"list", "watch"}


def _python_sources(folder):
    return "\n".join(p.read_text() for p in (REPO / folder).rglob("*.py"))


def test_the_driver_never_calls_kubernetes_and_gets_no_token():
    source = _python_sources("driver/cfs_csi")
    assert not re.search(r"^\s*(import|from)\s+(kubernetes|kopf|pykube|kr8s|lightkube)\b", source, re.M)
    assert "KUBERNETES_SERVICE_HOST" not in source
    objects = render.render_objects({"reference": {"enabled": True}})
    node_pod = _by_name(objects, "DaemonSet")["cfs-csi-node"]["spec"]["template"]["spec"]
    # The node pod runs only the plugin and kubelet-facing sidecars: no API access at all.
    assert "cfs-csi-node" not in granted(objects) and node_pod["automountServiceAccountToken"] is False
    assert _by_name(objects, "ServiceAccount")["cfs-csi-node"]["automountServiceAccountToken"] is False


# HTTP method on the collection / on one object -> RBAC verb
COLLECTION_VERBS = {"GET": "list", "POST": "create"}
OBJECT_VERBS = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def reference_rules_from_code() -> dict:
    """The verbs the reference service's Kubernetes calls need, read from the one module that
    makes them (every call is `self._api.request(METHOD, <collection>[/name] ...)`)."""
    module = REPO / "reference" / "cfs_reference" / "nfs" / "kube_services.py"
    source = module.read_text()
    assert re.search(r'self\._collection = f"/api/v1/namespaces/\{api\.namespace\}/services"', source)
    calls = re.findall(r'self\._api\.request\(\s*"([A-Z]+)",\s*(f?)"?\{?self\._collection(\}/)?', source)
    verbs = {
        OBJECT_VERBS[method] if on_object else COLLECTION_VERBS[method] for method, _, on_object in calls
    }
    calls_anywhere = sum(p.read_text().count("._api.request(") for p in (REPO / "reference").rglob("*.py"))
    assert calls_anywhere == len(calls), "a Kubernetes call outside kube_services.py"
    return {("", "services", ()): (verbs, "one Service per file system")}


def test_code_derivation_sees_the_reference_calls():
    assert reference_rules_from_code()[("", "services", ())][0] == {"list", "create", "delete"}


def test_the_reference_manages_services_in_its_namespace_only_when_serving_nfs():
    objects = render.render_objects({"reference": {"enabled": True}})
    assert dict(granted(objects)["cfs-csi-reference"]) == merged(reference_rules_from_code())
    assert _by_name(objects, "Role")["cfs-csi-reference"]["metadata"]["namespace"] == render.RELEASE_NAMESPACE
    assert "cfs-csi-reference" not in _by_name(objects, "ClusterRoleBinding")
    pod = _by_name(objects, "Deployment")["cfs-csi-reference"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert _by_name(objects, "ServiceAccount")["cfs-csi-reference"]["automountServiceAccountToken"] is True

    objects = render.render_objects({"reference": {"enabled": True, "nfs": "off"}})
    assert "cfs-csi-reference" not in granted(objects)
    assert "cfs-csi-reference" not in _by_name(objects, "Role")
    pod = _by_name(objects, "Deployment")["cfs-csi-reference"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert _by_name(objects, "ServiceAccount")["cfs-csi-reference"]["automountServiceAccountToken"] is False


def test_every_service_account_is_used_by_exactly_its_workload():
    objects = render.render_objects({"reference": {"enabled": True}})
    used = {
        o["spec"]["template"]["spec"]["serviceAccountName"]
        for o in objects
        if o["kind"] in ("Deployment", "DaemonSet")
    }
    assert used == set(_by_name(objects, "ServiceAccount"))
    assert set(granted(objects)) == {"cfs-csi-controller", "cfs-csi-operator", "cfs-csi-reference"}


def test_deploy_manifests_rbac_matches_the_chart():
    """The plain manifests carry the same rules (they are the rendered chart)."""
    documents = [
        d
        for p in sorted((REPO / "deploy" / "manifests").glob("*rbac.yaml"))
        for d in yaml.safe_load_all(p.read_text())
        if d
    ]
    chart = [
        o
        for o in render.render_objects()
        if o["kind"] in ("ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding")
    ]
    assert sorted(map(repr, documents)) == sorted(map(repr, chart))
