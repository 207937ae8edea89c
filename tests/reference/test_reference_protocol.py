"""The protocol over real HTTP: both signature methods through the SDK, the envelope, the public
error codes (auth, action, version, parameters, region), the admin guard and the request log."""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from cfs_reference.signatures import (
    tc3_authorization,
    tc3_canonical_request,
    tc3_date,
    tc3_signature,
    tc3_string_to_sign,
    v1_signature,
    v1_string_to_sign,
)
from tests.support.reference import call, outcome, running_reference, sdk_client

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# A temporary key: configured with its session token, which every request must then carry.
TEMP_ID, TEMP_KEY, TEMP_TOKEN = (
    "AKIDtemporarykey0001",
    "temporary-secret-key-81",
    "temporary-session-token-Qx71",
)


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    with running_reference(
        tmp_path_factory.mktemp("reference"),
        extra_args=[
            "--no-rate-limits",
            "--credential",
            f"{TEMP_ID}:{TEMP_KEY}:{TEMP_TOKEN}",
        ],
    ) as reference:
        yield reference


def raw_call(
    ref,
    action: str,
    body: bytes = b"{}",
    *,
    version: str = "2019-07-19",
    key: str | None = None,
    sign_host: str | None = None,
    sign_body: bytes | None = None,
    timestamp: int | None = None,
    region: str | None = None,
    method: str = "POST",
    query: str = "",
    content_type: str = "application/json",
) -> tuple[dict, dict]:
    """A hand-built TC3 request (GET sends `query` and no body); the keyword arguments let a test
    sign something other than what it sends."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    date = tc3_date(timestamp)
    payload = body if method == "POST" else b""
    signed = {"content-type": content_type, "host": sign_host or ref.endpoint}
    canonical = tc3_canonical_request(
        method, query, signed, ["content-type", "host"], payload if sign_body is None else sign_body
    )
    scope = f"{date}/cfs/tc3_request"
    signature = tc3_signature(
        key or ref.secret_key, date, "cfs", tc3_string_to_sign(timestamp, scope, canonical)
    )
    url = ref.url + "/" + (f"?{query}" if query else "")
    request = urllib.request.Request(
        url,
        data=payload if method == "POST" else None,
        method=method,
        headers={
            "Content-Type": content_type,
            "Authorization": tc3_authorization(ref.secret_id, scope, ["content-type", "host"], signature),
            "X-TC-Action": action,
            "X-TC-Version": version,
            "X-TC-Region": region or ref.region,
            "X-TC-Timestamp": str(timestamp),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200
        return json.loads(reply.read()), dict(reply.headers)


def error_code(ref, action: str, body: bytes = b"{}", **kwargs) -> str:
    payload, _ = raw_call(ref, action, body, **kwargs)
    assert UUID.fullmatch(payload["Response"]["RequestId"])
    return payload["Response"]["Error"]["Code"]


@pytest.mark.parametrize("sign_method", ["TC3-HMAC-SHA256", "HmacSHA1", "HmacSHA256"])
@pytest.mark.parametrize("req_method", ["POST", "GET"])
def test_sdk_signature_methods_and_http_methods(ref, sign_method, req_method):
    cfs = sdk_client(ref, sign_method=sign_method, req_method=req_method)
    name = f"proto_{sign_method.split('-')[0]}_{req_method}"
    created = call(cfs, "CreateCfsPGroup", Name=name, DescInfo="中文 描述 & = ?")
    listed = call(cfs, "DescribeCfsPGroups", Name=name)["PGroupList"]
    assert [(g["PGroupId"], g["DescInfo"]) for g in listed] == [(created["PGroupId"], "中文 描述 & = ?")]
    # nested array parameters survive v1 / GET flattening (Filters.0.Values.0)
    assert (
        call(cfs, "DescribeCfsSnapshots", Filters=[{"Name": "Status", "Values": ["available"]}])["TotalCount"]
        == 0
    )


def test_long_get_request_gets_a_cfs_error_not_an_http_error(ref):
    cfs = sdk_client(ref, sign_method="HmacSHA256", req_method="GET")
    with pytest.raises(TencentCloudSDKException) as caught:
        call(cfs, "CreateCfsPGroup", Name="proto_long", DescInfo="d" * 20000)
    assert caught.value.code == "InvalidParameterValue.PgroupDescinfoLimitExceeded"


def test_reply_envelope_and_content_type(ref):
    payload, headers = raw_call(ref, "DescribeCfsServiceStatus")
    assert headers["Content-Type"] == "application/json"
    assert set(payload) == {"Response"} and UUID.fullmatch(payload["Response"]["RequestId"])
    failed, headers = raw_call(ref, "NoSuchThing")
    assert headers["Content-Type"] == "application/json"
    assert set(failed["Response"]) == {"Error", "RequestId"}
    assert failed["Response"]["Error"]["Code"] == "InvalidAction"


def test_sdk_wrong_key_and_unknown_secret_id(ref):
    with pytest.raises(TencentCloudSDKException) as wrong_key:
        call(sdk_client(ref, secret_key="not-the-key"), "DescribeCfsFileSystems")
    assert wrong_key.value.code == "AuthFailure.SignatureFailure"
    assert "not-the-key" not in wrong_key.value.message and ref.secret_key not in wrong_key.value.message
    with pytest.raises(TencentCloudSDKException) as unknown:
        call(sdk_client(ref, secret_id="AKIDnotconfigured"), "DescribeCfsFileSystems")
    assert unknown.value.code == "AuthFailure.SecretIdNotFound"


def test_expired_tampered_and_wrong_host_are_rejected(ref):
    assert (
        error_code(ref, "DescribeCfsFileSystems", timestamp=int(time.time()) - 301)
        == "AuthFailure.SignatureExpire"
    )
    assert (
        error_code(ref, "DescribeCfsFileSystems", b'{"Limit": 2}', sign_body=b'{"Limit": 1}')
        == "AuthFailure.SignatureFailure"
    )
    assert (
        error_code(ref, "DescribeCfsFileSystems", sign_host="cfs.api3.finance.cloud.tencent.com")
        == "AuthFailure.SignatureFailure"
    )
    assert error_code(ref, "DescribeCfsFileSystems", key="wrong") == "AuthFailure.SignatureFailure"


@pytest.mark.parametrize(
    ("action", "body", "kwargs", "code", "mentions"),
    [
        ("DescribeCfsFileSystem", b"{}", {}, "InvalidAction", "DescribeCfsFileSystem"),
        ("DescribeCfsFileSystems", b"{}", {"version": "2020-01-01"}, "NoSuchVersion", "2020-01-01"),
        ("QueryCfsFileSystem", b"{}", {}, "InvalidAction", "2019-07-19"),  # a 2018 action in 2019
        ("DescribeCfsFileSystems", b"{}", {"version": "2018-04-16"}, "InvalidAction", "2018-04-16"),
        ("DescribeCfsRules", b"{}", {}, "MissingParameter", "PGroupId"),
        ("DescribeCfsRules", b'{"PGroupId": "pgroupbasic", "Bogus": 1}', {}, "UnknownParameter", "Bogus"),
        ("DescribeCfsFileSystems", b'{"Limit": "ten"}', {}, "InvalidParameter", "Limit"),
        ("DescribeCfsFileSystems", b'{"Limit": -1}', {}, "InvalidParameter", "Limit"),
        ("DescribeCfsFileSystems", b'{"FileSystemId": 7}', {}, "InvalidParameter", "FileSystemId"),
        ("DescribeCfsFileSystems", b"[1, 2]", {}, "InvalidParameter", "JSON object"),
        ("DescribeCfsFileSystems", b"{nope", {}, "InvalidParameter", "JSON"),
        ("DescribeCfsFileSystems", b"{}", {"region": "ap-nowhere"}, "UnsupportedRegion", "ap-shanghai-fsi"),
        (
            "CreateCfsFileSystem",
            b'{"Zone": "ap-shanghai-fsi-1", "NetInterface": "VPC", "PGroupId": "pgroupbasic",'
            b' "FsName": "x", "VpcId": "vpc-a", "SubnetId": "subnet-a", "Encrypted": "yes"}',
            {},
            "InvalidParameter",
            "Encrypted",
        ),
        (
            "DescribeCfsSnapshots",
            b'{"Filters": [{"Name": "Status"}]}',
            {},
            "MissingParameter",
            "Filters.0.Values",
        ),
        ("DescribeCfsFileSystems", b'{"Limit": null}', {}, "InvalidParameter", "Limit"),  # "允许NULL: 否"
    ],
)
def test_public_error_codes_name_the_field(ref, action, body, kwargs, code, mentions):
    payload, _ = raw_call(ref, action, body, **kwargs)
    error = payload["Response"]["Error"]
    assert error["Code"] == code
    assert mentions in error["Message"]


def test_tc3_content_type_per_http_method(ref):
    """ "对于GET方法，只支持 Content-Type: application/x-www-form-urlencoded"; POST takes JSON."""
    listed, _ = raw_call(
        ref,
        "DescribeCfsFileSystems",
        method="GET",
        query="Limit=1",
        content_type="application/x-www-form-urlencoded",
    )
    assert "Error" not in listed["Response"] and "TotalCount" in listed["Response"]
    for method, query, content_type, wanted in [
        ("GET", "Limit=1", "application/json", "application/x-www-form-urlencoded"),
        ("POST", "", "application/x-www-form-urlencoded", "application/json"),
    ]:
        payload, _ = raw_call(
            ref,
            "DescribeCfsFileSystems",
            b'{"Limit": 1}',
            method=method,
            query=query,
            content_type=content_type,
        )
        error = payload["Response"]["Error"]
        assert error["Code"] == "InvalidParameter" and wanted in error["Message"]


def v1_get(ref, params: dict[str, str]) -> dict:
    """Send an already signed v1 GET request; returns the Response object."""
    url = ref.url + "/?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())["Response"]


def test_v1_replayed_request_is_rejected(ref):
    """Nonce "与 Timestamp 联合起来，用于防止重放攻击": a captured request cannot be sent again."""
    params = {
        "Action": "DescribeCfsServiceStatus",
        "Version": "2019-07-19",
        "Region": ref.region,
        "Nonce": str(secrets.randbelow(10**9) + 1),
        "Timestamp": str(int(time.time())),
        "SecretId": ref.secret_id,
        "SignatureMethod": "HmacSHA256",
    }
    params["Signature"] = v1_signature(
        ref.secret_key, v1_string_to_sign("GET", ref.endpoint, "/", params), "HmacSHA256"
    )
    assert "CfsServiceStatus" in v1_get(ref, params)
    replay = v1_get(ref, params)["Error"]
    assert replay["Code"] == "AuthFailure.SignatureFailure" and "Nonce" in replay["Message"]


@pytest.mark.parametrize("sign_method", ["TC3-HMAC-SHA256", "HmacSHA256"])
def test_temporary_credentials_need_their_token(ref, sign_method):
    def outcome_with(token):
        cfs = sdk_client(ref, sign_method=sign_method, secret_id=TEMP_ID, secret_key=TEMP_KEY, token=token)
        return outcome(cfs, "DescribeCfsServiceStatus")

    assert outcome_with(TEMP_TOKEN) == "OK"
    assert outcome_with(None) == "AuthFailure.TokenFailure"
    assert outcome_with("a-stolen-token") == "AuthFailure.TokenFailure"
    # a long-term key needs no token ("长期密钥不需要 Token"), and one sent along is not checked
    assert (
        outcome(sdk_client(ref, sign_method=sign_method, token="unneeded"), "DescribeCfsServiceStatus")
        == "OK"
    )
    assert TEMP_TOKEN not in ref.log_text() and TEMP_KEY not in ref.log_text()


def test_v1_form_post_without_signature_is_missing_parameter(ref):
    request = urllib.request.Request(
        ref.url + "/",
        data=b"Action=DescribeCfsFileSystems&Version=2019-07-19",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        error = json.loads(reply.read())["Response"]["Error"]
    assert error["Code"] == "MissingParameter" and "SecretId" in error["Message"]


def test_v1_form_post_over_one_megabyte_is_refused(ref):
    """ "POST 请求使用签名方法为 HmacSHA1、HmacSHA256 时不得超过 1 MB"."""
    body = b"Action=CreateCfsPGroup&Version=2019-07-19&DescInfo=" + b"d" * (1024 * 1024)
    request = urllib.request.Request(
        ref.url + "/", data=body, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        error = json.loads(reply.read())["Response"]["Error"]
    assert error["Code"] == "InvalidParameter" and "1048576 bytes" in error["Message"]


def test_unsupported_http_method(ref):
    request = urllib.request.Request(ref.url + "/", method="PUT", data=b"{}")
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert json.loads(reply.read())["Response"]["Error"]["Code"] == "UnsupportedProtocol"


def test_admin_needs_the_token_and_health_does_not(ref):
    with urllib.request.urlopen(ref.url + "/healthz", timeout=10) as reply:
        assert json.loads(reply.read()) == {"status": "ok"}
    for token in ("", "wrong"):
        request = urllib.request.Request(ref.url + "/_admin/state", headers={"X-Admin-Token": token})
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(request, timeout=10)
        assert denied.value.code == 401
    assert "FileSystems" in ref.admin.state()


def test_admin_rejects_bad_fault_bodies(ref):
    with pytest.raises(urllib.error.HTTPError) as bad:
        ref.admin.set_faults([{"action": "*", "code": "InternalError", "rate": 2.0}])
    assert bad.value.code == 400
    assert ref.admin.request("GET", "/_admin/faults")["faults"] == []


def test_request_log_has_one_line_per_request_and_no_secret(ref):
    before = ref.log_text().count("request action=")
    payload, _ = raw_call(ref, "DescribeCfsServiceStatus")
    request_id = payload["Response"]["RequestId"]
    deadline = time.monotonic() + 5
    while request_id not in ref.log_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    text = ref.log_text()
    line = next(line for line in text.splitlines() if request_id in line)
    assert "action=DescribeCfsServiceStatus" in line and "code=OK" in line and "latency_ms=" in line
    assert text.count("request action=") == before + 1
    assert ref.secret_key not in text and ref.admin_token not in text


def test_config_file_sets_options(tmp_path):
    config = tmp_path / "reference.yaml"
    config.write_text("rate-limit:\n  - DescribeCfsServiceStatus=1\nregions:\n  - ap-beijing-fsi\n")
    with running_reference(tmp_path / "ref", extra_args=["--config", str(config)]) as ref:
        cfs = sdk_client(ref)
        codes = [outcome(cfs, "DescribeCfsServiceStatus") for _ in range(3)]
        assert codes[0] == "OK" and "RequestLimitExceeded" in codes
        regions = [r["Region"] for r in call(cfs, "DescribeAvailableZoneInfo")["RegionZones"]]
        assert regions == ["ap-shanghai-fsi", "ap-beijing-fsi"]


def test_fault_flags_at_start(tmp_path):
    flags = [
        "--fault",
        "DescribeCfsServiceStatus:ResourceUnavailable:1",
        "--latency",
        "DescribeCfsRules:5",
        "--create-failed-rate",
        "1",
    ]
    with running_reference(tmp_path / "ref", extra_args=flags) as ref:
        cfs = sdk_client(ref)
        with pytest.raises(TencentCloudSDKException) as injected:
            call(cfs, "DescribeCfsServiceStatus")
        assert injected.value.code == "ResourceUnavailable"
        assert ref.admin.request("GET", "/_admin/faults") == {
            "faults": [{"action": "DescribeCfsServiceStatus", "code": "ResourceUnavailable", "rate": 1.0}],
            "latency": {"DescribeCfsRules": 5.0},
            "create_failed_rate": 1.0,
        }
        fs_id = call(
            cfs,
            "CreateCfsFileSystem",
            Zone=f"{ref.region}-1",
            NetInterface="BASIC",
            PGroupId="pgroupbasic",
            FsName="doomed",
        )["FileSystemId"]
        deadline = time.monotonic() + 5
        while (
            call(cfs, "DescribeCfsFileSystems", FileSystemId=fs_id)["FileSystems"][0]["LifeCycleState"]
            == "creating"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert (
            call(cfs, "DescribeCfsFileSystems", FileSystemId=fs_id)["FileSystems"][0]["LifeCycleState"]
            == "create_failed"
        )


def test_bad_flags_exit_with_a_message_and_no_secret(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cfs_reference",
            "--state-dir",
            str(tmp_path),
            "--credential",
            "only-an-id-supersecret",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "--credential wants ID:KEY" in result.stderr
    assert "supersecret" not in result.stderr
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cfs_reference",
            "--state-dir",
            str(tmp_path),
            "--credential",
            "a:b",
            "--fault",
            "*:InternalError:7",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "0..1" in result.stderr
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cfs_reference",
            "--state-dir",
            str(tmp_path),
            "--credential",
            "a:b",
            "--nfs",
            "on",
            "--nfs-v3",
            "--mount-target-mode",
            "kubernetes",
            "--mount-ip-pool",
            "10.96.200.0/24",
            "--mount-target-selector",
            "app=reference",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "--nfs-v3 needs the local mount-target mode" in result.stderr


def test_documented_default_limit_holds_under_concurrent_callers(tmp_path):
    """DescribeCfsFileSystems allows 20/s: whatever the pace, successes never exceed 20 + 20/s x elapsed."""
    import threading

    with running_reference(tmp_path / "ref") as ref:
        outcomes: list[str] = []

        def burst():
            cfs = sdk_client(ref)
            outcomes.extend(outcome(cfs, "DescribeCfsFileSystems") for _ in range(15))

        threads = [threading.Thread(target=burst) for _ in range(4)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        assert set(outcomes) <= {"OK", "RequestLimitExceeded"}
        assert outcomes.count("OK") <= 20 + 20 * elapsed
        throttled = ref.admin.calls()["DescribeCfsFileSystems"]["calls"]
        assert sum(code == "RequestLimitExceeded" for _, code in throttled) == outcomes.count(
            "RequestLimitExceeded"
        )
