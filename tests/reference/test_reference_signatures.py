"""The docs' signature worked examples ("接口签名v1" and "接口签名v3"), and the Verifier's error codes.

The finance-zone copy of the docs rewrote the example host to cvm.finance.cloud.tencent.com and
the v1 region to shjr in the text, but the printed results (EliP9YW3pW28FpsEdkXt/+WcGeI=,
91c9c192..., 5da7a33f...) are those of the public-cloud original: host cvm.tencentcloudapi.com,
region ap-guangzhou. The tests reproduce the printed values from those inputs, and show that the
rewritten text gives different values (so the mismatch is in the docs, not in the algorithm).
"""

from __future__ import annotations

import pytest

from cfs_reference.errors import ApiError
from cfs_reference.signatures import (
    Verifier,
    parse_tc3_authorization,
    tc3_authorization,
    tc3_canonical_request,
    tc3_date,
    tc3_signature,
    tc3_string_to_sign,
    v1_signature,
    v1_string_to_sign,
)

SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
ORIGINAL_HOST = "cvm.tencentcloudapi.com"
FINANCE_HOST = "cvm.finance.cloud.tencent.com"

V1_PARAMS = {
    "Action": "DescribeInstances",
    "InstanceIds.0": "ins-09dx96dg",
    "Limit": "20",
    "Nonce": "11886",
    "Offset": "0",
    "SecretId": SECRET_ID,
    "Timestamp": "1465185768",
    "Version": "2017-03-12",
}
TC3_TIMESTAMP = 1539084154
TC3_HEADERS = {"content-type": "application/x-www-form-urlencoded"}


def test_v1_string_to_sign_matches_docs_text():
    params = dict(V1_PARAMS, Region="shjr")
    assert v1_string_to_sign("GET", FINANCE_HOST, "/", params) == (
        "GETcvm.finance.cloud.tencent.com/?Action=DescribeInstances&InstanceIds.0=ins-09dx96dg&Limit=20"
        "&Nonce=11886&Offset=0&Region=shjr&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
        "&Timestamp=1465185768&Version=2017-03-12"
    )


def test_v1_signature_reproduces_documented_value():
    source = v1_string_to_sign("GET", ORIGINAL_HOST, "/", dict(V1_PARAMS, Region="ap-guangzhou"))
    assert v1_signature(SECRET_KEY, source, "HmacSHA1") == "EliP9YW3pW28FpsEdkXt/+WcGeI="
    rewritten = v1_string_to_sign("GET", FINANCE_HOST, "/", dict(V1_PARAMS, Region="shjr"))
    assert v1_signature(SECRET_KEY, rewritten) != "EliP9YW3pW28FpsEdkXt/+WcGeI="


def test_v1_uses_sha1_unless_exactly_hmacsha256():
    source = "GETexample/?A=1"
    assert v1_signature(SECRET_KEY, source, "hmacsha256") == v1_signature(SECRET_KEY, source, "HmacSHA1")
    assert len(v1_signature(SECRET_KEY, source, "HmacSHA256")) == 44  # base64 of 32 bytes


def test_tc3_canonical_request_of_docs_example():
    canonical = tc3_canonical_request(
        "GET", "Limit=10&Offset=0", {**TC3_HEADERS, "host": FINANCE_HOST}, ["content-type", "host"], b""
    )
    assert canonical == (
        "GET\n/\nLimit=10&Offset=0\n"
        "content-type:application/x-www-form-urlencoded\nhost:cvm.finance.cloud.tencent.com\n\n"
        "content-type;host\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_tc3_string_to_sign_and_signature_reproduce_documented_values():
    canonical = tc3_canonical_request(
        "GET", "Limit=10&Offset=0", {**TC3_HEADERS, "host": ORIGINAL_HOST}, ["content-type", "host"], b""
    )
    scope = f"{tc3_date(TC3_TIMESTAMP)}/cvm/tc3_request"
    assert scope == "2018-10-09/cvm/tc3_request"
    string_to_sign = tc3_string_to_sign(TC3_TIMESTAMP, scope, canonical)
    assert string_to_sign == (
        "TC3-HMAC-SHA256\n1539084154\n2018-10-09/cvm/tc3_request\n"
        "91c9c192c14460df6c1ffc69e34e6c5e90708de2a6d282cccf957dbf1aa7f3a7"
    )
    signature = tc3_signature(SECRET_KEY, "2018-10-09", "cvm", string_to_sign)
    assert signature == "5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474"
    assert tc3_authorization(SECRET_ID, scope, ["content-type", "host"], signature) == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2018-10-09/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474"
    )


