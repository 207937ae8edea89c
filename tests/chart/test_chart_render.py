"""The Helm chart rendered offline (helm-python-sdk) for several value sets, linted strictly, and
every object validated with kubernetes-validate (strict) against Kubernetes 1.28 .. newest.

Objects whose schema kubernetes-validate does not carry are checked differently, said here
plainly: VolumeSnapshotClass (snapshot.storage.k8s.io) and ServiceMonitor (monitoring.coreos.com)
against the small schemas below, written from their upstream CRDs' required fields; a
ClusterKopfPeering against the openAPIV3Schema of the chart's own CRD.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from packaging.version import Version

from cfs_csi.controller.servicer import CAPABILITIES as CONTROLLER_CAPABILITIES
from cfs_csi.csipb import csi_pb2
from tests.support.renderer import render

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "cfs-csi"


NAMESPACE = render.RELEASE_NAMESPACE

VALUE_SETS = {
    "defaults": {},
    "reference-enabled": {"reference": {"enabled": True, "persistence": {"enabled": True}}},
    "existing-secret": {
        "credentials": {"existingSecret": "my-cfs-credentials", "passToSidecars": True},
        "volumeSnapshotClass": {"enabled": True},
    },
    "ha-off": {"controller": {"replicas": 1, "leaderElection": False}, "operator": {"peering": ""}},
    "metrics-on": {
        "metrics": {"enabled": True, "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}
    },
    "subdir-and-custom-kubelet": {
        "storageClasses": {"subdir": {"enabled": True, "parameters": {"fileSystemId": "cfs-1a2b3c4d"}}},
        "node": {"kubeletDir": "/var/lib/k0s/kubelet"},
        "credentials": {"passToSidecars": False},
    },
    "tuned": {
        "credentials": {"classSecrets": ["team-b-cfs"]},
        "csiDriver": {"fsGroupPolicy": "None", "volumeLifecycleModes": ["Persistent"]},
        "controller": {
            "workerThreads": 40,
            "shutdownGrace": 60,
            "provisionerTimeout": "5m",
            "createTimeout": 240,
        },
        "operator": {"selectionInterval": 2.5, "workers": 8},
        "reference": {
            "enabled": True,
            "nfs": "off",
            "priorityClassName": "system-cluster-critical",
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "storage", "effect": "NoSchedule"}
            ],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}
                                ]
                            }
                        ]
                    }
                }
            },
        },
    },
}

# Every Kubernetes minor from 1.28 to the newest kubernetes-validate carries.
KUBERNETES_VERSIONS = sorted(
    {
        kubernetes_validate.utils.major_minor(v)
        for v in kubernetes_validate.utils.all_versions()
        if Version(v) >= Version("1.28")
    },
    key=Version,
)

# Required shape of the two kinds kubernetes-validate has no schema for (from the upstream CRDs:
# external-snapshotter client/config/crd, prometheus-operator ServiceMonitor).
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1}},
}
OWN_SCHEMAS = {
    ("snapshot.storage.k8s.io/v1", "VolumeSnapshotClass"): {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "driver", "deletionPolicy"],
        "properties": {
            "apiVersion": {"const": "snapshot.storage.k8s.io/v1"},
            "kind": {"const": "VolumeSnapshotClass"},
            "metadata": _METADATA,
            "driver": {"type": "string", "minLength": 1},
            "deletionPolicy": {"enum": ["Delete", "Retain"]},
            "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["selector", "endpoints"],
                "properties": {
                    "selector": {"type": "object", "properties": {"matchLabels": {"type": "object"}}},
                    "namespaceSelector": {"type": "object"},
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["port"],
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string"},
                                "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            },
                        },
                    },
                },
            },
        },
    },
}


@functools.cache
def _chart_crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> openAPIV3Schema of every CRD in the chart's crds/."""
    schemas = {}
    for path in sorted((CHART / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            for version in crd["spec"]["versions"]:
                key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def validate_object(obj: dict, kubernetes_version: str) -> None:
    key = (obj["apiVersion"], obj["kind"])
    schema = OWN_SCHEMAS.get(key) or _chart_crd_schemas().get(key)
    if schema is not None:
        jsonschema.validate(obj, schema)
    else:
        kubernetes_validate.validate(obj, kubernetes_version, strict=True)


def objects_of(objects, kind):
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects, kind, name_suffix=""):
    matches = [o for o in objects_of(objects, kind) if o["metadata"]["name"].endswith(name_suffix)]
    assert len(matches) == 1, (
        f"expected one {kind} named *{name_suffix}, got {[m['metadata']['name'] for m in matches]}"
    )
    return matches[0]


def container(workload, name):
    return next(c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == name)


@pytest.fixture(scope="module")
def rendered():
    return {name: render.render_objects(values) for name, values in VALUE_SETS.items()}


def test_versions_cover_128_to_newest():
    assert KUBERNETES_VERSIONS[0] == "1.28"
    assert len(KUBERNETES_VERSIONS) >= 5, KUBERNETES_VERSIONS


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_lint_strict_is_clean(value_set):
    for version in (KUBERNETES_VERSIONS[0], KUBERNETES_VERSIONS[-1]):
        report = helm.lint(
            CHART, VALUE_SETS[value_set], strict=True, namespace=NAMESPACE, kube_version=f"v{version}.0"
        )
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert problems == [], problems


def test_lint_reports_bad_values():
    report = helm.lint(CHART, {"controller": {"replicas": 0}}, strict=True, namespace=NAMESPACE)
    assert any("/controller/replicas" in error for error in report["errors"]), report


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_object_validates_strictly_on_every_version(rendered, value_set):
    objects = rendered[value_set]
    assert len(objects) > 15
    for version in KUBERNETES_VERSIONS:
        for obj in objects:
            validate_object(obj, version)


def test_validation_catches_unknown_fields_and_bad_values(rendered):
    deployment = one(rendered["defaults"], "Deployment", "-controller")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_object({**deployment, "spec": {**deployment["spec"], "replica": 2}}, KUBERNETES_VERSIONS[-1])
    snapshot_class = one(rendered["existing-secret"], "VolumeSnapshotClass")
    with pytest.raises(jsonschema.ValidationError):
        validate_object({**snapshot_class, "deletionPolicy": "Keep"}, KUBERNETES_VERSIONS[-1])


def test_schema_rejects_bad_values_naming_the_key():
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmValuesError, match=r"/controller/replicas"):
            chart.validate_schema(chart.merge_values({"controller": {"replicas": 0}}))
        with pytest.raises(helm.HelmValuesError, match=r"'replica' not allowed"):
            chart.validate_schema(chart.merge_values({"controller": {"replica": 2}}))
        with pytest.raises(helm.HelmValuesError, match=r"/controller/leaderElection"):
            chart.validate_schema(
                chart.merge_values({"controller": {"replicas": 2, "leaderElection": False}})
            )
        with pytest.raises(helm.HelmValuesError, match=r"/operator/peering"):
            chart.validate_schema(chart.merge_values({"operator": {"replicas": 2, "peering": ""}}))
        with pytest.raises(helm.HelmValuesError, match=r"/storageClasses/nfs3/parameters/vers"):
            chart.validate_schema(
                chart.merge_values({"storageClasses": {"nfs3": {"parameters": {"vers": "4.1"}}}})
            )
        # Shared definitions ($ref) are enforced at every place that uses them.
        with pytest.raises(helm.HelmValuesError, match=r"/reference/tolerations/0/operator"):
            chart.validate_schema(
                chart.merge_values({"reference": {"tolerations": [{"operator": "exists"}]}})
            )
        with pytest.raises(helm.HelmValuesError, match=r"/node/sidecarResources/limits/memory"):
            chart.validate_schema(
                chart.merge_values({"node": {"sidecarResources": {"limits": {"memory": ["64Mi"]}}}})
            )
        with pytest.raises(helm.HelmValuesError, match=r"/operator/selectionInterval"):
            chart.validate_schema(chart.merge_values({"operator": {"selectionInterval": 0}}))
        with pytest.raises(helm.HelmValuesError, match=r"/storageClasses/subdir/reclaimPolicy"):
            chart.validate_schema(
                chart.merge_values({"storageClasses": {"subdir": {"reclaimPolicy": "Recycle"}}})
            )
        with pytest.raises(helm.HelmValuesError, match=r"/metrics/enabled"):
            chart.validate_schema(chart.merge_values({"metrics": {"serviceMonitor": {"enabled": True}}}))
        chart.validate_schema(
            chart.merge_values({"reference": {"affinity": {"nodeAffinity": {}}, "priorityClassName": "high"}})
        )


