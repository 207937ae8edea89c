"""Test harness: the real reference CFS service in a subprocess on a random loopback port.

with running_reference(tmp_path, create_delay=0.05, nfs="off") as ref:
    ref.endpoint, ref.url, ref.secret_id, ref.secret_key, ref.region
    ref.admin.set_faults([...]); ref.admin.state(); ref.admin.calls(); ref.admin.reset_calls()
    ref.admin.configure(create_delay=..., rate_limits={...})
    ref.kill(); ref.restart()   # kill -9, then start again on the same state and port
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.local import stop_process

START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0
DEFAULT_REGION = "ap-shanghai-fsi"


class ReferenceAdmin:
    """Client of the /_admin/* endpoints."""

    def __init__(self, url: str, token: str):
        self.url = url
        self.token = token

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"X-Admin-Token": self.token, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as reply:
            return json.loads(reply.read())

    def set_faults(
        self,
        faults: list[dict[str, Any]],
        latency: dict[str, float] | None = None,
        create_failed_rate: float = 0.0,
    ) -> dict[str, Any]:
        """Replace all injected faults,
        e.g. [{"action": "*", "code": "RequestLimitExceeded", "rate": 0.3}]."""
        return self.request(
            "PUT",
            "/_admin/faults",
            {
                "faults": faults,
                "latency": latency or {},
                "create_failed_rate": create_failed_rate,
            },
        )

    def state(self) -> dict[str, Any]:
        return self.request("GET", "/_admin/state")

    def calls(self) -> dict[str, Any]:
        return self.request("GET", "/_admin/calls")

    def reset_calls(self) -> None:
        self.request("POST", "/_admin/calls/reset", {})

    def configure(
        self,
        create_delay: float | None = None,
        rate_limits: dict[str, int] | None = None,
        rate_limits_enabled: bool | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if create_delay is not None:
            body["create_delay"] = create_delay
        if rate_limits is not None:
            body["rate_limits"] = rate_limits
        if rate_limits_enabled is not None:
            body["rate_limits_enabled"] = rate_limits_enabled
        return self.request("PUT", "/_admin/config", body)


class RunningReference:
    def __init__(self, work_dir: Path, args: list[str], region: str):
        self.work_dir = work_dir
        self.state_dir = work_dir / "state"
        self.log_path = work_dir / "reference.log"
        self.port_file = work_dir / "port"
        self.secret_id = "AKID" + secrets.token_hex(16)
        self.secret_key = secrets.token_hex(16)
        self.admin_token = secrets.token_hex(16)
        self.region = region
        self._args = args
        self._process: subprocess.Popen | None = None
        self.port = 0
        self.admin = ReferenceAdmin("", self.admin_token)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def start(self) -> None:
        self.port_file.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "cfs_reference",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--port-file",
            str(self.port_file),
            "--state-dir",
            str(self.state_dir),
            "--admin-token",
            self.admin_token,
            "--region",
            self.region,
            *self._args,
        ]
        env = dict(os.environ, CFS_REFERENCE_CREDENTIALS=f"{self.secret_id}:{self.secret_key}")
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self._wait_ready()
        self.admin.url = self.url

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"cfs-reference exited with {self._process.returncode}:\n{self.log_text()}"
                )
            if self.port_file.exists():
                self.port = int(self.port_file.read_text())
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                        return
                except (urllib.error.URLError, ConnectionError):
                    pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"cfs-reference did not become ready:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """kill -9: no shutdown code runs (durability tests)."""
        if self._process and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def restart(self) -> None:
        """Start again on the same state directory and port (after kill() or stop())."""
        self.stop()
        self.start()

    def stop(self) -> None:
        if self._process:
            stop_process(self._process, STOP_TIMEOUT_SECONDS)


@contextmanager
def running_reference(
    tmp_path: Path,
    create_delay: float = 0.05,
    nfs: str = "off",
    extra_args: list[str] | None = None,
    region: str = DEFAULT_REGION,
) -> Iterator[RunningReference]:
    work_dir = Path(tmp_path)
    work_dir.mkdir(parents=True, exist_ok=True)
    args = ["--create-delay", str(create_delay), "--nfs", nfs, *(extra_args or [])]
    reference = RunningReference(work_dir, args, region)
    try:
        reference.start()
        yield reference
    finally:
        reference.stop()


def sdk_client(
    reference: RunningReference,
    version: str = "2019-07-19",
    sign_method: str = "TC3-HMAC-SHA256",
    req_method: str = "POST",
    secret_id: str | None = None,
    secret_key: str | None = None,
    token: str | None = None,
):
    """An official-SDK client (CommonClient: any action of either version) pointed at `reference`;
    `token` makes the SDK send X-TC-Token (v1: Token), as it does for temporary credentials."""
    from tencentcloud.common import credential
    from tencentcloud.common.common_client import CommonClient
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    profile = ClientProfile(
        signMethod=sign_method,
        httpProfile=HttpProfile(endpoint=reference.endpoint, protocol="http", reqMethod=req_method),
    )
    cred = credential.Credential(secret_id or reference.secret_id, secret_key or reference.secret_key, token)
    return CommonClient("cfs", version, cred, reference.region, profile)


def call(client, action: str, **params: Any) -> dict[str, Any]:
    """One action through the SDK; returns the Response object (raises TencentCloudSDKException)."""
    return client.call_json(action, params)["Response"]


def outcome(client, action: str, **params: Any) -> str:
    """ "OK", or the error code the call ended with."""
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    try:
        call(client, action, **params)
    except TencentCloudSDKException as error:
        return error.code
    return "OK"


class RecordingClient:
    """An SDK client that remembers every action it sent (conformance suites check their coverage)."""

    def __init__(self, client):
        self.client = client
        self.exercised: set[str] = set()

    def ok(self, action: str, **params: Any) -> dict[str, Any]:
        self.exercised.add(action)
        return call(self.client, action, **params)

    def fails(self, code: str, action: str, **params: Any) -> str:
        """Assert that the call fails with the documented `code`; returns the message."""
        import pytest
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

        self.exercised.add(action)
        with pytest.raises(TencentCloudSDKException) as caught:
            call(self.client, action, **params)
        assert caught.value.code == code, caught.value.message
        return caught.value.message
