"""Credentials against the real reference service: rotation of a mounted Secret without a
restart, and no secret in any log line, exception text or repr."""

import logging
import os
import threading

import pytest

from cfs_cloud import CfsAuthError, CfsClient, CfsError, CfsNotFound, CloudConfig
from tests.support.cloud import cloud_client
from tests.support.reference import running_reference

SECOND_ID, SECOND_KEY = "AKIDsecondpair0001", "second-pair-secret-key-Zq81"


@pytest.fixture
def two_pair_reference(tmp_path):
    """A reference service that accepts its default pair and a second one."""
    with running_reference(
        tmp_path / "reference",
        create_delay=0.05,
        nfs="off",
        extra_args=["--credential", f"{SECOND_ID}:{SECOND_KEY}"],
    ) as ref:
        yield ref


def mount_secret(directory, secret_id, secret_key, token=None):
    """Write a Secret the way kubelet does: a new directory, then an atomic symlink swap."""
    directory.mkdir(exist_ok=True)
    version = directory / f"..{secret_id}-{len(os.listdir(directory))}"
    version.mkdir()
    (version / "secretId").write_text(secret_id + "\n")
    (version / "secretKey").write_text(secret_key + "\n")
    if token:
        (version / "sessionToken").write_text(token + "\n")
    (directory / "..data_tmp").unlink(missing_ok=True)
    os.symlink(version.name, directory / "..data_tmp")
    os.replace(directory / "..data_tmp", directory / "..data")
    for name in ("secretId", "secretKey", "sessionToken"):
        if not (directory / name).is_symlink():
            os.symlink(f"..data/{name}", directory / name)