# Objects whose keys are the user's (labels, quantities, StorageClass parameters, affinity terms).
FREE_FORM = {"nodeSelector", "labels", "affinity", "requests", "limits", "parameters", "global"}


def _resolve(schema, root):
    while "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_schema_types_every_value_and_closes_every_object():
    """Every key in values.yaml has a typed schema, and every fixed-shape object refuses unknown keys."""
    root = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    untyped, open_objects = [], []

    def walk(value, schema, path):
        schema = _resolve(schema, root)
        if not ({"type", "enum", "const"} & set(schema)):
            untyped.append(path)
        if isinstance(value, dict) and path.rsplit("/", 1)[-1] not in FREE_FORM:
            if schema.get("additionalProperties") is not False:
                open_objects.append(path)
            for key, child in value.items():
                walk(child, schema.get("properties", {}).get(key, {}), f"{path}/{key}")
        elif isinstance(value, list):
            for index, child in enumerate(value):
                walk(child, schema.get("items", {}), f"{path}/{index}")

    walk(values, root, "")
    assert untyped == [] and open_objects == [], (untyped, open_objects)


def test_subdir_class_without_shared_file_system_fails_with_the_key():
    with pytest.raises(helm.HelmRenderError, match=r"storageClasses.subdir: .*fileSystemId"):
        render.render_objects({"storageClasses": {"subdir": {"enabled": True}}})


