"""Credential files of a mounted Secret: trimming, rotation without restart, half-written files."""

import os

import pytest

from cfs_cloud.credentials import FileCredentials, StaticCredentials
from cfs_cloud.errors import CfsAuthError


def write_pair(directory, secret_id, secret_key, token=None):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "secretId").write_text(secret_id)
    (directory / "secretKey").write_text(secret_key)
    if token is not None:
        (directory / "sessionToken").write_text(token)


def test_whitespace_and_trailing_newlines_are_stripped(tmp_path):
    write_pair(tmp_path, "  AKID1\n", "key-one\r\n\n", "tok\n")
    assert FileCredentials(tmp_path).get_credential_info() == ("AKID1", "key-one", "tok")


def test_token_is_optional(tmp_path):
    write_pair(tmp_path, "AKID1", "key-one")
    assert FileCredentials(tmp_path).get_credential_info() == ("AKID1", "key-one", None)


def test_rewritten_files_are_picked_up_on_the_next_call(tmp_path):
    write_pair(tmp_path, "AKID1", "key-one")
    creds = FileCredentials(tmp_path)
    assert creds.get_credential_info()[:2] == ("AKID1", "key-one")
    write_pair(tmp_path, "AKID2", "key-two-longer")
    assert creds.get_credential_info()[:2] == ("AKID2", "key-two-longer")
    assert creds.secret_id == "AKID2"


def test_same_size_rewrite_is_noticed_through_mtime(tmp_path):
    write_pair(tmp_path, "AKID1", "key-aaa")
    creds = FileCredentials(tmp_path)
    creds.get_credential_info()
    (tmp_path / "secretKey").write_text("key-bbb")
    st = os.stat(tmp_path / "secretKey")
    os.utime(tmp_path / "secretKey", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert creds.get_credential_info()[1] == "key-bbb"


def test_kubernetes_style_symlink_swap(tmp_path):
    """A Secret volume points `secretKey` -> `..data/secretKey` and swaps `..data` atomically."""
    write_pair(tmp_path / "v1", "AKID1", "key-one")
    write_pair(tmp_path / "v2", "AKID2", "key-two")
    mount = tmp_path / "mount"
    mount.mkdir()
    os.symlink("../v1", mount / "..data")
    for name in ("secretId", "secretKey"):
        os.symlink(f"..data/{name}", mount / name)
    creds = FileCredentials(mount)
    assert creds.get_credential_info()[0] == "AKID1"
    os.symlink("../v2", mount / "..data_tmp")
    os.replace(mount / "..data_tmp", mount / "..data")
    assert creds.get_credential_info()[:2] == ("AKID2", "key-two")


def test_half_written_rotation_keeps_the_last_complete_pair(tmp_path):
    write_pair(tmp_path, "AKID1", "key-one")
    creds = FileCredentials(tmp_path)
    creds.get_credential_info()
    (tmp_path / "secretKey").write_text("")
    assert creds.get_credential_info()[:2] == ("AKID1", "key-one")
    (tmp_path / "secretKey").unlink()
    assert creds.get_credential_info()[:2] == ("AKID1", "key-one")
    (tmp_path / "secretKey").write_text("key-new")
    assert creds.get_credential_info()[:2] == ("AKID1", "key-new")


def test_refresh_reports_changes_only(tmp_path):
    write_pair(tmp_path, "AKID1", "key-one")
    creds = FileCredentials(tmp_path)
    assert creds.refresh() is True
    assert creds.refresh() is False
    write_pair(tmp_path, "AKID1", "key-one-rotated")
    assert creds.refresh() is True


def test_missing_files_raise_an_auth_error_naming_the_files(tmp_path):
    with pytest.raises(
        CfsAuthError,
        match=r"\(secretId and secretKey missing or empty\): "
        "files secretId and secretKey must exist",
    ):
        FileCredentials(tmp_path / "absent").get_credential_info()
    write_pair(tmp_path, "AKID1", " \n")
    with pytest.raises(CfsAuthError, match=r"\(secretKey missing or empty\)") as info:
        FileCredentials(tmp_path).get_credential_info()
    assert info.value.code == "AuthFailure.MissingCredentials"


def test_an_unusable_directory_is_an_auth_error_not_an_os_error(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(CfsAuthError, match=r"cannot read .*/file/secretId: Not a directory"):
        FileCredentials(not_a_dir).get_credential_info()


def test_unchanged_files_are_not_read_again(tmp_path, monkeypatch):
    write_pair(tmp_path, "AKID1", "key-one")
    creds = FileCredentials(tmp_path)
    creds.get_credential_info()
    reads = []
    original = FileCredentials._read_file
    monkeypatch.setattr(
        FileCredentials, "_read_file", lambda self, name: reads.append(name) or original(self, name)
    )
    for _ in range(5):
        creds.get_credential_info()
    assert reads == []  # only stat() per call while nothing changes
    write_pair(tmp_path, "AKID1", "key-one-rotated")
    assert creds.get_credential_info()[1] == "key-one-rotated" and len(reads) == 3


def test_static_credentials_reject_empty_values():
    with pytest.raises(CfsAuthError, match="SecretId and SecretKey must both be non-empty"):
        StaticCredentials("AKID", "  ")


def test_reprs_hold_no_key(tmp_path):
    write_pair(tmp_path, "AKID1", "key-one-secret", "token-secret")
    creds = FileCredentials(tmp_path)
    creds.get_credential_info()
    text = repr(creds) + repr(StaticCredentials("AKID1", "key-one-secret", "token-secret"))
    assert "key-one-secret" not in text and "token-secret" not in text
