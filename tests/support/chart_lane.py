"""The chart installed on a real control plane, its controller and operator pods run as host
processes (tests/support/pods.py) against a reference CFS service.

`install()` renders the chart with the project's renderer (scripts/render_manifests.py) and
applies every object it renders (the CRDs first); the Deployments and DaemonSet are stored but no
kubelet runs them. Nodes and their CSINode objects (normally the kubelet's and the node plugin's
registrar's work) are created for fake nodes with the driver's topology key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from cfs_csi.contract import TOPOLOGY_ZONE_KEY
from tests.support.control_plane import ControlPlane
from tests.support.local import eventually
from tests.support.pods import Programs, RunningPod, run_pod
from tests.support.renderer import render

REPO = Path(__file__).resolve().parents[2]
DRIVER = "cfs.csi.tencentcloud.com"
ZONE = "ap-shanghai-fsi-1"
WAIT_SECONDS = 90.0
T = TypeVar("T")


def lane_values(reference, fast_retries: bool = True, **overrides: Any) -> dict[str, Any]:
    """Chart values pointing the release at `reference`; `overrides` merge on top (one level).
    `fast_retries` shortens the controller's timeouts and retry backoff so the scenarios' failures
    and failovers show within seconds; benchmarks keep the chart's own."""
    values: dict[str, Any] = {
        "cloud": {"endpoint": reference.url, "region": reference.region, "zone": ZONE},
        "credentials": {"secretId": reference.secret_id, "secretKey": reference.secret_key},
        "controller": {"replicas": 2},
        "operator": {"driftInterval": 2},
        # The lane serves snapshot.storage.k8s.io/v1 (tests/support/control_plane.py); offline
        # rendering cannot ask, so say so.
        "volumeSnapshotClass": {"enabled": True},
    }
    if fast_retries:
        values["controller"].update(createTimeout=20, provisionerTimeout="30s", retryIntervalStart="1s",
                                    retryIntervalMax="5s")  # fmt: skip
    for key, value in overrides.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return values


def claim(
    name: str, storage_class: str, size: str = "1Gi", labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    """A ReadWriteMany PersistentVolumeClaim in namespace default; `spec` adds fields."""
    return {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": storage_class,
                 "resources": {"requests": {"storage": size}}, **spec},
    }  # fmt: skip


def apply(plane: ControlPlane, objects: list[dict[str, Any]]) -> None:
    plane.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(objects))


def workload(objects: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    return next(
        o for o in objects
        if o["kind"] == kind and o["metadata"]["labels"].get("app.kubernetes.io/component") == component
    )  # fmt: skip


@dataclass
class Lane:
    plane: ControlPlane
    reference: Any
    objects: list[dict[str, Any]]
    work: Path
    stack: ExitStack
    programs: Programs
    pods: dict[str, RunningPod] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return render.RELEASE_NAMESPACE

    def start_pod(self, component: str, name: str) -> RunningPod:
        pod = run_pod(self.stack, self.plane, workload(self.objects, "Deployment", component), name,
                      self.work, self.programs)  # fmt: skip
        self.pods[name] = pod
        return pod

    def logs(self) -> str:
        return "\n".join(f"===== pod {name}\n{pod.logs()}" for name, pod in self.pods.items())

    def get(self, *args: str) -> dict[str, Any]:
        return self.plane.get(*args)

    def events(self, kind: str, name: str, namespace: str = "default") -> list[dict[str, Any]]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        return self.plane.get("events", "-n", namespace, "--field-selector", selector)["items"]

    def wait_for(self, check: Callable[[], T | None], what: str, timeout: float = WAIT_SECONDS) -> T:
        return eventually(check, lambda: f"{what}\n{self.logs()}", timeout, interval=0.2)

    def phase(self, kind: str, name: str, namespace: str = "default") -> str | None:
        found = self.plane.find(kind, name, *(["-n", namespace] if namespace else []))
        return found.get("status", {}).get("phase") if found else None


def install(plane: ControlPlane, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Apply the chart's CRDs and every rendered object; returns the rendered objects."""
    plane.kubectl("apply", "--server-side", "-f", str(render.CHART_DIR / "crds"))
    plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    objects = render.render_objects(values)
    apply(plane, objects)
    return objects


def add_nodes(plane: ControlPlane, names: list[str], zone: str = ZONE) -> None:
    """Node objects labelled with the zone, and the CSINode each node plugin's registrar would
    have made (the provisioner reads the topology keys from it)."""
    objects: list[dict[str, Any]] = []
    for name in names:
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", TOPOLOGY_ZONE_KEY: zone}
        objects.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}})
        objects.append({
            "apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "metadata": {"name": name},
            "spec": {"drivers": [{"name": DRIVER, "nodeID": name, "topologyKeys": [TOPOLOGY_ZONE_KEY]}]},
        })  # fmt: skip
    apply(plane, objects)


__all__ = ["Lane", "add_nodes", "apply", "claim", "running_lane", "install", "lane_values", "workload"]


@contextmanager
def running_lane(
    plane: ControlPlane,
    reference: Any,
    values: dict[str, Any],
    work: Path,
    nodes: list[str],
    pods: dict[str, str],
) -> Iterator[Lane]:
    """The chart installed with `values`, Node objects for `nodes`, and the pods named in `pods`
    (pod name -> the chart component whose Deployment it runs); all stopped on exit."""
    objects = install(plane, values)
    add_nodes(plane, nodes)
    with ExitStack() as stack:
        lane = Lane(plane, reference, objects, work, stack, Programs.for_lane(plane.binaries))
        for name, component in pods.items():
            lane.start_pod(component, name)
        yield lane
