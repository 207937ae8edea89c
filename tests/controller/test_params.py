"""StorageClass parameter parsing: defaults, strictness and the exact error messages."""

import pytest

from cfs_csi.controller import params
from cfs_csi.controller.params import AccessRule, ParameterError


def test_filesystem_defaults_use_driver_clients():
    parsed = params.parse_filesystem({}, default_allowed_clients="10.0.0.0/16")
    assert parsed.storage_type == "SD"
    assert parsed.vers == "4"
    assert parsed.on_delete == "delete"
    assert parsed.fs_name_prefix == "cfs-csi"
    assert parsed.pgroup_id is None
    assert parsed.access_rules == (AccessRule("10.0.0.0/16", "RW", "no_root_squash"),)


def test_filesystem_full_set():
    parsed = params.parse_filesystem(
        {
            "zone": "ap-shanghai-fsi-1",
            "vpcId": "vpc-1",
            "subnetId": "subnet-1",
            "storageType": "HP",
            "pGroupId": "pgroup-1",
            "mountIP": "10.0.0.9",
            "resourceTags": "team:storage, env:prod",
            "vers": "3",
            "fsNamePrefix": "k8s",
            "onDelete": "retain",
            "csi.storage.k8s.io/pvc/name": "ignored",
        }
    )
    assert (parsed.zone, parsed.vpc_id, parsed.subnet_id) == ("ap-shanghai-fsi-1", "vpc-1", "subnet-1")
    assert parsed.storage_type == "HP" and parsed.pgroup_id == "pgroup-1"
    assert parsed.access_rules == ()
    assert parsed.resource_tags == (("team", "storage"), ("env", "prod"))
    assert (parsed.vers, parsed.fs_name_prefix, parsed.on_delete) == ("3", "k8s", "retain")


def test_allowed_clients_normalised_and_deduplicated():
    parsed = params.parse_filesystem(
        {
            "allowedClients": "10.1.2.3, 10.1.0.0/16,10.1.2.3/32",
            "rwPermission": "RO",
            "userPermission": "all_squash",
        }
    )
    assert [r.client for r in parsed.access_rules] == ["10.1.2.3", "10.1.0.0/16"]
    assert {(r.rw_permission, r.user_permission) for r in parsed.access_rules} == {("RO", "all_squash")}


def test_unknown_key_names_key_and_lists_allowed():
    with pytest.raises(ParameterError) as err:
        params.parse_filesystem({"pGroupId": "pgroup-1", "storagetype": "SD"})
    message = str(err.value)
    assert "'storagetype'" in message
    assert "allowed parameters:" in message and "storageType" in message and "vpcId" in message


@pytest.mark.parametrize(
    "key,value,fragment",
    [
        ("storageType", "XL", "allowed values: SD, HP"),
        ("vers", "4.1", "allowed values: 3, 4"),
        ("onDelete", "archive", "allowed values: delete, retain"),
        ("rwPermission", "rw", "allowed values: RO, RW"),
        ("userPermission", "squash", "root_squash"),
        ("allowedClients", "10.0.0.300", "not an IPv4 address or CIDR"),
        ("allowedClients", "fd00::1/64", "allowed: comma-separated IPv4 addresses, IPv4 CIDRs or *"),
        ("resourceTags", "novalue", "not key:value"),
        ("fsNamePrefix", "Bad Prefix", "fsNamePrefix"),
        ("fsNamePrefix", "a" * 21, "up to 20 characters"),
    ],
)
def test_invalid_values(key, value, fragment):
    with pytest.raises(ParameterError) as err:
        params.parse_filesystem({key: value}, default_allowed_clients="10.0.0.0/8")
    assert fragment in str(err.value)
    assert key in str(err.value)


def test_vpc_and_subnet_go_together_and_mount_ip_needs_vpc():
    with pytest.raises(ParameterError, match="vpcId and subnetId must be given together"):
        params.parse_filesystem({"pGroupId": "p", "vpcId": "vpc-1"})
    with pytest.raises(ParameterError, match="mountIP needs vpcId"):
        params.parse_filesystem({"pGroupId": "p", "mountIP": "10.0.0.1"})


