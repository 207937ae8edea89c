"""The two request signature methods of the docs ("接口签名v3" TC3-HMAC-SHA256, "接口签名v1").

The pure functions reproduce each step of the docs' worked examples; `Verifier` applies them to
an incoming request and raises the documented AuthFailure.* codes. Messages never contain a
secret key, a token or the expected signature.

Temporary credentials ("临时证书所用的 Token，需要结合临时密钥一起使用 ... 长期密钥不需要 Token"):
a SecretId configured with a token is a temporary key and every request made with it must carry
that token (X-TC-Token, or Token in v1), else AuthFailure.TokenFailure. A long-term key needs no
token, so one sent along with it is not checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cfs_reference.errors import ApiError

TC3_ALGORITHM = "TC3-HMAC-SHA256"
TC3_TERMINATOR = "tc3_request"
MAX_CLOCK_SKEW_SECONDS = 300  # "如果与服务器时间相差超过5分钟，会引起签名过期错误"
REQUIRED_SIGNED_HEADERS = ("content-type", "host")
CLOUD_API_KEY_PREFIX = "AKID"  # "密钥非法 (不是云 API 密钥类型)" for anything else unknown
V1_METHODS = {"HmacSHA1": hashlib.sha1, "HmacSHA256": hashlib.sha256}


# ---- TC3-HMAC-SHA256 (docs 2.1 .. 2.4) ----


def tc3_canonical_request(
    method: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: list[str],
    payload: bytes,
) -> str:
    """Step 2.1. `headers` maps lower-case header names to their values."""
    canonical_headers = "".join(
        f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed_headers
    )
    return "\n".join(
        [
            method.upper(),
            "/",
            query,
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(payload).hexdigest(),
        ]
    )


def tc3_date(timestamp: int) -> str:
    """The credential-scope date: the UTC date of X-TC-Timestamp (never local time)."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d")


def tc3_string_to_sign(timestamp: int, credential_scope: str, canonical_request: str) -> str:
    """Step 2.2."""
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{TC3_ALGORITHM}\n{timestamp}\n{credential_scope}\n{digest}"


def tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    """Step 2.3: derive the signing key from the date and service, then sign."""
    secret_date = _hmac256(("TC3" + secret_key).encode("utf-8"), date)
    secret_service = _hmac256(secret_date, service)
    secret_signing = _hmac256(secret_service, TC3_TERMINATOR)
    return hmac.new(secret_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def tc3_authorization(
    secret_id: str, credential_scope: str, signed_headers: list[str], signature: str
) -> str:
    """Step 2.4."""
    return (
        f"{TC3_ALGORITHM} Credential={secret_id}/{credential_scope}, "
        f"SignedHeaders={';'.join(signed_headers)}, Signature={signature}"
    )


@dataclass(frozen=True)
class Tc3Authorization:
    secret_id: str
    date: str
    service: str
    signed_headers: list[str]
    signature: str


def parse_tc3_authorization(header: str) -> Tc3Authorization:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != TC3_ALGORITHM:
        raise _failure(f"Authorization must start with {TC3_ALGORITHM}")
    parts = {}
    for item in rest.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise _failure("Authorization must be Credential=..., SignedHeaders=..., Signature=...")
        parts[key] = value.strip()
    try:
        credential, signed, signature = parts["Credential"], parts["SignedHeaders"], parts["Signature"]
    except KeyError as missing:
        raise _failure(f"Authorization lacks {missing.args[0]}") from None
    scope = credential.split("/")
    if len(scope) != 4 or scope[3] != TC3_TERMINATOR:
        raise _failure("Credential must be SecretId/Date/service/tc3_request")
    return Tc3Authorization(scope[0], scope[1], scope[2], signed.split(";"), signature)


# ---- v1: HmacSHA1 / HmacSHA256 (docs 2.1 .. 2.4) ----


def v1_string_to_sign(method: str, host: str, path: str, params: Mapping[str, str]) -> str:
    """Steps 2.1-2.3: sort by name (ASCII), join raw name=value with '&', prefix method+host+path."""
    query = "&".join(f"{name}={params[name]}" for name in sorted(params) if name != "Signature")
    return f"{method.upper()}{host}{path}?{query}"


def v1_signature(secret_key: str, string_to_sign: str, signature_method: str = "HmacSHA1") -> str:
    """Step 2.4: HMAC (SHA1 unless SignatureMethod is exactly HmacSHA256), base64."""
    digest = V1_METHODS["HmacSHA256" if signature_method == "HmacSHA256" else "HmacSHA1"]
    mac = hmac.new(secret_key.encode("utf-8"), string_to_sign.encode("utf-8"), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


# ---- verification ----


@dataclass
class Verifier:
    """Checks requests against the configured SecretId -> SecretKey pairs (and the tokens of
    temporary keys: SecretId -> token)."""

    credentials: Mapping[str, str]
    service: str = "cfs"
    clock: Callable[[], float] = field(default=time.time)
    tokens: Mapping[str, str] = field(default_factory=dict)
    # v1 (SecretId, Nonce, Timestamp) already accepted, oldest first; a pair is forgotten once
    # its Timestamp is outside the allowed skew, when the timestamp check rejects it anyway.
    _used_nonces: set[tuple[str, str, int]] = field(default_factory=set, init=False, repr=False)
    _nonce_order: deque[tuple[str, str, int]] = field(default_factory=deque, init=False, repr=False)

    def verify_tc3(
        self,
        method: str,
        query: str,
        headers: Mapping[str, str],
        payload: bytes,
    ) -> str:
        """Verify a TC3 request; `headers` has lower-case names. Returns the SecretId."""
        auth = parse_tc3_authorization(headers.get("authorization", ""))
        secret_key = self._secret_key(auth.secret_id)
        timestamp = self._timestamp(headers.get("x-tc-timestamp"), "X-TC-Timestamp")
        for required in REQUIRED_SIGNED_HEADERS:
            if required not in auth.signed_headers:
                raise _failure(f"SignedHeaders must include {required}")
        if auth.date != tc3_date(timestamp):
            raise _failure("the credential date must be the UTC date of X-TC-Timestamp")
        if auth.service != self.service:
            raise _failure(f"the credential service must be {self.service!r}")
        canonical = tc3_canonical_request(method, query, headers, auth.signed_headers, payload)
        scope = f"{auth.date}/{auth.service}/{TC3_TERMINATOR}"
        expected = tc3_signature(
            secret_key, auth.date, auth.service, tc3_string_to_sign(timestamp, scope, canonical)
        )
        if not hmac.compare_digest(expected, auth.signature):
            raise _failure("the request signature does not match")
        self._check_token(auth.secret_id, headers.get("x-tc-token", ""), "X-TC-Token")
        return auth.secret_id

    def verify_v1(self, method: str, host: str, path: str, params: Mapping[str, str]) -> str:
        """Verify a v1 request whose parameters (incl. SecretId, Signature) are `params`."""
        for name in ("SecretId", "Signature", "Timestamp", "Nonce"):
            if not params.get(name):
                raise ApiError("MissingParameter", f"the request is missing the common parameter {name}")
        secret_key = self._secret_key(params["SecretId"])
        timestamp = self._timestamp(params["Timestamp"], "Timestamp")
        nonce = params["Nonce"]
        if not nonce.isdigit() or int(nonce) == 0:
            raise ApiError("InvalidParameter", f"Nonce must be a positive integer, got {nonce!r}")
        method_name = params.get("SignatureMethod", "HmacSHA1")
        expected = v1_signature(secret_key, v1_string_to_sign(method, host, path, params), method_name)
        if not hmac.compare_digest(expected, params["Signature"]):
            raise _failure("the request signature does not match")
        self._check_token(params["SecretId"], params.get("Token", ""), "Token")
        self._use_nonce(params["SecretId"], nonce, timestamp)
        return params["SecretId"]

    def _check_token(self, secret_id: str, given: str, name: str) -> None:
        expected = self.tokens.get(secret_id)
        if expected is None:  # a long-term key: "长期密钥不需要 Token"
            return
        if not given:
            raise ApiError(
                "AuthFailure.TokenFailure", f"this SecretId is a temporary key: {name} is required"
            )
        if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
            raise ApiError("AuthFailure.TokenFailure", f"the {name} does not belong to this temporary key")

    def _use_nonce(self, secret_id: str, nonce: str, timestamp: int) -> None:
        """Nonce "与 Timestamp 联合起来，用于防止重放攻击": a pair is accepted once."""
        horizon = self.clock() - MAX_CLOCK_SKEW_SECONDS
        while self._nonce_order and self._nonce_order[0][2] < horizon:
            self._used_nonces.discard(self._nonce_order.popleft())
        key = (secret_id, nonce, timestamp)
        if key in self._used_nonces:
            raise _failure(f"Nonce {nonce} was already used with Timestamp {timestamp}: a replayed request")
        self._used_nonces.add(key)
        self._nonce_order.append(key)

    def _secret_key(self, secret_id: str) -> str:
        if secret_id in self.credentials:
            return self.credentials[secret_id]
        if not secret_id.startswith(CLOUD_API_KEY_PREFIX):
            raise ApiError(
                "AuthFailure.InvalidSecretId",
                f"the SecretId is not a cloud API key (they start with {CLOUD_API_KEY_PREFIX})",
            )
        raise ApiError("AuthFailure.SecretIdNotFound", "the SecretId is not found")

    def _timestamp(self, raw: str | None, name: str) -> int:
        if raw is None or not raw.strip().isdigit():
            raise ApiError(
                "MissingParameter" if not raw else "InvalidParameter",
                f"{name} must be the current UNIX time in seconds",
            )
        timestamp = int(raw)
        if abs(self.clock() - timestamp) > MAX_CLOCK_SKEW_SECONDS:
            raise ApiError(
                "AuthFailure.SignatureExpire",
                f"{name} differs from the server time by more than {MAX_CLOCK_SKEW_SECONDS} seconds",
            )
        return timestamp


def _hmac256(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _failure(message: str) -> ApiError:
    return ApiError("AuthFailure.SignatureFailure", message)
