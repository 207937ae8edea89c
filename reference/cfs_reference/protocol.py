"""From an HTTP request to a CFS reply: signature, action lookup, limits, faults, validation, dispatch.

Two request styles (docs "请求结构"):
- TC3-HMAC-SHA256: common parameters in X-TC-* headers; business parameters in a JSON body
  (POST, Content-Type application/json) or in the query string (GET).
- v1 HmacSHA1 / HmacSHA256: every parameter, common ones included, in the query string (GET)
  or a form body (POST, application/x-www-form-urlencoded).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl

from cfs_reference.api import v20180416, v20190719
from cfs_reference.backend import Backend
from cfs_reference.calls import CallLog
from cfs_reference.catalogue import CATALOGUE, V2018, V2019, Action
from cfs_reference.errors import ApiError
from cfs_reference.faults import Faults
from cfs_reference.ratelimit import RateLimiter
from cfs_reference.signatures import TC3_ALGORITHM, Verifier
from cfs_reference.validation import validate_flat, validate_json

log = logging.getLogger(__name__)

HANDLERS = MappingProxyType({V2018: v20180416.HANDLERS, V2019: v20190719.HANDLERS})
V1_COMMON_PARAMS = frozenset(
    {
        "Action",
        "Version",
        "Region",
        "Timestamp",
        "Nonce",
        "SecretId",
        "Signature",
        "SignatureMethod",
        "Token",
        "Language",
        "RequestClient",
    }
)
READ_ONLY_PREFIXES = ("Describe", "Query")
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
TC3_CONTENT_TYPES = MappingProxyType({"GET": FORM_TYPE, "POST": JSON_TYPE})
# "POST 请求使用签名方法为 HmacSHA1、HmacSHA256 时不得超过 1 MB" (TC3: 10 MB, the server's body limit;
# GET: 32 KB, its request-line limit).
MAX_V1_POST_BYTES = 1024 * 1024


@dataclass(frozen=True)
class HttpRequest:
    """What the protocol needs from an HTTP request (header names lower-case)."""

    method: str
    host: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class Outcome:
    action: str
    version: str
    payload: dict[str, Any]  # the Response fields (without RequestId); {"Error": ...} on failure
    code: str


@dataclass(frozen=True)
class _Call:
    action: str
    version: str
    region: str
    raw: Any  # JSON object (json_body=True) or a flat str->str map
    json_body: bool


class Protocol:
    def __init__(
        self, backend: Backend, verifier: Verifier, limiter: RateLimiter, faults: Faults, calls: CallLog
    ):
        self.backend = backend
        self.verifier = verifier
        self.limiter = limiter
        self.faults = faults
        self.calls = calls

    async def handle(self, request: HttpRequest) -> Outcome:
        call: _Call | None = None
        try:
            call = self._authenticated_call(request)
            payload = await self._dispatch(call)
            outcome = Outcome(call.action, call.version, payload, "OK")
        except ApiError as error:
            outcome = Outcome(
                call.action if call else "",
                call.version if call else "",
                {"Error": {"Code": error.code, "Message": error.message}},
                error.code,
            )
        except Exception:
            log.exception("unexpected failure in %s", call.action if call else "request parsing")
            outcome = Outcome(
                call.action if call else "",
                call.version if call else "",
                {"Error": {"Code": "InternalError", "Message": "internal error"}},
                "InternalError",
            )
        if outcome.action:
            self.calls.record(outcome.action, outcome.code)
        return outcome

    # ---- parsing and authentication ----

    def _authenticated_call(self, request: HttpRequest) -> _Call:
        if request.method not in ("GET", "POST"):
            raise ApiError(
                "UnsupportedProtocol", f"HTTP method {request.method} is not supported; use GET or POST"
            )
        if request.headers.get("authorization", "").startswith(TC3_ALGORITHM):
            return self._tc3_call(request)
        return self._v1_call(request)

    def _tc3_call(self, request: HttpRequest) -> _Call:
        headers = request.headers
        # "对于GET方法，只支持 Content-Type: application/x-www-form-urlencoded"; POST takes JSON
        # (multipart/form-data is only for specific actions, none of them CFS).
        wanted = TC3_CONTENT_TYPES[request.method]
        content_type = _content_type(headers)
        if content_type != wanted:
            raise ApiError(
                "InvalidParameter",
                f"Content-Type {content_type or '(none)'} is not supported for {request.method} with "
                f"{TC3_ALGORITHM}; use {wanted}",
            )
        if request.method == "POST":
            query, raw, json_body = "", _json_object(request.body), True
        else:
            query, raw, json_body = request.query_string, _flat(request.query_string), False
        self.verifier.verify_tc3(request.method, query, headers, request.body)
        return _Call(
            action=_required_header(headers, "x-tc-action"),
            version=_required_header(headers, "x-tc-version"),
            region=headers.get("x-tc-region", ""),
            raw=raw,
            json_body=json_body,
        )

    def _v1_call(self, request: HttpRequest) -> _Call:
        if request.method == "GET":
            params = _flat(request.query_string)
        else:
            content_type = _content_type(request.headers)
            if content_type != FORM_TYPE:
                raise ApiError(
                    "AuthFailure.SignatureFailure" if content_type == JSON_TYPE else "InvalidParameter",
                    f"a POST with Content-Type {content_type or '(none)'} needs an Authorization header "
                    f"({TC3_ALGORITHM}); HmacSHA1/HmacSHA256 requests use {FORM_TYPE}",
                )
            if len(request.body) > MAX_V1_POST_BYTES:
                raise ApiError(
                    "InvalidParameter",
                    f"a HmacSHA1/HmacSHA256 POST body may hold at most {MAX_V1_POST_BYTES} bytes; "
                    f"larger requests use {TC3_ALGORITHM} (up to 10 MB)",
                )
            params = _flat(request.body.decode("utf-8", errors="replace"))
        self.verifier.verify_v1(request.method, request.host, "/", params)
        for name in ("Action", "Version"):
            if not params.get(name):
                raise ApiError("MissingParameter", f"the request is missing the common parameter {name}")
        business = {k: v for k, v in params.items() if k not in V1_COMMON_PARAMS}
        return _Call(params["Action"], params["Version"], params.get("Region", ""), business, False)

    # ---- dispatch ----

    async def _dispatch(self, call: _Call) -> dict[str, Any]:
        action = _catalogue_entry(call.version, call.action)
        if not call.region:
            raise ApiError("MissingParameter", "the request is missing the common parameter Region")
        self.backend.regions.check(call.region)
        if not self.limiter.allow(action.name):
            raise ApiError(
                "RequestLimitExceeded",
                f"{action.name} is limited to {self.limiter.limit(action.name)} requests per second",
            )
        delay = self.faults.delay_seconds(action.name)
        if delay > 0:
            await asyncio.sleep(delay)
        injected = self.faults.error_for(action.name)
        if injected:
            raise ApiError(injected, f"injected fault for {action.name}")
        params = validate_json(action, call.raw) if call.json_body else validate_flat(action, call.raw)
        self.backend.settle()
        payload = HANDLERS[action.version][action.name](self.backend, call.region, params)
        if not action.name.startswith(READ_ONLY_PREFIXES):
            self.backend.after_change()
        return payload


def _catalogue_entry(version: str, name: str) -> Action:
    actions = CATALOGUE.get(version)
    if actions is None:
        raise ApiError(
            "NoSuchVersion", f"Version {version!r} does not exist; available: {', '.join(CATALOGUE)}"
        )
    if name not in actions:
        raise ApiError("InvalidAction", f"Action {name!r} does not exist in version {version}")
    return actions[name]


def _required_header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "")
    if not value:
        raise ApiError("MissingParameter", f"the request is missing the header {name}")
    return value


def _content_type(headers: Mapping[str, str]) -> str:
    """The media type of Content-Type, without parameters such as charset."""
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _json_object(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError("InvalidParameter", f"the body is not valid JSON: {error}") from None


def _flat(encoded: str) -> dict[str, str]:
    return dict(parse_qsl(encoded, keep_blank_values=True))