def test_pgroup_excludes_managed_group_keys():
    with pytest.raises(ParameterError, match="pGroupId cannot be combined with allowedClients"):
        params.parse_filesystem({"pGroupId": "p", "allowedClients": "10.0.0.0/8"})


def test_no_group_and_no_clients_is_an_error():
    with pytest.raises(ParameterError, match="no permission group"):
        params.parse_filesystem({})


def test_provisioning_mode():
    assert params.provisioning_mode({}) == "filesystem"
    assert params.provisioning_mode({"provisioningMode": "subdir"}) == "subdir"
    with pytest.raises(ParameterError, match="allowed values: filesystem, subdir"):
        params.provisioning_mode({"provisioningMode": "dir"})


def test_subdir_parse():
    parsed = params.parse_subdir(
        {
            "provisioningMode": "subdir",
            "fileSystemId": "cfs-abc123",
            "subDir": "${pvc.metadata.namespace}/${pvc.metadata.name}",
            "mountPermissions": "0750",
            "uid": "1000",
            "gid": "2000",
            "onDelete": "archive",
        }
    )
    assert parsed.file_system_id == "cfs-abc123"
    assert parsed.mount_permissions == 0o750 and (parsed.uid, parsed.gid) == (1000, 2000)
    assert parsed.on_delete == "archive"
    static = params.parse_subdir({"server": "10.0.0.5", "fsid": "z3r6k95r"})
    assert (static.server, static.fsid, static.subdir_template) == (
        "10.0.0.5",
        "z3r6k95r",
        "${pv.metadata.name}",
    )


@pytest.mark.parametrize(
    "extra,fragment",
    [
        ({}, "needs fileSystemId, or server and fsid"),
        ({"fileSystemId": "fs-1"}, "allowed: cfs-<id>"),
        ({"fileSystemId": "cfs-1", "server": "10.0.0.1"}, "cannot be combined"),
        ({"server": "bad host!", "fsid": "abc"}, "server='bad host!'"),
        ({"fileSystemId": "cfs-1", "subDir": "../escape"}, "not a safe relative path"),
        ({"fileSystemId": "cfs-1", "subDir": "/abs"}, "not a safe relative path"),
        ({"fileSystemId": "cfs-1", "subDir": "${env.HOME}"}, "unknown variable"),
        ({"fileSystemId": "cfs-1", "mountPermissions": "999"}, "octal mode"),
        ({"fileSystemId": "cfs-1", "uid": "-1"}, "uid='-1'"),
        ({"fileSystemId": "cfs-1", "zone": "z"}, "unknown parameter 'zone'"),
    ],
)
def test_subdir_invalid(extra, fragment):
    with pytest.raises(ParameterError) as err:
        params.parse_subdir(extra)
    assert fragment in str(err.value)


def test_render_subdir_from_metadata_and_traversal():
    meta = {"csi.storage.k8s.io/pvc/namespace": "team-a", "csi.storage.k8s.io/pvc/name": "data"}
    template = "${pvc.metadata.namespace}/${pvc.metadata.name}-${pv.metadata.name}"
    assert params.render_subdir(template, meta, "pvc-1") == "team-a/data-pvc-1"
    with pytest.raises(ParameterError, match="not a safe relative path"):
        params.render_subdir("${pvc.metadata.name}", {"csi.storage.k8s.io/pvc/name": ".."}, "pvc-1")
    with pytest.raises(ParameterError, match="not a safe relative path"):
        params.render_subdir("x/${pvc.metadata.name}", {"csi.storage.k8s.io/pvc/name": "a/../../b"}, "v")
    with pytest.raises(ParameterError, match="--extra-create-metadata"):
        params.render_subdir("${pvc.metadata.name}", {}, "pvc-1")
