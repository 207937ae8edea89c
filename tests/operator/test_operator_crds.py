"""The CRD manifests are valid Kubernetes objects with structural schemas; the example custom
resources validate against those schemas; a deliberately invalid example is rejected."""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from cfs_operator.handlers import FINALIZER, GROUP, VERSION
from cfs_operator.specs import (
    MAX_FILE_SYSTEMS_PER_POLICY,
    MAX_RULES_PER_GROUP,
    PRIORITY_RANGE,
    parse_group_spec,
    parse_policy_spec,
)
from tests.support.kube import CRD_DIR, EXAMPLES, REPO, crd_schemas, load_crds, schema_nodes

INVALID_EXAMPLE = REPO / "tests" / "data" / "operator" / "invalid-cfspermissiongroup.yaml"
KUBERNETES_VERSIONS = ["1.25", kubernetes_validate.latest_version()]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("crd", load_crds(), ids=lambda crd: crd["metadata"]["name"])
def test_crd_manifests_validate_strictly(crd, version):
    kubernetes_validate.validate(crd, desired_version=version, strict=True)


@pytest.mark.parametrize(
    "crd", [c for c in load_crds() if c["spec"]["group"] == GROUP], ids=lambda crd: crd["metadata"]["name"]
)
def test_operator_crds_are_structural_and_complete(crd):
    spec = crd["spec"]
    assert spec["scope"] == "Cluster" and "cfs" in spec["names"]["categories"] and spec["names"]["shortNames"]
    (version,) = spec["versions"]
    assert version["name"] == VERSION and version["subresources"] == {"status": {}}
    columns = {column["name"] for column in version["additionalPrinterColumns"]}
    assert {"ID", "Ready", "Age"} <= columns
    for path, node in schema_nodes(version["schema"]["openAPIV3Schema"]):
        # Structural: every node typed, no references; list-map keys must be required.
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"untyped schema at {path}"
        assert "$ref" not in node, f"$ref at {path}"
        if node.get("x-kubernetes-list-type") == "map":
            assert set(node["x-kubernetes-list-map-keys"]) <= set(node["items"].get("required", [])), path
        if "default" in node:
            jsonschema.validate(node["default"], node)


def test_crd_limits_match_the_operator():
    schemas = crd_schemas()
    rules = schemas["CfsPermissionGroup"]["properties"]["spec"]["properties"]["rules"]
    assert rules["maxItems"] == MAX_RULES_PER_GROUP
    priority = rules["items"]["properties"]["priority"]
    assert (priority["minimum"], priority["maximum"]) == PRIORITY_RANGE
    fs_ids = schemas["CfsAutoSnapshotPolicy"]["properties"]["spec"]["properties"]["fileSystemIds"]
    assert fs_ids["maxItems"] == MAX_FILE_SYSTEMS_PER_POLICY
    assert FINALIZER.startswith(GROUP)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_against_their_crd_schema(path):
    assert EXAMPLES, "deploy/examples/cfs-*.yaml missing"
    for obj in yaml.safe_load_all(path.read_text()):
        assert obj["apiVersion"] == f"{GROUP}/{VERSION}"
        jsonschema.Draft7Validator(crd_schemas()[obj["kind"]]).validate(obj)


def test_invalid_example_is_rejected_for_each_mistake():
    obj = yaml.safe_load(INVALID_EXAMPLE.read_text())
    validator = jsonschema.Draft7Validator(crd_schemas()[obj["kind"]])
    errors = {
        "/".join(str(p) for p in error.absolute_path): error.validator for error in validator.iter_errors(obj)
    }
    assert errors == {
        "spec/deletionPolicy": "enum",
        "spec/rules/0/rwPermission": "enum",
        "spec/rules/0/priority": "minimum",
        "spec/rules/1": "required",
    }


def test_group_name_pattern_agrees_with_the_operator():
    """The CRD spells the vendor's name rule with literal characters (Go RE2 and Python re agree)."""
    name_schema = crd_schemas()["CfsPermissionGroup"]["properties"]["spec"]["properties"]["name"]
    for good in ("web-tier_1", "权限组"):
        jsonschema.validate(good, name_schema)
    for bad in ("a b", "a.b", "a/b"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, name_schema)


def test_crd_files_are_the_ones_the_harness_registers():
    assert {p.name for p in CRD_DIR.glob("*.yaml")} == {
        "cfspermissiongroups.yaml",
        "cfsautosnapshotpolicies.yaml",
        "kopf-peering.yaml",
    }


@pytest.mark.parametrize(
    ("client_ip", "valid"),
    [
        ("*", True),
        ("10.1.10.11", True),
        ("10.10.1.0/24", True),
        ("0.0.0.0/0", True),
        ("255.255.255.255/32", True),
        ("10.0.0.256", False),
        ("10.0.0.0/33", False),
        ("1.2.3", False),
        ("10.0.0.01", False),
        ("**", False),
    ],
)
def test_client_ip_pattern(client_ip, valid):
    items = crd_schemas()["CfsPermissionGroup"]["properties"]["spec"]["properties"]["rules"]["items"]
    errors = list(jsonschema.Draft7Validator(items["properties"]["clientIp"]).iter_errors(client_ip))
    assert (not errors) == valid


def with_schema_defaults(schema: dict[str, Any], obj: Any) -> Any:
    """`obj` as the API server stores it: every absent property that has a schema default filled in."""
    if isinstance(obj, dict):
        filled = dict(obj)
        for key, child in (schema.get("properties") or {}).items():
            if key not in filled and "default" in child:
                filled[key] = child["default"]
            if key in filled:
                filled[key] = with_schema_defaults(child, filled[key])
        return filled
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        return [with_schema_defaults(schema["items"], item) for item in obj]
    return obj


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_schema_defaults_mean_what_the_operator_does_without_them(path):
    """A schema default must not change what the operator does, e.g. an adopted policy's isActive
    (kept as found) must not be defaulted to true by the API server."""
    obj = yaml.safe_load(path.read_text())
    parse = parse_group_spec if obj["kind"] == "CfsPermissionGroup" else parse_policy_spec
    defaulted = with_schema_defaults(crd_schemas()[obj["kind"]], obj)
    assert parse(defaulted["spec"], obj["metadata"]["name"]) == parse(obj["spec"], obj["metadata"]["name"])