def test_csidriver(rendered):
    driver = one(rendered["defaults"], "CSIDriver")
    assert driver["metadata"]["name"] == "cfs.csi.tencentcloud.com"
    # The controller's capabilities decide two fields: nothing to attach, no capacity to track.
    rpcs = {c.rpc.type for c in CONTROLLER_CAPABILITIES.capabilities}
    assert driver["spec"] == {
        "attachRequired": csi_pb2.ControllerServiceCapability.RPC.PUBLISH_UNPUBLISH_VOLUME in rpcs,
        "podInfoOnMount": True,
        "fsGroupPolicy": "File",
        "volumeLifecycleModes": ["Persistent", "Ephemeral"],
        "requiresRepublish": False,
        "storageCapacity": csi_pb2.ControllerServiceCapability.RPC.GET_CAPACITY in rpcs,
    }
    assert driver["spec"]["attachRequired"] is False and driver["spec"]["storageCapacity"] is False
    persistent_only = one(
        render.render_objects({"csiDriver": {"volumeLifecycleModes": ["Persistent"]}}), "CSIDriver"
    )
    assert persistent_only["spec"]["volumeLifecycleModes"] == ["Persistent"]


def _args(c):
    return c.get("args", [])


def test_sidecars_talk_to_the_driver_socket(rendered):
    for value_set in ("defaults", "subdir-and-custom-kubelet"):
        objects = rendered[value_set]
        kubelet_dir = VALUE_SETS[value_set].get("node", {}).get("kubeletDir", "/var/lib/kubelet")
        for workload in (one(objects, "Deployment", "-controller"), one(objects, "DaemonSet", "-node")):
            pod = workload["spec"]["template"]["spec"]
            for c in pod["containers"]:
                mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
                assert mounts.get("socket-dir") == "/csi", c["name"]
                if c["name"] == "cfs-csi-driver":
                    assert "--endpoint=unix:///csi/csi.sock" in _args(c)
                else:
                    assert "--csi-address=/csi/csi.sock" in _args(c), c["name"]
        node = one(objects, "DaemonSet", "-node")
        plugin_dir = f"{kubelet_dir}/plugins/cfs.csi.tencentcloud.com"
        volumes = {v["name"]: v for v in node["spec"]["template"]["spec"]["volumes"]}
        assert volumes["socket-dir"]["hostPath"]["path"] == plugin_dir
        assert volumes["registration-dir"]["hostPath"]["path"] == f"{kubelet_dir}/plugins_registry"
        assert volumes["kubelet-dir"]["hostPath"]["path"] == kubelet_dir
        registrar = container(node, "node-driver-registrar")
        assert f"--kubelet-registration-path={plugin_dir}/csi.sock" in _args(registrar)
        driver = container(node, "cfs-csi-driver")
        kubelet_mount = next(m for m in driver["volumeMounts"] if m["name"] == "kubelet-dir")
        assert kubelet_mount == {
            "name": "kubelet-dir",
            "mountPath": kubelet_dir,
            "mountPropagation": "Bidirectional",
        }


