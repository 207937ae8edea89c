"""The declarative catalogue: every action has a handler, limits follow the docs, and validation
turns both input shapes into typed values or precise errors."""

from __future__ import annotations

import pytest

from cfs_reference.catalogue import (
    ACTIONS_2018,
    ACTIONS_2019,
    CATALOGUE,
    V2018,
    V2019,
    documented_rate_limits,
)
from cfs_reference.errors import ApiError
from cfs_reference.protocol import HANDLERS
from cfs_reference.validation import unflatten, validate_flat, validate_json


@pytest.mark.parametrize("version", [V2018, V2019])
def test_every_catalogued_action_has_a_handler_and_no_more(version):
    assert set(CATALOGUE[version]) == set(HANDLERS[version])


def test_version_specific_action_sets():
    assert {name for name in ACTIONS_2018 if name.startswith("Query")} == {
        "QueryAvailableZoneInfo",
        "QueryCfsFileSystem",
        "QueryCfsPGroup",
        "QueryCfsRule",
        "QueryCfsServiceStatus",
        "QueryMountTarget",
        "QueryMountTargetsWithRegion",
    }
    assert not any(name.startswith("Query") for name in ACTIONS_2019)
    assert len(ACTIONS_2019) == 32 and len(ACTIONS_2018) == 19


def test_documented_rate_limits():
    limits = documented_rate_limits()
    assert limits["CreateCfsFileSystem"] == 10  # "默认接口请求频率限制 : 10次/秒"
    assert {limit for name, limit in limits.items() if name != "CreateCfsFileSystem"} == {20}


def test_field_types_differ_between_versions():
    assert ACTIONS_2018["CreateCfsFileSystem"].param("VpcId").type == "Uint64"
    assert ACTIONS_2019["CreateCfsFileSystem"].param("VpcId").type == "String"
    assert ACTIONS_2019["CreateCfsFileSystem"].param("Zone").required
    assert not ACTIONS_2018["CreateCfsFileSystem"].param("Zone").required


def test_unflatten_builds_arrays_of_structures():
    flat = {"Filters.0.Name": "Status", "Filters.0.Values.0": "a", "Filters.0.Values.1": "b", "Limit": "5"}
    assert unflatten(flat) == {"Filters": [{"Name": "Status", "Values": ["a", "b"]}], "Limit": "5"}


def test_unflatten_rejects_gaps_in_indexes():
    with pytest.raises(ApiError) as caught:
        unflatten({"SnapshotIds.0": "a", "SnapshotIds.2": "b"})
    assert caught.value.code == "InvalidParameter" and "SnapshotIds" in caught.value.message


def test_flat_values_are_converted_by_declared_type():
    action = ACTIONS_2019["DescribeCfsSnapshots"]
    params = validate_flat(action, {"Offset": "3", "Filters.0.Name": "FsName", "Filters.0.Values.0": "x"})
    assert params == {"Offset": 3, "Filters": [{"Name": "FsName", "Values": ["x"]}]}
    assert (
        validate_flat(
            ACTIONS_2019["CreateCfsFileSystem"],
            {"Zone": "z", "NetInterface": "VPC", "PGroupId": "p", "Encrypted": "true"},
        )["Encrypted"]
        is True
    )


@pytest.mark.parametrize(
    ("params", "code", "mentions"),
    [
        ({"Limit": True}, "InvalidParameter", "Limit"),
        ({"Limit": 2**64}, "InvalidParameter", "Uint64"),
        ({"Filters": {"Name": "x"}}, "InvalidParameter", "Filters"),
        ({"Filters": [{"Name": "x", "Values": "y"}]}, "InvalidParameter", "Filters.0.Values"),
        ({"Filters": [{"Name": "x", "Values": [], "Extra": 1}]}, "UnknownParameter", "Filters.0.Extra"),
        ({"Whatever": 1}, "UnknownParameter", "Whatever"),
    ],
)
def test_json_validation_errors_name_the_field(params, code, mentions):
    with pytest.raises(ApiError) as caught:
        validate_json(ACTIONS_2019["DescribeCfsSnapshots"], params)
    assert caught.value.code == code and mentions in caught.value.message


@pytest.mark.parametrize(
    ("action", "params"),
    [("DescribeCfsFileSystems", {"Limit": None}), ("DescribeCfsRules", {"PGroupId": None})],
)
def test_null_values_are_invalid(action, params):
    """Every parameter's "允许NULL" column says "否": null is an invalid value, optional or not."""
    with pytest.raises(ApiError) as caught:
        validate_json(ACTIONS_2019[action], params)
    assert caught.value.code == "InvalidParameter" and next(iter(params)) in caught.value.message