def test_rotated_secret_files_are_used_without_restart(two_pair_reference, tmp_path):
    ref = two_pair_reference
    secret_dir = tmp_path / "secret"
    mount_secret(secret_dir, ref.secret_id, ref.secret_key)
    client = CfsClient(CloudConfig(endpoint=ref.url, region=ref.region, credentials_dir=str(secret_dir)))
    assert client.call("DescribeCfsFileSystems", {})["RequestId"]

    # A broken key proves the files are really re-read on the next call...
    mount_secret(secret_dir, ref.secret_id, "wrong-key")
    with pytest.raises(CfsAuthError) as info:
        client.call("DescribeCfsFileSystems", {})
    assert info.value.code == "AuthFailure.SignatureFailure"

    # ...and rotating to the second pair while calls run loses none of them.
    mount_secret(secret_dir, ref.secret_id, ref.secret_key)
    failures, stop = [], threading.Event()

    def keep_calling():
        while not stop.is_set():
            try:
                client.call("DescribeCfsFileSystems", {"Limit": 1})
            except CfsError as err:  # collected, asserted below
                failures.append(err)

    workers = [threading.Thread(target=keep_calling) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        for pair in [(SECOND_ID, SECOND_KEY), (ref.secret_id, ref.secret_key), (SECOND_ID, SECOND_KEY)]:
            threading.Event().wait(0.3)
            mount_secret(secret_dir, *pair)
        threading.Event().wait(0.3)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert failures == []
    assert client.call("DescribeCfsFileSystems", {})["RequestId"]
    assert repr(client).count(SECOND_KEY) == 0


def test_no_secret_in_logs_errors_or_reprs(two_pair_reference, tmp_path, caplog):
    ref = two_pair_reference
    token = "session-token-must-not-leak-7731"
    secret_dir = tmp_path / "secret"
    mount_secret(secret_dir, SECOND_ID, SECOND_KEY, token)
    caplog.set_level(logging.DEBUG)
    client = CfsClient(
        CloudConfig(endpoint=ref.url, region=ref.region, credentials_dir=str(secret_dir), retry_deadline=0.3)
    )
    env_client = CfsClient(
        CloudConfig.from_env(
            {
                "CFS_ENDPOINT": ref.url,
                "TENCENTCLOUD_REGION": ref.region,
                "TENCENTCLOUD_SECRET_ID": ref.secret_id,
                "TENCENTCLOUD_SECRET_KEY": ref.secret_key,
            }
        )
    )
    wrong_key = "wrong-key-that-must-not-leak-4410"
    texts = [repr(client), repr(env_client), repr(env_client.config)]

    client.call("DescribeCfsFileSystems", {})
    failures = []
    for call in (
        lambda: env_client.call("DescribeMountTargets", {"FileSystemId": "cfs-00000000"}),
        lambda: env_client.with_credentials(ref.secret_id, wrong_key).call("DescribeCfsFileSystems", {}),
        lambda: CfsClient(
            CloudConfig(
                endpoint="http://127.0.0.1:1",
                region=ref.region,
                secret_id=SECOND_ID,
                secret_key=SECOND_KEY,
                session_token=token,
                retry_deadline=0.2,
            )
        ).call("DescribeCfsFileSystems", {}),
    ):
        with pytest.raises(CfsError) as info:
            call()
        failures.append(info.value)
    assert isinstance(failures[0], CfsNotFound) and isinstance(failures[1], CfsAuthError)
    texts += [str(err) for err in failures] + [repr(err) for err in failures]
    texts += [repr(env_client.with_credentials(ref.secret_id, wrong_key))]

    logged = caplog.text
    assert "SendRequest" in logged  # the SDK's request dump was captured...
    assert "Authorization: ***" in logged  # ...with the signature header redacted
    for secret in (ref.secret_key, SECOND_KEY, token, wrong_key, "TC3-HMAC-SHA256 Credential"):
        assert secret not in logged
        for text in texts:
            assert secret not in text


TEMP_ID, TEMP_KEY, TEMP_TOKEN = "AKIDtemporary0001", "temporary-key-Pq42", "temp-token-A1b2c3"
TEMP2_ID, TEMP2_KEY, TEMP2_TOKEN = "AKIDtemporary0002", "temporary-key-Rs77", "temp-token-D4e5f6"


@pytest.fixture
def temporary_key_reference(tmp_path):
    """A reference service that also knows two temporary keys: their requests must carry the
    matching X-TC-Token (AuthFailure.TokenFailure otherwise)."""
    with running_reference(
        tmp_path / "reference",
        create_delay=0.05,
        nfs="off",
        extra_args=[
            "--credential",
            f"{TEMP_ID}:{TEMP_KEY}:{TEMP_TOKEN}",
            "--credential",
            f"{TEMP2_ID}:{TEMP2_KEY}:{TEMP2_TOKEN}",
        ],
    ) as ref:
        yield ref


def test_temporary_keys_send_their_session_token(temporary_key_reference, tmp_path, caplog):
    ref = temporary_key_reference
    caplog.set_level(logging.DEBUG)
    env_client = CfsClient(
        CloudConfig.from_env(
            {
                "CFS_ENDPOINT": ref.url,
                "TENCENTCLOUD_REGION": ref.region,
                "TENCENTCLOUD_SECRET_ID": TEMP_ID,
                "TENCENTCLOUD_SECRET_KEY": TEMP_KEY,
                "TENCENTCLOUD_SESSION_TOKEN": TEMP_TOKEN + "\n",
            }
        )
    )
    assert env_client.call("DescribeCfsFileSystems", {})["RequestId"]
    # The same token through a per-call override (CSI request secrets).
    long_term = cloud_client(ref)
    assert long_term.with_credentials(TEMP_ID, TEMP_KEY, TEMP_TOKEN).call("DescribeCfsFileSystems", {})[
        "RequestId"
    ]

    for token in (None, "not-the-token"):
        with pytest.raises(CfsAuthError) as info:
            long_term.with_credentials(TEMP_ID, TEMP_KEY, token).call("DescribeCfsFileSystems")
        assert info.value.code == "AuthFailure.TokenFailure"

    # A mounted Secret rotating from one temporary key to the next, token included.
    secret_dir = tmp_path / "secret"
    mount_secret(secret_dir, TEMP_ID, TEMP_KEY, TEMP_TOKEN)
    file_client = CfsClient(CloudConfig(endpoint=ref.url, region=ref.region, credentials_dir=str(secret_dir)))
    assert file_client.call("DescribeCfsFileSystems", {})["RequestId"]
    mount_secret(secret_dir, TEMP2_ID, TEMP2_KEY, TEMP2_TOKEN)
    assert file_client.call("DescribeCfsFileSystems", {})["RequestId"]

    assert "X-TC-Token: ***" in caplog.text  # sent, and redacted in the SDK's dump
    for secret in (TEMP_KEY, TEMP_TOKEN, TEMP2_KEY, TEMP2_TOKEN):
        assert secret not in caplog.text
