"""deploy/ and the chart's CRDs are generated, never edited: they must equal what
scripts/render_manifests.py produces from the chart and the operator's CRDs. Also the examples
and the kind values are valid against the chart they are meant for."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

from tests.support.renderer import render

REPO = Path(__file__).resolve().parents[2]

HOW_TO_FIX = "run: .venv/bin/python scripts/render_manifests.py"
EXAMPLES = REPO / "deploy" / "examples"
NEWEST = kubernetes_validate.utils.latest_version()


def test_chart_crds_equal_the_operators():
    operator_crds = render.expected_chart_crds()
    assert operator_crds, "operator/cfs_operator/crds/*.yaml holds the operator's CRDs"
    chart_crds = {p.name: p.read_text() for p in sorted((render.CHART_DIR / "crds").glob("*.yaml"))}
    assert set(chart_crds) == set(operator_crds), HOW_TO_FIX
    for name, text in operator_crds.items():
        assert chart_crds[name] == text, (
            f"charts/cfs-csi/crds/{name} differs from the operator's; {HOW_TO_FIX}"
        )


def test_chart_crds_are_valid_crds():
    for path in sorted((render.CHART_DIR / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(crd, NEWEST, strict=True)
            kubernetes_validate.validate(crd, "1.28", strict=True)


def test_deploy_manifests_are_the_chart_rendered_with_defaults():
    differences = render.out_of_date(render.MANIFESTS_DIR, render.render_manifests())
    assert differences == [], f"deploy/manifests out of date: {differences}; {HOW_TO_FIX}"


def test_drift_is_detected_and_repaired_in_a_copy(tmp_path):
    copy = tmp_path / "manifests"
    shutil.copytree(render.MANIFESTS_DIR, copy)
    expected = render.render_manifests()
    assert render.out_of_date(copy, expected) == []
    (copy / "node.yaml").write_text(
        (copy / "node.yaml").read_text().replace("Bidirectional", "HostToContainer")
    )
    (copy / "leftover.yaml").write_text("kind: ConfigMap\n")
    (copy / "csidriver.yaml").unlink()
    assert render.out_of_date(copy, expected) == ["leftover.yaml", "csidriver.yaml", "node.yaml"]


def test_check_mode_exit_status():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "render_manifests.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def _crd_schemas():
    schemas = {}
    for path in sorted((render.CHART_DIR / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            for version in crd["spec"]["versions"]:
                schemas[(f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])] = (
                    version["schema"]["openAPIV3Schema"]
                )
    return schemas


# kubernetes-validate has no snapshot.storage.k8s.io schemas: the VolumeSnapshot example is checked
# against the required fields of the upstream CRD (external-snapshotter client/config/crd).
VOLUME_SNAPSHOT_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "snapshot.storage.k8s.io/v1"},
        "kind": {"const": "VolumeSnapshot"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["source"],
            "additionalProperties": False,
            "properties": {
                "volumeSnapshotClassName": {"type": "string"},
                "source": {
                    "type": "object",
                    "minProperties": 1,
                    "maxProperties": 1,
                    "additionalProperties": False,
                    "properties": {
                        "persistentVolumeClaimName": {"type": "string"},
                        "volumeSnapshotContentName": {"type": "string"},
                    },
                },
            },
        },
    },
}


def _example_documents():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path.name, document


def test_examples_are_valid():
    """Every example validates: built-in kinds strictly on 1.28 and the newest, the operator's
    custom resources (cfs-*.yaml) against the chart's CRD schemas, VolumeSnapshot as above."""
    crd_schemas = _crd_schemas()
    seen = set()
    for _name, document in _example_documents():
        key = (document["apiVersion"], document["kind"])
        seen.add(document["kind"])
        if key == ("snapshot.storage.k8s.io/v1", "VolumeSnapshot"):
            jsonschema.validate(document, VOLUME_SNAPSHOT_SCHEMA)
        elif key in crd_schemas:
            jsonschema.validate(document, crd_schemas[key])
        else:
            for version in ("1.28", NEWEST):
                kubernetes_validate.validate(document, version, strict=True)
    assert {"PersistentVolumeClaim", "Pod", "VolumeSnapshot", "StorageClass", "PersistentVolume"} <= seen


def test_examples_use_the_charts_classes_and_driver():
    objects = render.render_objects(render.MANIFEST_VALUES)  # what deploy/manifests holds
    classes = {o["metadata"]["name"] for o in objects if o["kind"] == "StorageClass"}
    snapshot_classes = {o["metadata"]["name"] for o in objects if o["kind"] == "VolumeSnapshotClass"}
    driver = next(o["metadata"]["name"] for o in objects if o["kind"] == "CSIDriver")
    for name, document in _example_documents():
        spec = document.get("spec", {})
        if document["kind"] == "PersistentVolumeClaim" and spec.get("storageClassName"):
            assert spec["storageClassName"] in classes, name
        if document["kind"] == "VolumeSnapshot":
            assert spec["volumeSnapshotClassName"] in snapshot_classes, name
        if document["kind"] == "StorageClass":
            assert document["provisioner"] == driver, name
        if document["kind"] == "PersistentVolume":
            assert spec["csi"]["driver"] == driver, name
        for volume in spec.get("volumes", []):
            if "csi" in volume:
                assert volume["csi"]["driver"] == driver, name


def test_kind_values_fit_the_chart_and_the_cluster():
    values = yaml.safe_load((REPO / "deploy" / "kind" / "values.yaml").read_text())
    with helm.Chart.load(render.CHART_DIR) as chart:
        chart.validate_schema(chart.merge_values(values))
    objects = render.render_objects(values)
    assert any(o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-reference") for o in objects)
    # In a cluster the reference service serves NFSv4 only: no class may ask for NFSv3.
    classes = [o for o in objects if o["kind"] == "StorageClass"]
    assert classes and all(o["parameters"]["vers"] == "4" for o in classes)
    cluster = yaml.safe_load((REPO / "deploy" / "kind" / "cluster.yaml").read_text())
    service_subnets = [ipaddress.ip_network(net) for net in cluster["networking"]["serviceSubnet"].split(",")]
    pool = ipaddress.ip_network(values["reference"]["mountIpPool"])
    assert any(net.version == 4 and pool.subnet_of(net) for net in service_subnets)
    # In a cluster each ganesha listens on its own port on every pod address, so no IPv6 is
    # needed (only the local mode binds single addresses, which needs it).
    assert cluster["networking"].get("ipFamily", "ipv4") == "ipv4"
    # kind.sh builds and loads exactly the images the kind values name.
    script = (REPO / "tests" / "e2e" / "kind.sh").read_text()
    loaded = {f"{image['repository']}:{image['tag']}" for image in values["images"].values()}
    assert " ".join(sorted(loaded)) in script
    # The snapshot CRDs and controller it installs are the release of the chart's csi-snapshotter.
    with helm.Chart.load(render.CHART_DIR) as chart:
        snapshotter_tag = chart.values["images"]["snapshotter"]["tag"]
    assert f"SNAPSHOTTER_REF={snapshotter_tag}\n" in script