def test_controller_sidecars_ha_and_timeouts(rendered):
    controller = one(rendered["defaults"], "Deployment", "-controller")
    assert controller["spec"]["replicas"] == 2
    provisioner = _args(container(controller, "csi-provisioner"))
    assert {"--extra-create-metadata", "--leader-election=true"} <= set(provisioner)
    # Topology is GA (default on): setting the gate only logs that it will be removed.
    assert not [arg for arg in provisioner if arg.startswith("--feature-gates")]
    # The driver answers CreateVolume (ABORTED while CFS is still creating) before the sidecar's
    # own call timeout expires.
    create_timeout = int(
        next(
            a for a in _args(container(controller, "cfs-csi-driver")) if a.startswith("--create-timeout=")
        ).split("=")[1]
    )
    call_timeout = next(a for a in provisioner if a.startswith("--timeout=")).split("=")[1]
    assert call_timeout.endswith("s") and create_timeout < int(call_timeout[:-1])
    for name in ("csi-resizer", "csi-snapshotter"):
        assert "--leader-election=true" in _args(container(controller, name))

    single = one(rendered["ha-off"], "Deployment", "-controller")
    assert single["spec"]["replicas"] == 1
    for name in ("csi-provisioner", "csi-resizer", "csi-snapshotter"):
        assert "--leader-election=false" in _args(container(single, name))


def test_every_image_is_pinned(rendered):
    for obj in rendered["reference-enabled"]:
        if obj["kind"] in ("Deployment", "DaemonSet"):
            for c in obj["spec"]["template"]["spec"]["containers"]:
                repository, _, tag = c["image"].rpartition(":")
                assert repository and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), c["image"]


def test_only_the_node_plugin_is_privileged_by_default(rendered):
    for value_set in ("defaults", "reference-enabled"):
        privileged = set()
        for obj in rendered[value_set]:
            if obj["kind"] in ("Deployment", "DaemonSet"):
                for c in obj["spec"]["template"]["spec"]["containers"]:
                    ctx = c.get("securityContext", {})
                    if ctx.get("privileged"):
                        privileged.add((obj["kind"], c["name"]))
                    if obj["kind"] == "Deployment" and c["name"] != "cfs-reference":
                        pod_ctx = obj["spec"]["template"]["spec"].get("securityContext", {})
                        assert ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True, c["name"]
                        assert ctx["allowPrivilegeEscalation"] is False, c["name"]
        assert privileged == {("DaemonSet", "cfs-csi-driver")}, value_set
    # Subdir mode mounts in the controller: then, and only then, the controller plugin too.
    subdir_controller = one(rendered["subdir-and-custom-kubelet"], "Deployment", "-controller")
    assert container(subdir_controller, "cfs-csi-driver")["securityContext"]["privileged"] is True
    reference = container(one(rendered["reference-enabled"], "Deployment", "-reference"), "cfs-reference")
    assert "privileged" not in reference["securityContext"]
    assert reference["securityContext"]["capabilities"]["drop"] == ["ALL"]


