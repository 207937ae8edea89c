"""`CloudConfig`: where the CFS API is, which region, which credentials, and client tuning."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from cfs_cloud.credentials import FileCredentials, StaticCredentials
from cfs_cloud.limits import DEFAULT_MARGIN, rate_limit_problem

DEFAULT_ENDPOINT = "cfs.api3.finance.cloud.tencent.com"  # cfs-docs.txt "接口请求域名"
DEFAULT_REGION = "ap-shanghai-fsi"

ENV_SECRET_ID = "TENCENTCLOUD_SECRET_ID"
ENV_SECRET_KEY = "TENCENTCLOUD_SECRET_KEY"
ENV_SESSION_TOKEN = "TENCENTCLOUD_SESSION_TOKEN"
ENV_CREDENTIALS_DIR = "CFS_CREDENTIALS_DIR"
ENV_ENDPOINT = "CFS_ENDPOINT"
ENV_REGION = "TENCENTCLOUD_REGION"
ENV_RATE_LIMITS = "CFS_RATE_LIMITS"

_REGION = re.compile(r"[a-z]+(-[a-z0-9]+)+")  # ap-shanghai-fsi, ap-guangzhou


class CloudConfigError(ValueError):
    """The configuration itself is unusable (bad endpoint, bad tuning value)."""


def split_endpoint(endpoint: str) -> tuple[str, str]:
    """(scheme, host[:port]) from `host`, `host:port` or `http(s)://host[:port]` (a trailing
    slash is fine). A bare host means https, as the docs require for the real service. Paths,
    queries and user info are refused: every action is a POST to "/" signed for that host.
    """
    given = endpoint.strip()
    parts = urlsplit(given if "://" in given else "https://" + given)
    if parts.scheme not in ("http", "https"):
        raise CloudConfigError(f"endpoint {given!r}: scheme must be http or https, got {parts.scheme!r}")
    if "@" in parts.netloc:  # not echoed: it may hold a password
        raise CloudConfigError("endpoint: user info (user:password@) is not allowed")
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise CloudConfigError(f"endpoint {given!r}: expected host, host:port or http(s)://host[:port]")
    try:
        _ = parts.port  # the property raises for a malformed port
    except ValueError as exc:
        raise CloudConfigError(f"endpoint {given!r}: invalid port") from exc
    return parts.scheme, parts.netloc


def parse_rate_limits(text: str) -> dict[str, float]:
    """ "CreateCfsFileSystem=5,DescribeCfsFileSystems=10" -> {action: calls per second}."""
    limits = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        action, sep, value = item.partition("=")
        try:
            if not sep or not action.strip():
                raise ValueError
            limits[action.strip()] = float(value)
        except ValueError:
            raise CloudConfigError(
                f"{ENV_RATE_LIMITS}: {item!r} is not ACTION=N (calls per second, 0 = off)"
            ) from None
        if problem := rate_limit_problem(action.strip(), limits[action.strip()]):
            raise CloudConfigError(f"{ENV_RATE_LIMITS}: {problem}")
    return limits


def _env_value(env: Mapping[str, str], name: str) -> str | None:
    """The variable with surrounding whitespace (a trailing newline from a file) removed."""
    return (env.get(name) or "").strip() or None


@dataclasses.dataclass(frozen=True)
class CloudConfig:
    """Everything a `CfsClient` needs. Secrets are excluded from the repr.

    Credentials: `credentials_dir` (a mounted Secret, re-read on change) wins over
    `secret_id`/`secret_key`. With neither, the client fails each call with `CfsAuthError`
    (the CSI node needs no credentials, so building a config never requires them).
    """

    endpoint: str = DEFAULT_ENDPOINT
    region: str = DEFAULT_REGION
    secret_id: str | None = None
    secret_key: str | None = dataclasses.field(default=None, repr=False)
    session_token: str | None = dataclasses.field(default=None, repr=False)
    credentials_dir: str | None = None
    # Per-action calls/second overriding the documented defaults (0 = no client-side limit).
    rate_limits: Mapping[str, float] = dataclasses.field(default_factory=dict)
    # Fraction of each limit kept in reserve against clock skew and network jitter.
    rate_limit_margin: float = DEFAULT_MARGIN
    # Retries stop when the next attempt would start after this many seconds.
    retry_deadline: float = 30.0
    retry_base_delay: float = 0.05
    retry_max_delay: float = 2.0
    request_timeout: float = 30.0
    # Waiters poll soon after a create, then back off to this interval.
    poll_min_interval: float = 0.05
    poll_max_interval: float = 0.5
    # While several resources are waited for, the least time between the end of one poll
    # (a listing: one call per page of all resources) and the start of the next, however many
    # new waiters ask for an early look. None: poll_max_interval.
    poll_min_gap: float | None = None

    def __post_init__(self) -> None:
        split_endpoint(self.endpoint)
        object.__setattr__(self, "rate_limits", MappingProxyType(dict(self.rate_limits)))
        if not _REGION.fullmatch(self.region):
            raise CloudConfigError(
                f"region must be a region name such as {DEFAULT_REGION}, got {self.region!r}"
            )
        for action, limit in self.rate_limits.items():
            if problem := rate_limit_problem(action, limit):
                raise CloudConfigError(f"rate_limits: {problem}")
        if not 0 <= self.rate_limit_margin < 1:
            raise CloudConfigError(f"rate_limit_margin must be in [0, 1), got {self.rate_limit_margin}")
        for name in (
            "retry_deadline",
            "retry_base_delay",
            "retry_max_delay",
            "request_timeout",
            "poll_min_interval",
            "poll_max_interval",
        ):
            if getattr(self, name) <= 0:
                raise CloudConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.poll_min_interval > self.poll_max_interval:
            raise CloudConfigError("poll_min_interval must be <= poll_max_interval")
        gap = self.poll_max_interval if self.poll_min_gap is None else self.poll_min_gap
        object.__setattr__(self, "poll_min_gap", gap)
        if not 0 <= gap <= self.poll_max_interval:
            raise CloudConfigError(f"poll_min_gap must be in [0, poll_max_interval], got {gap}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> CloudConfig:
        """Build from the shared environment variables (docs/ARCHITECTURE.md)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "endpoint": _env_value(env, ENV_ENDPOINT) or DEFAULT_ENDPOINT,
            "region": _env_value(env, ENV_REGION) or DEFAULT_REGION,
            "secret_id": _env_value(env, ENV_SECRET_ID),
            "secret_key": _env_value(env, ENV_SECRET_KEY),
            "session_token": _env_value(env, ENV_SESSION_TOKEN),
            "credentials_dir": _env_value(env, ENV_CREDENTIALS_DIR),
            "rate_limits": parse_rate_limits(env.get(ENV_RATE_LIMITS, "")),
        }
        values.update(overrides)
        return cls(**values)

    @property
    def scheme(self) -> str:
        return split_endpoint(self.endpoint)[0]

    @property
    def host(self) -> str:
        """host[:port] as the SDK wants it (it signs `Host` with the port)."""
        return split_endpoint(self.endpoint)[1]

    def has_credentials(self) -> bool:
        return bool(self.credentials_dir or (self.secret_id and self.secret_key))

    def credential_provider(self) -> StaticCredentials | FileCredentials | None:
        if self.credentials_dir:
            return FileCredentials(self.credentials_dir)
        if self.secret_id and self.secret_key:
            return StaticCredentials(self.secret_id, self.secret_key, self.session_token)
        return None
