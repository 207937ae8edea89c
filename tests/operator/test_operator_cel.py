"""The CRDs' CEL validation rules (x-kubernetes-validations), evaluated with cel-python as the API
server would evaluate them: they compile, the examples pass, and each rejects what it is for, in
agreement with the operator's own checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from cfs_operator.specs import SpecError, parse_group_spec, parse_policy_spec
from tests.support.kube import EXAMPLES, crd_schemas, schema_nodes

celpy = pytest.importorskip("celpy", reason="cel-python evaluates the CRDs' CEL rules (test extra)")


def cel_violations(schema: dict[str, Any], obj: Any, old: Any = None) -> list[str]:
    """Messages of the CEL rules `obj` breaks; transition rules (oldSelf) only when `old` is given."""
    env = celpy.Environment()
    found = []
    for rule in schema.get("x-kubernetes-validations", ()):
        if "oldSelf" in rule["rule"] and old is None:
            continue
        activation = {"self": celpy.json_to_cel(obj)}
        if old is not None:
            activation["oldSelf"] = celpy.json_to_cel(old)
        if not env.program(env.compile(rule["rule"])).evaluate(activation):
            found.append(rule["message"])
    if isinstance(obj, dict):
        for key, child in (schema.get("properties") or {}).items():
            if key in obj:
                found += cel_violations(child, obj[key], old.get(key) if isinstance(old, dict) else None)
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            found += cel_violations(schema["items"], item)
    return found


def resource(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "test"}, "spec": spec}


def operator_accepts(parse: Callable[[dict[str, Any], str], Any], spec: dict[str, Any], name: str) -> bool:
    """Whether the operator's own parsing takes the spec (the CEL rules must agree with it)."""
    try:
        parse(spec, name)
    except SpecError:
        return False
    return True


def test_every_cel_rule_compiles():
    env = celpy.Environment()
    rules = [
        rule["rule"]
        for schema in crd_schemas().values()
        for _, node in schema_nodes(schema)
        for rule in node.get("x-kubernetes-validations", ())
    ]
    assert len(rules) >= 5
    for rule in rules:
        env.compile(rule)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_the_cel_rules(path):
    obj = yaml.safe_load(path.read_text())
    assert cel_violations(crd_schemas()[obj["kind"]], obj) == []


def test_policy_schedule_is_required_unless_adopting():
    schema = crd_schemas()["CfsAutoSnapshotPolicy"]
    assert cel_violations(schema, resource({"hour": [1]})) == [
        "dayOfWeek and hour are required unless autoSnapshotPolicyId adopts an existing policy"
    ]
    assert cel_violations(schema, resource({"autoSnapshotPolicyId": "asp-12345678"})) == []


@pytest.mark.parametrize(
    ("expression", "valid"),
    [
        ({"key": "a", "operator": "In", "values": ["x"]}, True),
        ({"key": "a", "operator": "In"}, False),
        ({"key": "a", "operator": "NotIn", "values": []}, False),
        ({"key": "a", "operator": "Exists"}, True),
        ({"key": "a", "operator": "DoesNotExist", "values": ["x"]}, False),
    ],
)
def test_selector_expressions_agree_with_the_operator(expression, valid):
    spec = {
        "dayOfWeek": [1],
        "hour": [1],
        "persistentVolumeClaimSelector": {
            "namespaceSelector": {"matchExpressions": [expression]},
            "labelSelector": {"matchExpressions": [expression]},
        },
    }
    violations = cel_violations(crd_schemas()["CfsAutoSnapshotPolicy"], resource(spec))
    assert len(violations) == (0 if valid else 2)
    assert operator_accepts(parse_policy_spec, spec, "p") == valid


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("CfsPermissionGroup", "pGroupId", "pgroup-aaaa1111"),
        ("CfsAutoSnapshotPolicy", "autoSnapshotPolicyId", "asp-aaaa1111"),
    ],
)
def test_adopted_ids_are_immutable(kind, field, value):
    schema = crd_schemas()[kind]
    old = resource({field: value})
    assert cel_violations(schema, resource({field: value}), old) == []
    (message,) = cel_violations(schema, resource({field: value[:-1] + "2"}), old)
    assert message.startswith(f"{field} is immutable")


@pytest.mark.parametrize(
    ("kind", "obj", "valid"),
    [
        ("CfsPermissionGroup", {"metadata": {"name": "web-tier"}, "spec": {}}, True),
        ("CfsPermissionGroup", {"metadata": {"name": "web.tier"}, "spec": {}}, False),
        ("CfsPermissionGroup", {"metadata": {"name": "w" * 65}, "spec": {}}, False),
        ("CfsPermissionGroup", {"metadata": {"name": "web.tier"}, "spec": {"name": "web_tier"}}, True),
        (
            "CfsPermissionGroup",
            {"metadata": {"name": "web.tier"}, "spec": {"pGroupId": "pgroup-aaaa1111"}},
            True,
        ),
        (
            "CfsAutoSnapshotPolicy",
            {"metadata": {"name": "p" * 64}, "spec": {"dayOfWeek": [1], "hour": [1]}},
            True,
        ),
        (
            "CfsAutoSnapshotPolicy",
            {"metadata": {"name": "p" * 65}, "spec": {"dayOfWeek": [1], "hour": [1]}},
            False,
        ),
        (
            "CfsAutoSnapshotPolicy",
            {"metadata": {"name": "p" * 65}, "spec": {"dayOfWeek": [1], "hour": [1], "policyName": "p"}},
            True,
        ),
    ],
)
def test_a_metadata_name_that_cannot_be_the_cloud_name_needs_an_explicit_one(kind, obj, valid):
    """The API server rejects at apply time what the operator would reject later (InvalidSpec)."""
    assert (cel_violations(crd_schemas()[kind], obj) == []) == valid
    parse = parse_group_spec if kind == "CfsPermissionGroup" else parse_policy_spec
    assert operator_accepts(parse, obj["spec"], obj["metadata"]["name"]) == valid


@pytest.mark.parametrize(
    ("clients", "valid"),
    [
        (["10.0.0.1", "10.0.0.2/32", "10.0.0.0/24", "*"], True),
        (["10.0.0.1", "10.0.0.1/32"], False),
        (["10.0.0.1/32", "10.0.0.1"], False),
    ],
)
def test_an_address_and_its_slash_32_are_one_client(clients, valid):
    spec = {"rules": [{"clientIp": ip, "priority": index + 1} for index, ip in enumerate(clients)]}
    assert (cel_violations(crd_schemas()["CfsPermissionGroup"], resource(spec)) == []) == valid
    assert operator_accepts(parse_group_spec, spec, "test") == valid
