"""PathPolicy: the node plugin acts only on normalised paths strictly inside the kubelet root,
also after symlinks are resolved."""

import os

import grpc
import pytest

from cfs_csi.node.paths import PathPolicy
from cfs_csi.status import RpcError

ROOT = "/var/lib/kubelet"


def NOT_MOUNTED(path: str) -> bool:
    return False


def refused(policy: PathPolicy, path: str) -> str:
    with pytest.raises(RpcError) as caught:
        policy.check(path, "target_path")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    return str(caught.value)


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("", "target_path missing in request"),
        ("/var/lib/kubelet/pods/a\0b", "contains a NUL byte"),
        ("var/lib/kubelet/pods/x", "is not an absolute path"),
        ("/var/lib/kubelet/pods/../../../../etc", "is not a normalised path"),
        ("/var/lib/kubelet//pods/x", "is not a normalised path"),
        ("/var/lib/kubelet/pods/x/", "is not a normalised path"),
        ("//var/lib/kubelet/pods/x", "is not a normalised path"),
        ("/", "is outside the kubelet directory /var/lib/kubelet (--kubelet-dir)"),
        ("/etc", "is outside the kubelet directory"),
        ("/var/lib/kubelet", "is outside the kubelet directory"),
        ("/var/lib/kubelet-other/pods/x", "is outside the kubelet directory"),
    ],
)
def test_paths_that_are_not_the_kubelets_are_refused_naming_the_rule(path, rule):
    assert rule in refused(PathPolicy(ROOT, NOT_MOUNTED), path)


def test_kubelet_paths_pass_as_they_are():
    target = "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/pv/mount"
    assert PathPolicy(ROOT, NOT_MOUNTED).check(target, "target_path") == target
    assert PathPolicy(ROOT + "/", NOT_MOUNTED).check(target, "target_path") == target


def test_a_symlink_cannot_carry_a_path_out_of_the_kubelet_root(tmp_path):
    root, outside = tmp_path / "kubelet", tmp_path / "elsewhere"
    (root / "pods").mkdir(parents=True)
    outside.mkdir()
    (root / "pods" / "escape").symlink_to(outside)
    (root / "pods" / "inner").symlink_to(root / "pods")
    policy = PathPolicy(str(root), NOT_MOUNTED)
    assert "resolves through a symlink to" in refused(policy, str(root / "pods" / "escape" / "mount"))
    assert "resolves through a symlink" in refused(policy, str(root / "pods" / "escape"))
    inside = str(root / "pods" / "inner" / "mount")  # a link that stays inside is fine
    assert policy.check(inside, "target_path") == inside


def test_a_mount_point_is_not_stat_ed(tmp_path, monkeypatch):
    """Resolving a mount point of a server that stopped answering would hang: only its parents
    are resolved."""
    root = tmp_path / "kubelet"
    (root / "pods").mkdir(parents=True)
    target = str(root / "pods" / "mount")
    touched = []
    real_lstat = os.lstat

    def lstat(path, *args, **kwargs):
        touched.append(os.fspath(path))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)
    assert PathPolicy(str(root), lambda path: path == target).check(target, "target_path") == target
    assert target not in touched and str(root / "pods") in touched
