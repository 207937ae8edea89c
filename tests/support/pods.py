"""Run a rendered pod template as host processes, the way a kubelet would run its containers.

There is no container runtime on these machines, so each container of the chart's Deployment
becomes a process started with exactly the container's args and env, with:
- the image replaced by the local program it packages (`Programs`: our console scripts, the
  unpacked sidecar binaries);
- volumes made as local directories (emptyDir; secret and configMap read from the API server
  with their key files and defaultMode), and every mountPath in args and env values rewritten
  to its local directory;
- containerPorts mapped to free loopback ports in args (the pods share the host's network);
- the pod's ServiceAccount token from the TokenRequest API, its ca.crt and namespace at the
  standard in-cluster path, with KUBERNETES_SERVICE_HOST/PORT set, so every client logs in as
  the chart's ServiceAccount and RBAC is checked for real;
- its own mount and UTS namespaces (unshare): the hostname is the pod name (the sidecars' leader
  election identity) and /run is private to the pod (where the token is mounted).
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.control_plane import ControlPlane
from tests.support.local import free_port, stop_process

SERVICE_ACCOUNT_DIR = "/run/secrets/kubernetes.io/serviceaccount"
# In the pod's private mount namespace: hide the host's /run, then mount the token where
# client-go, kopf and the kubelet's projected volume put it.
POD_SHELL = (
    'hostname "$POD_NAME" && mount -t tmpfs -o size=1m,mode=0755 pod-run /run'
    f' && mkdir -p {SERVICE_ACCOUNT_DIR} && mount --bind "$POD_SA_DIR" {SERVICE_ACCOUNT_DIR}'
    ' && unset POD_SA_DIR && exec "$@"'
)
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Programs:
    """Image repository (without tag) -> the local argv its entrypoint stands for."""

    by_repository: dict[str, list[str]]

    @classmethod
    def for_lane(cls, kube_bin: Path) -> Programs:
        ours = {
            "ghcr.io/cfs-csi/cfs-csi-driver": [str(VENV_BIN / "cfs-csi-driver")],
            "ghcr.io/cfs-csi/cfs-operator": [str(VENV_BIN / "cfs-operator")],
            "ghcr.io/cfs-csi/cfs-reference": [str(VENV_BIN / "cfs-reference")],
        }
        sidecars = {
            f"registry.k8s.io/sig-storage/{name}": [str(kube_bin / name)]
            for name in ("csi-provisioner", "csi-resizer", "csi-snapshotter", "livenessprobe",
                         "csi-node-driver-registrar")
        }  # fmt: skip
        return cls({**ours, **sidecars})

    def argv(self, container: dict[str, Any]) -> list[str]:
        repository = re.split(r"[@]|:(?=[^/]*$)", container["image"])[0]
        assert repository in self.by_repository, f"no local program for image {container['image']}"
        entrypoint = self.by_repository[repository]
        assert "command" not in container, f"container {container['name']} overrides the entrypoint"
        return [*entrypoint, *container.get("args", [])]


@dataclass
class RunningPod:
    name: str
    directory: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)  # containerPort -> host port

    def log(self, container: str) -> str:
        path = self.directory / f"{container}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)[-tail:]}" for name in self.processes)

    def exited(self) -> dict[str, int]:
        return {name: code for name, p in self.processes.items() if (code := p.poll()) is not None}

    def kill(self) -> None:
        """SIGKILL every container, as a node that dies does."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
        for process in self.processes.values():
            process.wait(30)

    def stop(self) -> None:
        for process in self.processes.values():  # all at once, as the kubelet does
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            stop_process(process, 30)