def test_tc3_date_is_utc_not_local():
    # Docs: 1551113065 is 2019-02-26 00:44:25 in UTC+8, but the scope date is 2019-02-25.
    assert tc3_date(1551113065) == "2019-02-25"


# ---- Verifier ----

NOW = 1_700_000_000
BODY = b'{"Limit": 1}'


def signed(
    body: bytes = BODY,
    host: str = "127.0.0.1:8080",
    timestamp: int = NOW,
    key: str = SECRET_KEY,
    secret_id: str = SECRET_ID,
    service: str = "cfs",
    date: str | None = None,
) -> dict[str, str]:
    headers = {"content-type": "application/json", "host": host}
    date = date or tc3_date(timestamp)
    scope = f"{date}/{service}/tc3_request"
    canonical = tc3_canonical_request("POST", "", headers, ["content-type", "host"], body)
    signature = tc3_signature(key, date, service, tc3_string_to_sign(timestamp, scope, canonical))
    return {
        **headers,
        "x-tc-timestamp": str(timestamp),
        "authorization": tc3_authorization(secret_id, scope, ["content-type", "host"], signature),
    }


@pytest.fixture
def verifier():
    return Verifier({SECRET_ID: SECRET_KEY}, clock=lambda: NOW)


def reject(verifier: Verifier, headers: dict[str, str], body: bytes = BODY) -> ApiError:
    with pytest.raises(ApiError) as caught:
        verifier.verify_tc3("POST", "", headers, body)
    assert SECRET_KEY not in str(caught.value)
    return caught.value


def test_tc3_accepts_a_correct_signature(verifier):
    assert verifier.verify_tc3("POST", "", signed(), BODY) == SECRET_ID


@pytest.mark.parametrize(
    ("headers", "body", "code"),
    [
        (signed(key="wrong-key"), BODY, "AuthFailure.SignatureFailure"),
        (signed(secret_id="AKIDunknown"), BODY, "AuthFailure.SecretIdNotFound"),
        (signed(secret_id="not-a-cloud-key"), BODY, "AuthFailure.InvalidSecretId"),
        (signed(timestamp=NOW - 301), BODY, "AuthFailure.SignatureExpire"),
        (signed(timestamp=NOW + 301), BODY, "AuthFailure.SignatureExpire"),
        (signed(), b'{"Limit": 2}', "AuthFailure.SignatureFailure"),  # tampered body
        (dict(signed(host="evil.example:1"), host="127.0.0.1:8080"), BODY, "AuthFailure.SignatureFailure"),
        (signed(service="cvm"), BODY, "AuthFailure.SignatureFailure"),
        (signed(date="2001-01-01"), BODY, "AuthFailure.SignatureFailure"),
        (dict(signed(), authorization="HMAC-SHA1 junk"), BODY, "AuthFailure.SignatureFailure"),
    ],
    ids=[
        "wrong-key",
        "unknown-id",
        "invalid-id",
        "expired",
        "future",
        "tampered-body",
        "wrong-host",
        "wrong-service",
        "wrong-date",
        "malformed",
    ],
)
def test_tc3_rejections(verifier, headers, body, code):
    assert reject(verifier, headers, body).code == code


def test_tc3_within_five_minutes_is_accepted(verifier):
    assert verifier.verify_tc3("POST", "", signed(timestamp=NOW - 299), BODY) == SECRET_ID


def test_tc3_requires_content_type_and_host_signed(verifier):
    headers = signed()
    headers["authorization"] = headers["authorization"].replace(
        "SignedHeaders=content-type;host", "SignedHeaders=host"
    )
    error = reject(verifier, headers)
    assert error.code == "AuthFailure.SignatureFailure" and "content-type" in error.message


def test_parse_authorization_fields():
    parsed = parse_tc3_authorization(signed()["authorization"])
    assert (parsed.secret_id, parsed.service, parsed.signed_headers) == (
        SECRET_ID,
        "cfs",
        ["content-type", "host"],
    )


def v1_params(key: str = SECRET_KEY, method: str = "HmacSHA256", **overrides: str) -> dict[str, str]:
    params = {
        "Action": "DescribeCfsFileSystems",
        "Version": "2019-07-19",
        "Region": "ap-shanghai-fsi",
        "Nonce": "42",
        "Timestamp": str(NOW),
        "SecretId": SECRET_ID,
        "SignatureMethod": method,
        **overrides,
    }
    params["Signature"] = v1_signature(key, v1_string_to_sign("GET", "127.0.0.1:8080", "/", params), method)
    return params


