"""The operator under test: kopf running for real, in-process, against kmock's Kubernetes API.

kmock (an in-memory Kubernetes API over HTTP on a random port) stands in for a cluster: this
machine has no kube-apiserver. It stores objects and streams watch events, but it validates
nothing against CRD schemas (the schema tests validate with jsonschema instead).

    async with kube_api() as api, running_operator(api, cloud_config, OperatorConfig(...)):
        cluster = Cluster(api)
        await cluster.create(PGROUPS, {"metadata": {"name": "web"}, "spec": {...}})
        obj = await cluster.wait_for(PGROUPS, "web", lambda o: is_ready(o))
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import kmock
import kopf
import pytest
import yaml
from kmock._internal import parsing as kmock_parsing

import cfs_operator
from cfs_cloud import CfsClient, CloudConfig
from cfs_operator.conditions import now_iso
from cfs_operator.config import OperatorConfig
from cfs_operator.handlers import GROUP, PGROUPS, POLICIES, VERSION, operator_settings, register
from cfs_operator.runtime import OperatorRuntime
from tests.support.cloud import cloud_config

CRD_DIR = Path(cfs_operator.__file__).parent / "crds"
REPO = Path(__file__).resolve().parents[2]
# The example custom resources users start from (kubectl apply -f).
EXAMPLES = sorted((REPO / "deploy" / "examples").glob("cfs-*.yaml"))
PGROUP_RESOURCE = f"{GROUP}/{VERSION}/{PGROUPS}"
POLICY_RESOURCE = f"{GROUP}/{VERSION}/{POLICIES}"
PVC_RESOURCE = "v1/persistentvolumeclaims"
PV_RESOURCE = "v1/persistentvolumes"
NAMESPACE_RESOURCE = "v1/namespaces"
EVENT_RESOURCE = "v1/events"
VERBS = {"create", "delete", "get", "list", "patch", "update", "watch"}
WAIT_TIMEOUT = 20.0


def load_crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(CRD_DIR.glob("*.yaml"))]


def crd_schemas() -> dict[str, dict[str, Any]]:
    """kind -> openAPIV3Schema of the served version."""
    return {
        crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for crd in load_crds()
    }


def schema_nodes(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(path, node) for a schema node and every node below it (properties, items, map values)."""
    found = [(path, node)]
    for key, child in (node.get("properties") or {}).items():
        found += schema_nodes(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        found += schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += schema_nodes(node["additionalProperties"], f"{path}{{}}")
    return found


def _parse_path_with_namespaces(original: Callable[[str], Any]) -> Callable[[str], Any]:
    """kmock 0.8 reads /api/v1/namespaces[/NAME] as "inside namespace NAME" and fails on the list.

    The operator watches Namespaces (claim selectors match namespace labels), so the harness
    fixes exactly that path shape and leaves every other path to kmock.
    """

    def parse_path(path: str) -> Any:
        parts = path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
            name = parts[3] if len(parts) > 3 else None
            return kmock_parsing.ParsedPath("", "v1", "namespaces", None, name, None)
        return original(path)

    parse_path.fixes_namespaces = True  # type: ignore[attr-defined]
    return parse_path


def register_resources(server: kmock.KubernetesEmulator) -> None:
    """Built-in resources plus every CRD of the operator, as API discovery will report them."""
    if not getattr(kmock_parsing.parse_path, "fixes_namespaces", False):
        kmock_parsing.parse_path = _parse_path_with_namespaces(kmock_parsing.parse_path)
    with warnings.catch_warnings():  # kmock 0.8 reads its bundle with a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        server.resources.load_bundled()
    for crd in load_crds():
        names = crd["spec"]["names"]
        for version in crd["spec"]["versions"]:
            server.resources[f"{crd['spec']['group']}/{version['name']}/{names['plural']}"] = (
                kmock.ResourceInfo(
                    kind=names["kind"],
                    singular=names.get("singular"),
                    namespaced=crd["spec"]["scope"] == "Namespaced",
                    verbs=VERBS,
                    shortnames=set(names.get("shortNames", ())),
                    categories=set(names.get("categories", ())),
                    subresources={"status"} if "status" in version.get("subresources", {}) else set(),
                )
            )


@attrs.define(kw_only=True)
class VersionedEmulator(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator, plus what an API server does on writes and kmock 0.8 does not.

    A bounded request log (below). A new metadata.resourceVersion on every write: kopf tells its own
    just-patched state from stale watch events by it. A uid and creationTimestamp on create: kopf
    keeps per-object memory (timers, memo) by uid. A name for objects created with generateName
    (kopf's Events), which kmock would otherwise store all under one empty name.
    """

    _versions: Iterator[int] = attrs.field(factory=lambda: itertools.count(1), init=False)

    async def _handle(self, request: Any) -> Any:
        # kmock matches each request against its whole request history (O(n) per request); the
        # tests assert on stored objects, never on that history, so only the current one is kept.
        del self._requests[:-1]
        writes = (kmock.action.CREATE, kmock.action.UPDATE)
        if request.resource is not None and request.action in writes and isinstance(request.data, dict):
            metadata = request.data.setdefault("metadata", {})
            version = next(self._versions)
            metadata["resourceVersion"] = str(version)
            if request.action == kmock.action.CREATE:
                metadata.setdefault("uid", str(uuid.uuid4()))
                metadata.setdefault("creationTimestamp", now_iso())
                if not metadata.get("name") and metadata.get("generateName"):
                    metadata["name"] = f"{metadata['generateName']}{version}"
        return await super()._handle(request)


@contextlib.asynccontextmanager
async def kube_api() -> AsyncIterator[VersionedEmulator]:
    """An in-memory Kubernetes API on a random loopback port, knowing the operator's CRDs."""
    async with VersionedEmulator() as emulator, kmock.Server(emulator):
        register_resources(emulator)
        yield emulator


@pytest.fixture
async def kube() -> AsyncIterator[VersionedEmulator]:
    """Fixture: the in-memory Kubernetes API for one test."""
    async with kube_api() as api:
        yield api


@pytest.fixture
def cluster(kube: VersionedEmulator) -> Cluster:
    """Fixture: kubectl-like access to `kube`."""
    return Cluster(kube)


def _path(resource: str, namespace: str | None, name: str | None = None) -> str:
    group_version, plural = resource.rsplit("/", 1)
    root = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{root}{scope}/{plural}" + (f"/{name}" if name else "")


class Cluster:
    """What a test does with kubectl: create, patch, delete, read objects; wait for a state."""

    def __init__(self, server: kmock.KubernetesEmulator):
        self.server = server

    async def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        async with self.server.request(
            method, path, json=body, headers={"Content-Type": content_type}
        ) as reply:
            payload = await reply.json()
            if reply.status >= 400:
                raise AssertionError(f"{method} {path}: HTTP {reply.status}: {payload.get('message')}")
            return payload

    async def create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        namespace = body["metadata"].get("namespace")
        return await self._send("POST", _path(resource, namespace), body)

    async def patch(
        self, resource: str, name: str, patch: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        return await self._send(
            "PATCH", _path(resource, namespace, name), patch, "application/merge-patch+json"
        )

    async def delete(self, resource: str, name: str, namespace: str | None = None) -> None:
        await self._send("DELETE", _path(resource, namespace, name))

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        for obj in objects_of(self.server, resource):
            if obj["metadata"].get("name") == name and obj["metadata"].get("namespace") == namespace:
                return obj
        return None

    def events(self, name: str) -> list[dict[str, Any]]:
        """Events posted about the object called `name` (reason and message are what we check)."""
        return [
            event
            for event in objects_of(self.server, EVENT_RESOURCE)
            if event.get("involvedObject", {}).get("name") == name
        ]

    def event_reasons(self, name: str) -> list[str]:
        return [event.get("reason") for event in self.events(name)]

    async def wait_for_events(
        self, name: str, *reasons: str, timeout: float = WAIT_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Events are posted in the background: wait until each reason was posted about `name`."""
        deadline = time.monotonic() + timeout
        while not set(reasons) <= set(self.event_reasons(name)):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"events {reasons} about {name} not posted in {timeout}s; got {self.event_reasons(name)}"
                )
            await asyncio.sleep(0.05)
        return self.events(name)

    async def wait_for(
        self,
        resource: str,
        name: str,
        predicate: Callable[[dict[str, Any] | None], bool],
        timeout: float = WAIT_TIMEOUT,
        namespace: str | None = None,
    ) -> dict[str, Any] | None:
        """Poll the stored object until `predicate(obj)` holds (obj is None once deleted)."""
        deadline = time.monotonic() + timeout
        while True:
            obj = self.get(resource, name, namespace)
            if predicate(obj):
                return obj
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{resource} {name}: condition not reached in {timeout}s; last state: {obj}"
                )
            await asyncio.sleep(0.05)


def condition(obj: dict[str, Any] | None, condition_type: str) -> dict[str, Any] | None:
    for item in ((obj or {}).get("status") or {}).get("conditions") or ():
        if item.get("type") == condition_type:
            return item
    return None


def condition_is(
    obj: dict[str, Any] | None, condition_type: str, status: str, reason: str | None = None
) -> bool:
    item = condition(obj, condition_type)
    return item is not None and item["status"] == status and (reason is None or item.get("reason") == reason)


def fast_settings() -> kopf.OperatorSettings:
    settings = operator_settings()
    # Quick reconnects and short idle workers keep a test's operator responsive and its shutdown fast.
    settings.watching.reconnect_backoff = 0.1
    settings.queueing.idle_timeout = 1.0
    settings.queueing.exit_timeout = 1.0
    settings.posting.default_backoffs = (0.1, 0.2)
    return settings


@contextlib.asynccontextmanager
async def running_operator(
    server: kmock.KubernetesEmulator, cloud_config: CloudConfig, config: OperatorConfig
) -> AsyncIterator[OperatorRuntime]:
    """kopf's real operator loop in this event loop, logged in to kmock, until the block ends."""
    registry = kopf.OperatorRegistry()
    register(registry, config)

    @kopf.on.login(registry=registry)
    def login_to_kmock(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=str(server.url).rstrip("/"), default_namespace="default")

    runtime = OperatorRuntime(config, CfsClient(cloud_config))
    ready = asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            registry=registry,
            settings=fast_settings(),
            clusterwide=True,
            standalone=True,
            memo=kopf.Memo(runtime=runtime),
            ready_flag=ready,
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), WAIT_TIMEOUT)
        yield runtime
    finally:
        # Cancelled rather than stop-flagged: kopf then also cancels the tasks it cannot tell from
        # its own (kmock's never-ending watch responses) instead of giving them 5 s to finish.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT_TIMEOUT)
        runtime.close()


def objects_of(server: kmock.KubernetesEmulator, resource: str) -> Iterator[dict[str, Any]]:
    wanted = kmock.resource(resource)
    for (res, _, _), obj in list(server.objects.items()):
        if res == wanted and not obj.deleted:
            yield copy.deepcopy(dict(obj.raw))


def fast_cloud_config(reference: Any, **overrides: Any) -> CloudConfig:
    """A client config for the reference service that gives up on throttling quickly, so the
    operator's own retry path (TemporaryError, conditions) is what a test observes."""
    return cloud_config(reference, **{"retry_deadline": 0.3, "retry_max_delay": 0.1, **overrides})


def fast_config(**overrides: Any) -> OperatorConfig:
    """Short retries; timers effectively off unless a test asks for them (they add calls)."""
    values = {
        "drift_interval": 3600.0,
        "selection_interval": 3600.0,
        "retry_delay": 0.1,
        "max_retry_delay": 0.5,
        "slow_retry_delay": 0.3,
        "workers": 8,
    }
    values.update(overrides)
    return OperatorConfig(**values)


def make_file_system(client: CfsClient, region: str, name: str, pgroup_id: str = "pgroupbasic") -> str:
    """A real (reference) file system to bind policies to or to keep a permission group in use."""
    fs_id = client.call(
        "CreateCfsFileSystem",
        {
            "Zone": f"{region}-1",
            "NetInterface": "VPC",
            "PGroupId": pgroup_id,
            "Protocol": "NFS",
            "StorageType": "SD",
            "VpcId": "vpc-test",
            "SubnetId": "subnet-test",
            "FsName": name,
        },
    )["FileSystemId"]
    client.wait_file_system_available(fs_id, timeout=WAIT_TIMEOUT)
    return fs_id


def calls_by_action(reference: Any, writes_only: bool = True) -> dict[str, int]:
    """Cloud calls per action since the last reset (by default only those that change something)."""
    counts = {action: len(entry["calls"]) for action, entry in reference.admin.calls().items()}
    return {
        action: n for action, n in counts.items() if n and not (writes_only and action.startswith("Describe"))
    }
