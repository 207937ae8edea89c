"""The few Kubernetes API calls the reference service makes, over HTTPS with its pod's
service account (standard library only: the big `kubernetes` client is not worth it here)."""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfs_reference.nfs.model import DataPlaneError, DataPlaneUnavailable

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
REQUEST_TIMEOUT_SECONDS = 10.0


class KubeApiError(DataPlaneError):
    """The API server answered with an error status (status 0: it could not be reached).
    The message is the API server's own; it never holds the token."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(f"Kubernetes API {status or 'unreachable'} {reason}: {message}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class KubeApi:
    base_url: str  # https://host:port
    token_file: Path  # re-read on every call: the kubelet rotates bound tokens
    ssl_context: ssl.SSLContext
    namespace: str  # the pod's own namespace

    @classmethod
    def from_service_account(
        cls, directory: Path = SERVICE_ACCOUNT_DIR, environ: Mapping[str, str] = os.environ
    ) -> KubeApi:
        """The in-cluster configuration every pod gets: KUBERNETES_SERVICE_HOST/PORT and the
        service-account token, CA and namespace files. DataPlaneUnavailable names what is missing."""
        host = environ.get("KUBERNETES_SERVICE_HOST", "")
        port = environ.get("KUBERNETES_SERVICE_PORT", "")
        if not host or not port:
            raise DataPlaneUnavailable(
                "--mount-target-mode kubernetes runs inside a pod: KUBERNETES_SERVICE_HOST and "
                "KUBERNETES_SERVICE_PORT are not set"
            )
        for name in ("token", "ca.crt", "namespace"):
            if not (directory / name).is_file():
                raise DataPlaneUnavailable(
                    f"--mount-target-mode kubernetes needs the service-account file "
                    f"{directory / name} (is automountServiceAccountToken false?)"
                )
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        return cls(
            base_url=f"https://{host}:{port}",
            token_file=directory / "token",
            ssl_context=ssl.create_default_context(cafile=str(directory / "ca.crt")),
            namespace=(directory / "namespace").read_text().strip(),
        )

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One call; the decoded JSON reply, or KubeApiError."""
        url = self.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        try:
            token = self.token_file.read_text().strip()
        except OSError as error:  # a DataPlaneError, so callers treat it like an unreachable API
            raise KubeApiError(0, "NoToken", f"service-account token: {error}") from None
        headers = {"Accept": "application/json", "Authorization": "Bearer " + token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(
                request, timeout=REQUEST_TIMEOUT_SECONDS, context=self.ssl_context
            ) as reply:
                return json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise error_from_status(error.code, error.read()) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise KubeApiError(0, "Unreachable", f"{method} {url}: {reason}") from None


def error_from_status(code: int, raw: bytes) -> KubeApiError:
    """A KubeApiError from an error reply, whose body is normally a v1 Status object."""
    try:
        status = json.loads(raw)
    except ValueError:
        status = None
    if not isinstance(status, dict):
        return KubeApiError(code, "Unknown", raw.decode(errors="replace")[:200])
    return KubeApiError(code, str(status.get("reason") or "Unknown"), str(status.get("message") or ""))
