"""Spec parsing: the checks a CRD schema cannot make, each naming the offending field."""

import pytest

from cfs_operator.specs import (
    MAX_RULES_PER_GROUP,
    RuleSpec,
    SpecError,
    deletion_policy_of,
    normalize_client_ip,
    parse_group_spec,
    parse_policy_spec,
)


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("*", "*"),
        ("10.0.0.1", "10.0.0.1"),
        (" 10.0.0.1 ", "10.0.0.1"),
        ("10.0.0.1/32", "10.0.0.1"),
        ("10.0.0.0/24", "10.0.0.0/24"),
        ("0.0.0.0/0", "0.0.0.0/0"),
    ],
)
def test_client_ips_are_normalised(given, normalised):
    assert normalize_client_ip(given, "f") == normalised


@pytest.mark.parametrize(
    "bad", ["10.0.0.1/24", "10.0.0.256", "fe80::1", "10.0.0.0/33", "", "host.example", None]
)
def test_bad_client_ips_name_the_field(bad):
    with pytest.raises(SpecError) as err:
        normalize_client_ip(bad, "spec.rules[3].clientIp")
    assert err.value.field == "spec.rules[3].clientIp"
    assert str(err.value).startswith("spec.rules[3].clientIp: ")


def test_group_defaults():
    spec = parse_group_spec({"rules": [{"clientIp": "10.1.0.0/16", "priority": 5}]}, "web")
    assert spec.name == "web" and spec.description is None and spec.adopt_id is None
    assert spec.deletion_policy == "Delete"
    assert spec.rules == (RuleSpec("10.1.0.0/16", "RO", "root_squash", 5),)


def test_adoption_leaves_name_and_rules_alone_and_retains():
    spec = parse_group_spec({"pGroupId": "pgroup-abc"}, "whatever.with.dots")
    assert (spec.name, spec.rules, spec.deletion_policy) == (None, None, "Retain")
    assert (
        parse_group_spec({"pGroupId": "pgroup-abc", "deletionPolicy": "Delete"}, "x").deletion_policy
        == "Delete"
    )


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (
            {"rules": [{"clientIp": "10.0.0.1", "priority": 1}, {"clientIp": "10.0.0.1/32", "priority": 2}]},
            "spec.rules[1].clientIp",
            "duplicates spec.rules[0].clientIp",
        ),
        ({"rules": [{"clientIp": "*", "priority": 101}]}, "spec.rules[0].priority", "from 1 to 100"),
        ({"rules": [{"clientIp": "*", "priority": True}]}, "spec.rules[0].priority", "from 1 to 100"),
        (
            {"rules": [{"clientIp": "*", "priority": 1, "rwPermission": "rw"}]},
            "spec.rules[0].rwPermission",
            "RO, RW",
        ),
        (
            {"rules": [{"clientIp": "*", "priority": 1, "userPermission": "squash"}]},
            "spec.rules[0].userPermission",
            "all_squash, no_all_squash, root_squash, no_root_squash",
        ),
        (
            {
                "rules": [
                    {"clientIp": f"10.0.{i // 200}.{i % 200}", "priority": 1}
                    for i in range(MAX_RULES_PER_GROUP + 1)
                ]
            },
            "spec.rules",
            f"at most {MAX_RULES_PER_GROUP}",
        ),
        ({"name": "a b"}, "spec.name", "letters"),
        ({"name": "权" * 22}, "spec.name", "64 bytes"),
        ({"description": "x" * 256}, "spec.description", "255 bytes"),
        ({"deletionPolicy": "Keep"}, "spec.deletionPolicy", "Delete, Retain"),
    ],
)
def test_group_spec_errors_name_field_and_allowed_values(spec, field, words):
    with pytest.raises(SpecError) as err:
        parse_group_spec(spec, "ok")
    assert err.value.field == field
    assert words in str(err.value)


def test_resource_name_that_cannot_be_a_group_name_is_reported_as_spec_name():
    with pytest.raises(SpecError) as err:
        parse_group_spec({}, "my.group")
    assert err.value.field.startswith("spec.name")


def test_policy_spec_parsing():
    spec = parse_policy_spec(
        {
            "dayOfWeek": [5, 1, 3],
            "hour": [23, 0],
            "aliveDays": 7,
            "fileSystemIds": ["cfs-b", "cfs-a", "cfs-a"],
        },
        "nightly",
    )
    assert (spec.policy_name, spec.day_of_week, spec.hour, spec.alive_days, spec.is_active) == (
        "nightly",
        (1, 3, 5),
        (0, 23),
        7,
        True,
    )
    assert spec.file_system_ids == ("cfs-a", "cfs-b") and spec.manages_bindings
    adopted = parse_policy_spec({"autoSnapshotPolicyId": "asp-1"}, "x")
    assert (adopted.policy_name, adopted.day_of_week, adopted.is_active, adopted.manages_bindings) == (
        None,
        None,
        None,
        False,
    )
    assert adopted.deletion_policy == "Retain"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"hour": [1]}, "spec.dayOfWeek"),
        ({"dayOfWeek": [0], "hour": [1]}, "spec.dayOfWeek[0]"),
        ({"dayOfWeek": [1, 1], "hour": [1]}, "spec.dayOfWeek"),
        ({"dayOfWeek": [1], "hour": []}, "spec.hour"),
        ({"dayOfWeek": [1], "hour": [1], "aliveDays": 0}, "spec.aliveDays"),
        ({"dayOfWeek": [1], "hour": [1], "isActive": "yes"}, "spec.isActive"),
        ({"dayOfWeek": [1], "hour": [1], "fileSystemIds": ["fs-1"]}, "spec.fileSystemIds[0]"),
        (
            {
                "dayOfWeek": [1],
                "hour": [1],
                "persistentVolumeClaimSelector": {
                    "namespaceSelector": {
                        "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]
                    }
                },
            },
            "spec.persistentVolumeClaimSelector.namespaceSelector.matchExpressions[0].values",
        ),
        (
            {
                "dayOfWeek": [1],
                "hour": [1],
                "persistentVolumeClaimSelector": {
                    "labelSelector": {"matchExpressions": [{"key": "a", "operator": "Near", "values": ["x"]}]}
                },
            },
            "spec.persistentVolumeClaimSelector.labelSelector.matchExpressions[0].operator",
        ),
    ],
)
def test_policy_spec_errors_name_the_field(spec, field):
    with pytest.raises(SpecError) as err:
        parse_policy_spec(spec, "p")
    assert err.value.field == field


def test_deletion_policy_is_readable_from_an_invalid_spec_and_never_guesses_delete():
    assert deletion_policy_of({"rules": "garbage"}, "pGroupId") == "Delete"
    assert deletion_policy_of({"pGroupId": "pgroup-1"}, "pGroupId") == "Retain"
    assert deletion_policy_of({"deletionPolicy": "Nuke"}, "pGroupId") == "Retain"