def _env(c):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def test_reference_service_is_the_endpoint_when_enabled(rendered):
    objects = rendered["reference-enabled"]
    service = one(objects, "Service", "-reference")
    assert service["spec"]["ports"] == [{"name": "api", "port": 8080, "targetPort": "api"}]
    endpoint = f"http://{service['metadata']['name']}.{NAMESPACE}.svc:8080"
    for workload, name in (
        (one(objects, "Deployment", "-controller"), "cfs-csi-driver"),
        (one(objects, "Deployment", "-operator"), "cfs-operator"),
    ):
        assert _env(container(workload, name))["CFS_ENDPOINT"] == endpoint
    reference = one(objects, "Deployment", "-reference")
    ref = container(reference, "cfs-reference")
    env = _env(ref)
    secret = one(objects, "Secret", "-credentials")
    # The reference accepts exactly the credentials the driver and operator use.
    assert env["SECRET_ID"] == {"secretKeyRef": {"name": secret["metadata"]["name"], "key": "secretId"}}
    assert env["SECRET_KEY"] == {"secretKeyRef": {"name": secret["metadata"]["name"], "key": "secretKey"}}
    assert env["CFS_REFERENCE_CREDENTIALS"] == "$(SECRET_ID):$(SECRET_KEY)"
    assert secret["stringData"]["secretKey"], "the chart generates credentials for the reference service"
    assert "--admin-token=$(CFS_REFERENCE_ADMIN_TOKEN)" in _args(ref)
    volumes = {v["name"]: v for v in reference["spec"]["template"]["spec"]["volumes"]}
    assert (
        volumes["state"]["persistentVolumeClaim"]["claimName"]
        == one(objects, "PersistentVolumeClaim")["metadata"]["name"]
    )
    assert reference["spec"]["strategy"] == {"type": "Recreate"}
    # Without the reference service the cloud endpoint is used and no reference object exists.
    defaults = rendered["defaults"]
    assert (
        _env(container(one(defaults, "Deployment", "-controller"), "cfs-csi-driver"))["CFS_ENDPOINT"]
        == "cfs.api3.finance.cloud.tencent.com"
    )
    assert not [o for o in defaults if o["metadata"]["name"].endswith("-reference")]


def test_credentials_from_existing_secret(rendered):
    objects = rendered["existing-secret"]
    assert objects_of(objects, "Secret") == []
    for workload in (one(objects, "Deployment", "-controller"), one(objects, "Deployment", "-operator")):
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        assert volumes["credentials"]["secret"]["secretName"] == "my-cfs-credentials"
    for sc in objects_of(objects, "StorageClass"):
        assert sc["parameters"]["csi.storage.k8s.io/provisioner-secret-name"] == "my-cfs-credentials"
        assert sc["parameters"]["csi.storage.k8s.io/controller-expand-secret-name"] == "my-cfs-credentials"
        assert sc["parameters"]["csi.storage.k8s.io/provisioner-secret-namespace"] == NAMESPACE
    vsc = one(objects, "VolumeSnapshotClass")
    assert vsc["parameters"]["csi.storage.k8s.io/snapshotter-secret-name"] == "my-cfs-credentials"
    # The default chart-made Secret never carries values it was not given.
    assert one(rendered["defaults"], "Secret")["stringData"] == {"secretId": "", "secretKey": ""}


def test_storage_classes(rendered):
    classes = {
        sc["metadata"]["name"]: sc for sc in objects_of(rendered["subdir-and-custom-kubelet"], "StorageClass")
    }
    assert set(classes) == {"cfs", "cfs-subdir", "cfs-nfs3"}
    for sc in classes.values():
        assert sc["provisioner"] == "cfs.csi.tencentcloud.com"
        assert sc["allowVolumeExpansion"] is True
        assert not any(key.startswith("csi.storage.k8s.io/") for key in sc["parameters"])
    assert classes["cfs"]["parameters"] == {
        "provisioningMode": "filesystem",
        "storageType": "SD",
        "vers": "4",
    }
    assert classes["cfs-nfs3"]["parameters"]["vers"] == "3"
    assert classes["cfs-subdir"]["parameters"] == {
        "provisioningMode": "subdir",
        "fileSystemId": "cfs-1a2b3c4d",
        "vers": "4",
    }


