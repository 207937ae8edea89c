"""A throwaway Kubernetes control plane on loopback: Debian's etcd, the real kube-apiserver and,
on request, kube-controller-manager (PV binder, garbage collector) and the snapshot CRDs with
snapshot-controller, as a cluster's operator would have installed them.

The binaries come from `$CFS_KUBE_BIN`, else `../shared/k8s` (unpacked once into the ignored
`.cache/k8s` of this checkout), else PATH. `missing()` names what is absent in one line. The
API server serves TLS (a throwaway self-signed certificate), checks RBAC and signs
service-account tokens; the admin logs in with a static token of group system:masters.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.local import free_port, stop_process

REPO = Path(__file__).resolve().parents[2]
SHARED_K8S = REPO.parent / "shared" / "k8s"
SNAPSHOT_CRDS = SHARED_K8S / "crds"
UNPACKED = REPO / ".cache" / "k8s"
ADMIN_TOKEN = "cfs-csi-test-admin"
READY_TIMEOUT = 120.0


def kube_bin() -> Path | None:
    """The directory holding kube-apiserver and kubectl, unpacking ../shared/k8s when needed."""
    if given := os.environ.get("CFS_KUBE_BIN"):
        return Path(given)
    if (SHARED_K8S / "unpack").exists():
        done = subprocess.run([str(SHARED_K8S / "unpack"), str(UNPACKED)], capture_output=True, text=True)
        if done.returncode == 0:
            return Path(done.stdout.strip())
    found = shutil.which("kube-apiserver")
    return Path(found).parent if found else None


def missing() -> str | None:
    """One line naming what is absent, or None. Cheap (test collection calls it in every
    worker): it looks for the binaries' sources and unpacks nothing."""
    absent = [name for name in ("etcd", "openssl", "xz") if shutil.which(name) is None]
    sources = (
        os.environ.get("CFS_KUBE_BIN"),
        (SHARED_K8S / "unpack").exists(),
        shutil.which("kube-apiserver"),
    )
    if not any(sources):
        absent.append("kube-apiserver and kubectl ($CFS_KUBE_BIN, ../shared/k8s or PATH)")
    return (
        f"the cluster lane needs {', '.join(absent)} (Debian: etcd-server openssl xz-utils)"
        if absent
        else None
    )


@dataclass
class ControlPlane:
    url: str
    kubeconfig: Path
    kubectl_binary: Path
    binaries: Path
    ca_file: Path

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(self.kubectl_binary), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert not check or done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr.strip()}"
        return done

    def get(self, *args: str) -> dict[str, Any]:
        found = self.find(*args)
        assert found is not None, f"kubectl get {' '.join(args)}: not found"
        return found

    def find(self, *args: str) -> dict[str, Any] | None:
        """`kubectl get ARGS` as JSON, or None when the object does not exist."""
        done = self.kubectl("get", *args, "-o", "json", check=False)
        if done.returncode == 0:
            result: dict[str, Any] = json.loads(done.stdout)
            return result
        assert "NotFound" in done.stderr, f"kubectl get {' '.join(args)}: {done.stderr.strip()}"
        return None

    @functools.cached_property
    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One API call as the admin, without kubectl's start-up and discovery (benchmarks)."""
        request = urllib.request.Request(
            self.url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, context=self._tls, timeout=30) as reply:
            result: dict[str, Any] = json.loads(reply.read())
            return result


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@contextmanager
def running_control_plane(work: Path, controllers: bool = False) -> Iterator[ControlPlane]:
    binaries = kube_bin()  # unpacks ../shared/k8s on first use
    assert binaries is not None and (binaries / "kube-apiserver").exists(), "no kube-apiserver to run"
    work.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(work / "serving.key"),
             "-out", str(work / "serving.crt"))  # fmt: skip
    _openssl("genrsa", "-out", str(work / "sa.key"), "2048")
    _openssl("rsa", "-in", str(work / "sa.key"), "-pubout", "-out", str(work / "sa.pub"))
    (work / "tokens.csv").write_text(f"{ADMIN_TOKEN},admin,admin-uid,system:masters\n")
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    with ExitStack() as stack:
        etcd = _start(stack, work / "etcd.log", [
            "etcd", "--data-dir", str(work / "etcd"), "--listen-client-urls", etcd_url,
            "--advertise-client-urls", etcd_url, "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
        ])  # fmt: skip
        apiserver = _start(stack, work / "apiserver.log", [
            str(binaries / "kube-apiserver"), f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1",
            f"--secure-port={api_port}", f"--tls-cert-file={work / 'serving.crt'}",
            f"--tls-private-key-file={work / 'serving.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={work / 'sa.pub'}",
            f"--service-account-signing-key-file={work / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16", f"--token-auth-file={work / 'tokens.csv'}",
            "--authorization-mode=RBAC", "--endpoint-reconciler-type=none", "--allow-privileged=true",
        ])  # fmt: skip
        url = f"https://127.0.0.1:{api_port}"
        kubeconfig = work / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": url,
                                                      "certificate-authority": str(work / "serving.crt")}}],
            "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin",
                                                      "namespace": "default"}}],
        }))  # fmt: skip
        plane = ControlPlane(url, kubeconfig, binaries / "kubectl", binaries, work / "serving.crt")
        deadline = time.monotonic() + READY_TIMEOUT
        while plane.kubectl("get", "--raw", "/readyz", check=False).stdout.strip() != "ok":
            for process, log in ((etcd, "etcd.log"), (apiserver, "apiserver.log")):
                assert process.poll() is None, (work / log).read_text()[-3000:]
            assert time.monotonic() < deadline, (work / "apiserver.log").read_text()[-3000:]
            time.sleep(0.5)
        if controllers:
            _start(stack, work / "controller-manager.log", [
                str(binaries / "kube-controller-manager"), f"--kubeconfig={kubeconfig}",
                "--leader-elect=false", "--secure-port=0", "--controllers=*",
                # Above the default 20/s: the PV binder makes ~4 writes per claim, and the lane
                # measures the driver, not a control plane throttled for big clusters.
                "--kube-api-qps=200", "--kube-api-burst=400",
                f"--service-account-private-key-file={work / 'sa.key'}",
                f"--root-ca-file={work / 'serving.crt'}",
            ])  # fmt: skip
            plane.kubectl("apply", "--server-side", "-f", str(SNAPSHOT_CRDS))
            plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
            _start(stack, work / "snapshot-controller.log", [
                str(binaries / "snapshot-controller"), f"--kubeconfig={kubeconfig}",
                "--leader-election=false",
            ])  # fmt: skip
        yield plane


def _start(stack: ExitStack, log: Path, argv: list[str]) -> subprocess.Popen:
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    stack.callback(stop_process, process)
    return process
