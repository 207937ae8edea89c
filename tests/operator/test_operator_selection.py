"""Claim selector resolution: label-selector semantics and PV → file-system id extraction."""

import pytest

from cfs_operator.selection import (
    ClaimRecord,
    VolumeRecord,
    claim_record,
    file_system_id_of_volume,
    resolve_file_systems,
    selector_matches,
    volume_record,
)
from cfs_operator.specs import ClaimSelector, LabelSelector, parse_label_selector

DRIVER = "cfs.csi.tencentcloud.com"


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, {}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
        (
            {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]},
            {"a": "1"},
            False,
        ),
    ],
)
def test_label_selector_semantics(selector, labels, matches):
    assert selector_matches(parse_label_selector(selector, "s"), labels) is matches


@pytest.mark.parametrize(
    ("csi", "fs_id"),
    [
        ({"driver": DRIVER, "volumeHandle": "fs:cfs-1a2b3c4d"}, "cfs-1a2b3c4d"),
        ({"driver": DRIVER, "volumeHandle": "subdir:cfs-1a2b3c4d:pvc/x"}, "cfs-1a2b3c4d"),
        ({"driver": DRIVER, "volumeHandle": "subdir:10.0.0.1/abcd:pvc/x"}, None),
        (
            {"driver": DRIVER, "volumeHandle": "anything", "volumeAttributes": {"fileSystemId": "cfs-9"}},
            "cfs-9",
        ),
        ({"driver": "other.csi", "volumeHandle": "fs:cfs-1a2b3c4d"}, None),
    ],
)
def test_file_system_of_volume(csi, fs_id):
    assert file_system_id_of_volume({"spec": {"csi": csi}}) == fs_id


def test_records_from_objects():
    pv = {
        "spec": {
            "csi": {"driver": DRIVER, "volumeHandle": "fs:cfs-1"},
            "claimRef": {"namespace": "a", "name": "c"},
        }
    }
    assert volume_record(pv) == VolumeRecord("cfs-1", ("a", "c"))
    assert volume_record({"spec": {}}) is None
    pvc = {"metadata": {"namespace": "a", "name": "c", "labels": {"x": "1"}}, "spec": {"volumeName": "pv-1"}}
    assert claim_record(pvc) == ClaimRecord("a", "c", (("x", "1"),), "pv-1")
    assert claim_record({"metadata": {"name": "pending"}, "spec": {}}) is None


def test_resolution_follows_namespace_labels_claim_labels_and_claim_refs():
    selector = ClaimSelector(
        parse_label_selector({"matchLabels": {"env": "prod"}}, "n"),
        parse_label_selector({"matchLabels": {"backup": "on"}}, "l"),
    )
    namespaces = {"a": {"env": "prod"}, "b": {"env": "dev"}}
    claims = [
        ClaimRecord("a", "one", (("backup", "on"),), "pv-1"),
        ClaimRecord("a", "two", (), "pv-2"),  # label missing
        ClaimRecord("b", "three", (("backup", "on"),), "pv-3"),  # namespace does not match
        ClaimRecord("a", "four", (("backup", "on"),), "pv-4"),  # volume claimed by someone else
        ClaimRecord("a", "five", (("backup", "on"),), "pv-x"),  # not our driver / unknown volume
        ClaimRecord("gone", "six", (("backup", "on"),), "pv-6"),  # namespace not known
    ]
    volumes = {
        "pv-1": VolumeRecord("cfs-1", ("a", "one")),
        "pv-2": VolumeRecord("cfs-2", None),
        "pv-3": VolumeRecord("cfs-3", ("b", "three")),
        "pv-4": VolumeRecord("cfs-4", ("a", "other")),
        "pv-6": VolumeRecord("cfs-6", None),
    }
    assert resolve_file_systems(selector, namespaces, claims, volumes) == {"cfs-1"}
    everything = ClaimSelector(LabelSelector(), LabelSelector())
    assert resolve_file_systems(everything, namespaces, claims, volumes) == {"cfs-1", "cfs-2", "cfs-3"}
