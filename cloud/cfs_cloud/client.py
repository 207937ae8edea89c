"""`CfsClient`: every CFS API call of the project goes through `CfsClient.call`.

The official SDK (API 2019-07-19) builds, signs and sends each request through its generic JSON
call; this layer adds per-action rate limiting, retries with backoff, typed errors, metrics,
secret-free logging, credential rotation and the helpers (lookups, pagination, waiters).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import urllib3
from tencentcloud.cfs.v20190719.cfs_client import CfsClient as SdkCfsClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from cfs_cloud import metrics
from cfs_cloud.api_types import ApiObject
from cfs_cloud.config import CloudConfig
from cfs_cloud.credentials import FileCredentials, StaticCredentials
from cfs_cloud.errors import (
    CallTimeout,
    CfsAuthError,
    CfsError,
    CfsNetworkError,
    CfsNotFound,
    CfsThrottled,
    FileSystemCreateFailed,
    SnapshotCreateFailed,
    error_for,
)
from cfs_cloud.limits import ActionRateLimits
from cfs_cloud.redact import install_sdk_log_redactor, scrub
from cfs_cloud.retry import Backoff, is_retryable
from cfs_cloud.waiter import CoalescingWaiter, ResourceKind

log = logging.getLogger(__name__)

PAGE_SIZE = 100


def _never_sent(exc: BaseException) -> bool:
    """True when the SDK's network error happened before any byte reached the server: urllib3's
    ConnectTimeoutError (and its subclass NewConnectionError, e.g. connection refused) is in
    the chain of causes that requests and the SDK wrap around it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, urllib3.exceptions.ConnectTimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# Credential clones kept for reuse (CSI request secrets: usually one or a few per cluster).
MAX_CACHED_CLONES = 32


class _Shared:
    """State every clone of a client shares: rate limits, waiters, config, the clones."""

    def __init__(self, config: CloudConfig):
        self.config = config
        self.limits = ActionRateLimits(config.rate_limits, config.rate_limit_margin)
        self._waiters: dict[tuple[str, str | None], CoalescingWaiter] = {}
        self._lock = threading.Lock()
        # (id, key, token) -> clone, most recently used last. Reusing a clone keeps its
        # per-thread SDK clients and their open HTTP connections across CSI requests.
        self._clones: OrderedDict[tuple[str, str, str | None], CfsClient] = OrderedDict()

    def clone(self, credentials: StaticCredentials) -> CfsClient:
        key = credentials.get_credential_info()
        with self._lock:
            client = self._clones.get(key)
            if client is None:
                client = CfsClient(self.config, _shared=self, _credentials=credentials)
                self._clones[key] = client
                if len(self._clones) > MAX_CACHED_CLONES:
                    self._clones.popitem(last=False)
            self._clones.move_to_end(key)
            return client

    def waiter(self, kind: ResourceKind, account: str | None) -> CoalescingWaiter:
        """One waiter per resource kind and account (a poll only sees one account's resources)."""
        with self._lock:
            key = (kind.name, account)
            if key not in self._waiters:
                gap = self.config.poll_min_gap
                assert gap is not None  # CloudConfig fills in its default
                self._waiters[key] = CoalescingWaiter(
                    kind, self.config.poll_min_interval, self.config.poll_max_interval, gap
                )
            return self._waiters[key]