def run_pod(
    stack: ExitStack,
    plane: ControlPlane,
    workload: dict[str, Any],
    pod_name: str,
    work: Path,
    programs: Programs,
    node_name: str = "node-a",
    extra_env: dict[str, str] | None = None,
) -> RunningPod:
    """Start every container of `workload`'s pod template; stopped when `stack` closes."""
    namespace = workload["metadata"]["namespace"]
    spec = workload["spec"]["template"]["spec"]
    assert not spec.get("initContainers"), "init containers are not run here"
    pod = RunningPod(pod_name, work / pod_name)
    pod.directory.mkdir(parents=True)
    sa_dir = _service_account_dir(plane, namespace, spec["serviceAccountName"], pod.directory / "sa")
    volumes = {
        v["name"]: _volume(plane, namespace, v, pod.directory / "volumes") for v in spec.get("volumes", [])
    }
    for container in spec["containers"]:
        for port in container.get("ports", []):
            pod.ports.setdefault(port["containerPort"], free_port())
    fields = {"metadata.name": pod_name, "metadata.namespace": namespace, "spec.nodeName": node_name,
              "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}  # fmt: skip
    stack.callback(pod.stop)
    for container in spec["containers"]:
        local = _localizer(container, volumes, pod.ports)
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(pod.directory),
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": plane.url.rsplit(":", 1)[1],
            **{e["name"]: local(_env_value(plane, namespace, e, fields)) for e in container.get("env", [])},
            **(extra_env or {}),
            "POD_NAME": pod_name,
            "POD_SA_DIR": str(sa_dir),
        }
        argv = [local(arg) for arg in programs.argv(container)]
        wrapped = ["unshare", "--mount", "--uts", "--propagation", "private", "--", "sh", "-c", POD_SHELL,
                   container["name"], *argv]  # fmt: skip
        with open(pod.directory / f"{container['name']}.log", "wb") as out:
            pod.processes[container["name"]] = subprocess.Popen(
                wrapped, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
    return pod


def _localizer(
    container: dict[str, Any], volumes: dict[str, Path], ports: dict[int, int]
) -> Callable[[str], str]:
    """Rewrites the container's mount paths (at path boundaries, in one pass) to their volumes'
    local directories, and `=PORT`/`:PORT` to the host ports, in a value."""
    mounts = {
        mount["mountPath"]: volumes[mount["name"]] / mount.get("subPath", "")
        for mount in container.get("volumeMounts", [])
    }
    by_length = sorted(mounts, key=len, reverse=True)
    paths = re.compile(rf"(?<![\w.-])({'|'.join(map(re.escape, by_length))})(?=/|$)") if mounts else None

    def local(value: str) -> str:
        if paths:
            value = paths.sub(lambda match: str(mounts[match[1]]), value)
        for container_port, host_port in ports.items():
            value = re.sub(rf"(?<=[=:]){container_port}(?=$|/)", str(host_port), value)
        return value

    return local


def _service_account_dir(plane: ControlPlane, namespace: str, account: str, directory: Path) -> Path:
    token = plane.kubectl("create", "token", account, "-n", namespace, "--duration=2h").stdout.strip()
    directory.mkdir()
    (directory / "token").write_text(token)
    (directory / "ca.crt").write_bytes(plane.ca_file.read_bytes())
    (directory / "namespace").write_text(namespace)
    return directory


def _volume(plane: ControlPlane, namespace: str, volume: dict[str, Any], root: Path) -> Path:
    directory = root / volume["name"]
    directory.mkdir(parents=True)
    if "emptyDir" in volume:
        return directory
    for kind in ("secret", "configMap"):
        if source := volume.get(kind):
            name = source["secretName"] if kind == "secret" else source["name"]
            data = plane.get(kind.lower(), name, "-n", namespace).get("data", {})
            for key, value in data.items():
                path = directory / key
                path.write_bytes(base64.b64decode(value) if kind == "secret" else value.encode())
                path.chmod(source.get("defaultMode", 0o644))
            return directory
    raise AssertionError(f"volume {volume['name']}: only emptyDir, secret and configMap are run here")


def _env_value(plane: ControlPlane, namespace: str, env: dict[str, Any], fields: dict[str, str]) -> str:
    if "value" in env:
        return str(env["value"])
    source = env["valueFrom"]
    if "fieldRef" in source:
        return fields[source["fieldRef"]["fieldPath"]]
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        secret = plane.get("secret", ref["name"], "-n", namespace)
        return base64.b64decode(secret["data"][ref["key"]]).decode()
    raise AssertionError(f"env {env['name']}: unsupported valueFrom {source}")