def test_metrics_services_and_service_monitor(rendered):
    objects = rendered["metrics-on"]
    services = {s["metadata"]["name"]: s for s in objects_of(objects, "Service")}
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    for component, kind in (("controller", "Deployment"), ("node", "DaemonSet"), ("operator", "Deployment")):
        service = services[f"cfs-csi-{component}-metrics"]
        workload = one(objects, kind, f"-{component}")
        port = service["spec"]["ports"][0]
        assert port["name"] == monitor["spec"]["endpoints"][0]["port"] == "metrics"
        # The Service selects the pods and its port is the container's metrics port.
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        main = workload["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in main["ports"]}
        assert ports["metrics"] == port["port"]
        assert f"--metrics-address=0.0.0.0:{port['port']}" in _args(main)
    assert not [o for o in rendered["defaults"] if o["metadata"]["name"].endswith("-metrics")]


def test_operator_peering(rendered):
    operator = one(rendered["defaults"], "Deployment", "-operator")
    peering = one(rendered["defaults"], "ClusterKopfPeering")
    assert f"--peering={peering['metadata']['name']}" in _args(container(operator, "cfs-operator"))
    solo = one(rendered["ha-off"], "Deployment", "-operator")
    assert solo["spec"]["strategy"] == {"type": "Recreate"}
    assert not any(a.startswith("--peering") for a in _args(container(solo, "cfs-operator")))
    assert objects_of(rendered["ha-off"], "ClusterKopfPeering") == []


def test_notes_tell_the_user_what_to_do_next():
    with helm.Chart.load(CHART) as chart:
        notes = chart.render(name="cfs-csi", namespace=NAMESPACE)["cfs-csi/templates/NOTES.txt"]
        reference_notes = chart.render({"reference": {"enabled": True}}, name="cfs-csi", namespace=NAMESPACE)[
            "cfs-csi/templates/NOTES.txt"
        ]
    assert "no credentials were given" in notes and "create secret generic cfs-csi-credentials" in notes
    assert "rollout status daemonset/cfs-csi-node" in notes
    assert "REFERENCE" in reference_notes and "/_admin/state" in reference_notes
    assert "no credentials were given" not in reference_notes


# ---- the kind values, image pull policies and the snapshot class --------------------------------

KIND_VALUES = yaml.safe_load((REPO / "deploy" / "kind" / "values.yaml").read_text())
OUR_IMAGES = ("cfs-csi-driver", "cfs-operator", "cfs-reference")
DIGEST = "sha256:" + "ab" * 32


def containers(objects):
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec")
        if pod:
            yield from pod["containers"]


def test_kind_values_never_pull_our_images_and_pull_the_sidecars_as_usual():
    """ErrImageNeverPull came from one global Never: our images are loaded into the kind nodes,
    the registry.k8s.io sidecars are not."""
    policies = {c["image"]: c["imagePullPolicy"] for c in containers(render.render_objects(KIND_VALUES))}
    ours = {image: policy for image, policy in policies.items() if image.split(":")[0] in OUR_IMAGES}
    sidecars = {image: policy for image, policy in policies.items() if image.startswith("registry.k8s.io/")}
    assert set(ours.values()) == {"Never"} and len(ours) == 3
    assert set(sidecars.values()) == {"IfNotPresent"} and len(sidecars) == 5


def test_an_image_takes_its_own_pull_policy_and_digest():
    values = {"images": {"driver": {"digest": DIGEST, "pullPolicy": "Always"}}, "imagePullPolicy": "Never"}
    by_name = {c["name"]: c for c in containers(render.render_objects(values))}
    driver = by_name["cfs-csi-driver"]
    assert (
        driver["image"].endswith(f":{render_app_version()}@{DIGEST}")
        and driver["imagePullPolicy"] == "Always"
    )
    assert by_name["csi-provisioner"]["imagePullPolicy"] == "Never"  # the chart-wide policy
    with pytest.raises(helm.HelmError, match="digest"):
        render.render_objects({"images": {"driver": {"digest": "latest"}}})


def render_app_version() -> str:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]


@pytest.mark.parametrize(
    ("enabled", "rendered"),
    [("auto", False), (True, True), (False, False)],
    ids=["auto-offline", "true", "false"],
)
def test_the_snapshot_class_is_rendered_only_where_the_snapshot_api_can_take_it(enabled, rendered):
    """`auto` (the default, and the kind values) asks the cluster (.Capabilities.APIVersions):
    offline, as here, nothing serves snapshot.storage.k8s.io/v1, so no class is rendered."""
    objects = render.render_objects({"volumeSnapshotClass": {"enabled": enabled}})
    assert bool(objects_of(objects, "VolumeSnapshotClass")) is rendered
    assert KIND_VALUES["volumeSnapshotClass"]["enabled"] == "auto"
    assert not objects_of(render.render_objects(KIND_VALUES), "VolumeSnapshotClass")