class CfsClient:
    """Thread-safe CFS API client; share one per process (clones share its limits/waiters)."""

    def __init__(
        self,
        config: CloudConfig,
        *,
        _shared: _Shared | None = None,
        _credentials: StaticCredentials | FileCredentials | None = None,
    ) -> None:
        self._config = config
        self._shared = _shared or _Shared(config)
        self._credentials = _credentials or config.credential_provider()
        self._local = threading.local()  # one SDK client (HTTP session) per thread
        self._deadline: float | None = None  # time.monotonic() bound of every call (until())
        self._backoff = Backoff(config.retry_base_delay, config.retry_max_delay)
        install_sdk_log_redactor()

    def __repr__(self) -> str:
        return (
            f"CfsClient(endpoint={self._config.endpoint!r}, region={self._config.region!r}, "
            f"credentials={self._credentials!r})"
        )

    @property
    def config(self) -> CloudConfig:
        return self._config

    def with_credentials(
        self, secret_id: str, secret_key: str, session_token: str | None = None
    ) -> CfsClient:
        """A client using these credentials (e.g. CSI request secrets) that shares this
        client's rate limiters and waiters; the same credentials give the same client."""
        return self._shared.clone(StaticCredentials(secret_id, secret_key, session_token))

    def until(self, deadline: float | None) -> CfsClient:
        """This client with every call (helpers and page loops included) bounded by
        `deadline`, a time.monotonic() value such as the end of a gRPC call. It shares
        everything else with this client, HTTP sessions included."""
        if deadline is None:
            return self
        bounded = copy.copy(self)
        bounded._deadline = deadline if self._deadline is None else min(deadline, self._deadline)
        return bounded

    # ---- the one call path -------------------------------------------------------------

    def call(
        self, action: str, params: ApiObject | None = None, *, timeout: float | None = None
    ) -> ApiObject:
        """Call `action` and return the reply's "Response" object (includes "RequestId").

        Raises `CfsError` (a subclass chosen by code) once the retry policy gives up.
        `timeout` is the caller's own deadline in seconds (e.g. what is left of a gRPC
        deadline): no rate-limit wait, attempt or backoff runs past it, each attempt's HTTP
        timeout is cut to the time left, and `CallTimeout` is raised when not even a first
        attempt fits. Without it, retries stop at `retry_deadline`.
        """
        params = params or {}
        started = time.monotonic()
        if self._deadline is not None:
            left = self._deadline - started
            timeout = left if timeout is None else min(timeout, left)
        hard_deadline = None if timeout is None else started + timeout
        if timeout is not None and timeout <= 0:
            raise CallTimeout(f"{action}: the caller's timeout had run out before the call")
        retry_until = started + self._config.retry_deadline
        if hard_deadline is not None:
            retry_until = min(retry_until, hard_deadline)
        attempt = 0
        try:
            while True:
                if self._shared.limits.acquire(action, hard_deadline) is None:
                    raise CallTimeout(
                        f"{action}: no rate-limit slot within the caller's timeout of {timeout:g}s"
                    )
                try:
                    reply = self._send(action, params, self._attempt_timeout(hard_deadline))
                except CfsError as err:
                    metrics.CALLS.labels(action, err.code).inc()
                    if isinstance(err, CfsThrottled):
                        metrics.THROTTLED.labels(action).inc()
                    if not is_retryable(action, err):
                        log.debug("cfs call %s failed: %s", action, err)
                        raise
                    delay = self._backoff.delay(attempt)
                    if time.monotonic() + delay > retry_until:
                        log.warning("cfs call %s gave up after %d attempt(s): %s", action, attempt + 1, err)
                        raise
                    log.debug(
                        "cfs call %s attempt %d: %s; retrying in %.3fs", action, attempt + 1, err, delay
                    )
                    metrics.RETRIES.labels(action).inc()
                    attempt += 1
                    time.sleep(delay)
                    continue
                metrics.CALLS.labels(action, "OK").inc()
                log.debug(
                    "cfs call %s ok (RequestId %s, %d attempt(s))",
                    action,
                    reply.get("RequestId"),
                    attempt + 1,
                )
                return reply
        finally:
            metrics.CALL_SECONDS.labels(action).observe(time.monotonic() - started)

    def _attempt_timeout(self, hard_deadline: float | None) -> float:
        if hard_deadline is None:
            return self._config.request_timeout
        return max(0.001, min(self._config.request_timeout, hard_deadline - time.monotonic()))

    def _sdk(self) -> SdkCfsClient:
        sdk = getattr(self._local, "sdk", None)
        if sdk is None:
            http = HttpProfile(
                endpoint=self._config.host,
                protocol=self._config.scheme,
                reqTimeout=self._config.request_timeout,
            )
            # No SDK retryer: retries are ours, so they go through the rate limiter.
            sdk = SdkCfsClient(self._credentials, self._config.region, ClientProfile(httpProfile=http))
            self._local.sdk = sdk
        return sdk

    def _send(self, action: str, params: ApiObject, timeout: float) -> ApiObject:
        """One signed HTTP request of at most `timeout` seconds. Errors are built outside the
        `except` block so no SDK or requests object (which carries the signed headers) stays
        attached to them."""
        if self._credentials is None:
            raise CfsAuthError(
                "AuthFailure.MissingCredentials",
                "no credentials configured: set TENCENTCLOUD_SECRET_ID and "
                "TENCENTCLOUD_SECRET_KEY or CFS_CREDENTIALS_DIR",
            )
        failure: CfsError | None = None
        sdk = self._sdk()
        # The SDK reads its connection's timeout per request; the client is this thread's own.
        sdk.request.conn.timeout = timeout
        try:
            body = sdk.call_json(action, params)
        except TencentCloudSDKException as exc:
            failure = self._error_from_sdk(exc)
        except (ValueError, KeyError) as exc:  # not JSON, or JSON without "Response"
            failure = CfsNetworkError("ServerNetworkError", f"unreadable reply: {exc!r}")
        if failure is not None:
            raise failure
        response = body.get("Response") if isinstance(body, dict) else None
        if not isinstance(response, dict):
            raise CfsNetworkError("ServerNetworkError", "reply has no Response object")
        if "Error" in response:  # an error the SDK did not recognise
            error = response["Error"]
            raise error_for(
                str(error.get("Code")), self._scrub(str(error.get("Message", ""))), response.get("RequestId")
            )
        return response

    def _error_from_sdk(self, exc: TencentCloudSDKException) -> CfsError:
        code = exc.code or "ClientError"
        message = exc.message
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        err = error_for(code, self._scrub(str(message or "")), exc.requestId)
        if isinstance(err, CfsNetworkError):
            err.maybe_sent = not _never_sent(exc)
        return err

    def _scrub(self, text: str) -> str:
        if self._credentials is None:
            return scrub(text, ())
        try:
            _, key, token = self._credentials.get_credential_info()
        except CfsError:
            return scrub(text, ())
        return scrub(text, (key, token))

    # ---- pagination and lookups --------------------------------------------------------

    def paginate(
        self, action: str, items_key: str, *, timeout: float | None = None, **params: Any
    ) -> Iterator[ApiObject]:
        """Every item of a list action with Offset/Limit (e.g. DescribeCfsPGroups,
        "PGroupList"), page by page until TotalCount items were seen (without a TotalCount:
        until a short page). A server that caps Limit below ours is still paged to the end.
        `timeout` bounds all the page calls together (see `call`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        offset = int(params.pop("Offset", 0))
        limit = int(params.pop("Limit", PAGE_SIZE))
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            reply = self.call(action, {**params, "Offset": offset, "Limit": limit}, timeout=left)
            page = reply.get(items_key) or []
            yield from page
            offset += len(page)
            total = reply.get("TotalCount")
            if not page or (offset >= total if total is not None else len(page) < limit):
                return

    def find_item(self, action: str, items_key: str, key: str, value: str, **params: Any) -> ApiObject | None:
        """The item of list `action` (all pages, filtered by `params`) whose `key` is `value`;
        None when absent. The match is checked here because a server filter may match loosely
        or be ignored, and a filtered Describe may answer ResourceNotFound, not an empty list."""
        try:
            return next(
                (item for item in self.paginate(action, items_key, **params) if item.get(key) == value), None
            )
        except CfsNotFound:
            return None

    def iter_file_systems(self, **params: Any) -> Iterator[ApiObject]:
        """FileSystemInfo dicts of DescribeCfsFileSystems, all pages (`timeout` as in
        `paginate`)."""
        return self.paginate("DescribeCfsFileSystems", "FileSystems", **params)

    def find_file_system_by_name(self, fs_name: str, *, timeout: float | None = None) -> ApiObject | None:
        """The file system whose FsName (or CreationToken) is `fs_name`, if any.

        Filters server-side by CreationToken (the docs' "用户自定义名称") and checks the name
        again here, so a server that ignores the filter still gives the right answer."""
        for info in self.iter_file_systems(CreationToken=fs_name, timeout=timeout):
            if fs_name in (info.get("FsName"), info.get("CreationToken")):
                return info
        return None

    def mount_targets(self, fs_id: str, *, timeout: float | None = None) -> list[ApiObject]:
        reply = self.call("DescribeMountTargets", {"FileSystemId": fs_id}, timeout=timeout)
        return reply.get("MountTargets") or []

    def iter_snapshots(self, **params: Any) -> Iterator[ApiObject]:
        """SnapshotInfo dicts of DescribeCfsSnapshots, all pages (`timeout` as in
        `paginate`)."""
        return self.paginate("DescribeCfsSnapshots", "Snapshots", **params)

    def find_snapshot_by_name(
        self, name: str, file_system_id: str | None = None, *, timeout: float | None = None
    ) -> ApiObject | None:
        params = {"FileSystemId": file_system_id} if file_system_id else {}
        return self.find_item(
            "DescribeCfsSnapshots", "Snapshots", "SnapshotName", name, timeout=timeout, **params
        )

    # ---- waiters -----------------------------------------------------------------------

    def _account(self) -> str | None:
        return getattr(self._credentials, "secret_id", None)

    def wait_file_system_available(self, fs_id: str, timeout: float = 300.0) -> ApiObject:
        """FileSystemInfo once `available`; raises FileSystemCreateFailed, CfsNotFound or
        WaitTimeout. Concurrent waiters share one DescribeCfsFileSystems per interval."""
        return self._shared.waiter(FILE_SYSTEMS, self._account()).wait(self, fs_id, self._wait_bound(timeout))

    def wait_snapshot_available(self, snapshot_id: str, timeout: float = 300.0) -> ApiObject:
        """SnapshotInfo once `available`; raises SnapshotCreateFailed, CfsNotFound or
        WaitTimeout. Concurrent waiters share one DescribeCfsSnapshots per interval."""
        return self._shared.waiter(SNAPSHOTS, self._account()).wait(
            self, snapshot_id, self._wait_bound(timeout)
        )

    def _wait_bound(self, timeout: float) -> float:
        """A wait ends by its own timeout and by this client's deadline (until()), whichever
        comes first: between polls led by other waiters no call of ours would notice it."""
        if self._deadline is None:
            return timeout
        return max(0.0, min(timeout, self._deadline - time.monotonic()))


FILE_SYSTEMS = ResourceKind(
    name="file system",
    id_key="FileSystemId",
    state_key="LifeCycleState",
    done_state="available",
    failed_states=frozenset({"create_failed"}),
    not_found_code="ResourceNotFound.FileSystemNotFound",
    failure=FileSystemCreateFailed,
    list_items=CfsClient.iter_file_systems,
)
SNAPSHOTS = ResourceKind(
    name="snapshot",
    id_key="SnapshotId",
    state_key="Status",
    done_state="available",
    # SnapshotInfo.Status documents "create-failed"; accept the file-system spelling too.
    failed_states=frozenset({"create-failed", "create_failed", "failed"}),
    not_found_code="ResourceNotFound.SnapNotExist",
    failure=SnapshotCreateFailed,
    list_items=CfsClient.iter_snapshots,
)