@pytest.mark.parametrize("method", ["HmacSHA1", "HmacSHA256"])
def test_v1_accepts_both_methods(verifier, method):
    assert verifier.verify_v1("GET", "127.0.0.1:8080", "/", v1_params(method=method)) == SECRET_ID


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (v1_params(key="wrong"), "AuthFailure.SignatureFailure"),
        (v1_params(Timestamp=str(NOW - 600)), "AuthFailure.SignatureExpire"),
        (dict(v1_params(), SecretId="AKIDunknown"), "AuthFailure.SecretIdNotFound"),
        (dict(v1_params(), Limit="5"), "AuthFailure.SignatureFailure"),  # parameter added after signing
        ({k: v for k, v in v1_params().items() if k != "Nonce"}, "MissingParameter"),
        (v1_params(Nonce="0"), "InvalidParameter"),  # "随机正整数"
    ],
    ids=["wrong-key", "expired", "unknown-id", "tampered", "no-nonce", "zero-nonce"],
)
def test_v1_rejections(verifier, params, code):
    with pytest.raises(ApiError) as caught:
        verifier.verify_v1("GET", "127.0.0.1:8080", "/", params)
    assert caught.value.code == code


# ---- replay protection (v1 Nonce) and temporary credentials (Token) ----


def reject_v1(verifier: Verifier, params: dict[str, str]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        verifier.verify_v1("GET", "127.0.0.1:8080", "/", params)
    return caught.value


def test_v1_replayed_nonce_is_rejected(verifier):
    """Nonce "与 Timestamp 联合起来，用于防止重放攻击": the same signed request works once."""
    request = v1_params()
    assert verifier.verify_v1("GET", "127.0.0.1:8080", "/", request) == SECRET_ID
    replay = reject_v1(verifier, request)
    assert replay.code == "AuthFailure.SignatureFailure" and "Nonce 42" in replay.message
    assert verifier.verify_v1("GET", "127.0.0.1:8080", "/", v1_params(Nonce="43")) == SECRET_ID
    # the same Nonce with another Timestamp is another request
    assert verifier.verify_v1("GET", "127.0.0.1:8080", "/", v1_params(Timestamp=str(NOW + 1))) == SECRET_ID


def test_v1_old_nonces_are_forgotten_once_their_timestamp_has_expired():
    clock = [float(NOW)]
    verifier = Verifier({SECRET_ID: SECRET_KEY}, clock=lambda: clock[0])
    request = v1_params()
    verifier.verify_v1("GET", "127.0.0.1:8080", "/", request)
    clock[0] += 301
    assert reject_v1(verifier, request).code == "AuthFailure.SignatureExpire"  # replay still refused
    verifier.verify_v1("GET", "127.0.0.1:8080", "/", v1_params(Timestamp=str(NOW + 301)))
    assert len(verifier._used_nonces) == 1  # the expired pair no longer takes memory


TOKEN = "temporary-session-token-0042"


@pytest.fixture
def temporary_verifier():
    return Verifier({SECRET_ID: SECRET_KEY}, clock=lambda: NOW, tokens={SECRET_ID: TOKEN})


@pytest.mark.parametrize("token", [None, "another-token"], ids=["missing", "wrong"])
def test_temporary_key_needs_its_token(temporary_verifier, token):
    headers = signed() if token is None else {**signed(), "x-tc-token": token}
    error = reject(temporary_verifier, headers)
    assert error.code == "AuthFailure.TokenFailure" and "X-TC-Token" in error.message
    assert TOKEN not in error.message
    params = v1_params() if token is None else v1_params(Token=token)
    v1_error = reject_v1(temporary_verifier, params)
    assert v1_error.code == "AuthFailure.TokenFailure" and TOKEN not in v1_error.message


def test_temporary_key_with_its_token_is_accepted(temporary_verifier):
    assert temporary_verifier.verify_tc3("POST", "", {**signed(), "x-tc-token": TOKEN}, BODY) == SECRET_ID
    assert temporary_verifier.verify_v1("GET", "127.0.0.1:8080", "/", v1_params(Token=TOKEN)) == SECRET_ID


def test_long_term_key_needs_no_token_and_ignores_one(verifier):
    """ "长期密钥不需要 Token"."""
    assert verifier.verify_tc3("POST", "", {**signed(), "x-tc-token": "anything"}, BODY) == SECRET_ID
    assert verifier.verify_v1("GET", "127.0.0.1:8080", "/", v1_params(Token="anything")) == SECRET_ID
