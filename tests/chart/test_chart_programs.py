"""The chart starts our three programs with arguments and environment their own parsers accept,
and the image Dockerfile is pinned, multi-stage, non-root where it can be, and its entrypoints
are the project's console scripts. (No Docker engine here: the Dockerfile is parsed, not built.)
"""

from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import re
import tomllib
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from cfs_csi.config import DriverConfig
from cfs_csi.controller import params
from cfs_csi.controller.params import parse_filesystem, parse_subdir, provisioning_mode
from cfs_operator.main import config_from_args
from cfs_operator.main import parse_args as operator_args
from cfs_reference.main import parse_settings as reference_settings
from cfs_reference.nfs.in_cluster import PortPerMountTarget, parse_port_range
from tests.support.renderer import render

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "images" / "Dockerfile"

ALL_ON = {
    "reference": {"enabled": True},
    "metrics": {"enabled": True},
    "cloud": {"zone": "ap-shanghai-fsi-1"},
    "operator": {"namespaces": ["team-a", "team-b"], "selectionInterval": 2.5, "workers": 8},
    "storageClasses": {"subdir": {"enabled": True, "parameters": {"fileSystemId": "cfs-1a2b3c4d"}}},
}


def _pod_containers(objects):
    for obj in objects:
        if obj["kind"] in ("Deployment", "DaemonSet"):
            for c in obj["spec"]["template"]["spec"]["containers"]:
                yield obj["metadata"]["name"], c


def _environment(container) -> dict[str, str]:
    """The container's environment as the kubelet would build it (secret/field refs -> samples)."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        value = item.get("value")
        if value is None:
            value = "node-1" if "fieldRef" in item["valueFrom"] else f"sample-{item['name'].lower()}"
        env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], value)
    return env


def _expanded_args(container, env):
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg) for arg in container.get("args", [])]


@pytest.mark.parametrize("values", [{}, ALL_ON], ids=["defaults", "everything-on"])
def test_our_containers_parse_their_arguments(values, monkeypatch):
    checked = set()
    for workload, c in _pod_containers(render.render_objects(values)):
        env = _environment(c)
        argv = _expanded_args(c, env)
        if c["name"] == "cfs-csi-driver":
            config = DriverConfig.from_args(argv, env)
            assert (config.endpoint.scheme, config.endpoint.path) == ("unix", "/csi/csi.sock")
            assert config.driver_name == "cfs.csi.tencentcloud.com"
            if workload.endswith("-node"):
                assert config.node_id == "node-1"
        elif c["name"] == "cfs-operator":
            args = operator_args(argv)
            config = config_from_args(args)
            assert args.liveness == "http://0.0.0.0:8081/healthz"
            assert (config.selection_interval, config.workers) == ((2.5, 8) if values else (10.0, 32))
        elif c["name"] == "cfs-reference":
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            settings, log_level = reference_settings(argv)
            assert settings.credentials == {"sample-secret_id": "sample-secret_key"}
            assert settings.admin_token == "sample-cfs_reference_admin_token"
            assert (settings.host, settings.port) == ("0.0.0.0", 8080)
        else:
            continue
        checked.add((workload, c["name"]))
    expected = {
        ("cfs-csi-controller", "cfs-csi-driver"),
        ("cfs-csi-node", "cfs-csi-driver"),
        ("cfs-csi-operator", "cfs-operator"),
    }
    if values.get("reference", {}).get("enabled"):
        expected.add(("cfs-csi-reference", "cfs-reference"))
    assert checked == expected


def _sidecar_workers(pod) -> int:
    """How many CSI calls the pod's sidecars may have in flight: the sum of their worker flags."""
    return sum(
        int(arg.split("=", 1)[1])
        for c in pod["containers"]
        for arg in c.get("args", [])
        if arg.split("=", 1)[0] in ("--worker-threads", "--workers")
    )


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"controller": {"workerThreads": 50, "shutdownGrace": 90}, "node": {"shutdownGrace": 5}},
    ],
    ids=["defaults", "tuned"],
)
def test_the_driver_has_threads_for_its_calls_and_time_to_finish_them(values):
    """The kubelet waits longer after SIGTERM than the driver lets in-flight RPCs run, and the
    controller plugin serves every call its sidecars may make at once plus Probe (a Probe queued
    behind 100 s CreateVolume waits would fail the liveness probe)."""
    graces = {}
    for obj in render.render_objects(values):
        if obj["kind"] not in ("Deployment", "DaemonSet"):
            continue
        pod = obj["spec"]["template"]["spec"]
        for c in pod["containers"]:
            if c["name"] == "cfs-csi-driver":
                config = DriverConfig.from_args(_expanded_args(c, _environment(c)), {})
                assert pod["terminationGracePeriodSeconds"] > config.shutdown_grace, obj["metadata"]["name"]
                assert config.grpc_workers > _sidecar_workers(pod), obj["metadata"]["name"]
                graces[obj["kind"]] = config.shutdown_grace
    expected = (
        values.get("controller", {}).get("shutdownGrace", 30),
        values.get("node", {}).get("shutdownGrace", 30),
    )
    assert (graces["Deployment"], graces["DaemonSet"]) == expected


@pytest.mark.parametrize(
    "provisioner_timeout, create_timeout, fits",
    [
        ("120s", 100, True),
        ("2m", 119, True),
        ("1h", 3000, True),
        ("100000ms", 99, True),
        ("100s", 100, False),
        ("90s", 100, False),
        ("1m", 60, False),
        ("100500ms", 100, False),
    ],
)
def test_the_driver_answers_before_the_provisioner_gives_up(provisioner_timeout, create_timeout, fits):
    values = {"controller": {"provisionerTimeout": provisioner_timeout, "createTimeout": create_timeout}}
    if fits:
        controller = next(
            c
            for w, c in _pod_containers(render.render_objects(values))
            if w == "cfs-csi-controller" and c["name"] == "csi-provisioner"
        )
        assert f"--timeout={provisioner_timeout}" in controller["args"]
    else:
        with pytest.raises(
            helm.HelmRenderError,
            match=rf"controller.createTimeout \({create_timeout}s\) must be "
            rf"shorter than controller.provisionerTimeout \({provisioner_timeout}\)",
        ):
            render.render_objects(values)


@pytest.mark.parametrize(
    "pool, ports",
    [
        ("10.96.0.128/25", "20000-20127"),
        ("10.96.0.128/25", "20000-20126"),
        ("10.96.0.0/24", "20000-20255"),
        ("10.96.0.0/24", "30000-30100"),
        ("10.96.0.200/32", "20000-20000"),
    ],
)
def test_the_chart_refuses_exactly_the_port_ranges_the_reference_refuses(pool, ports):
    """reference.nfsPortRange must hold a port per reference.mountIpPool address: the chart checks
    at install what the reference service would otherwise refuse when its pod starts."""
    values = {"reference": {"enabled": True, "nfs": "on", "mountIpPool": pool, "nfsPortRange": ports}}
    try:
        PortPerMountTarget(ipaddress.IPv4Network(pool), *parse_port_range(ports))
    except ValueError:
        with pytest.raises(
            helm.HelmRenderError,
            match=rf"reference.nfsPortRange {ports} holds \d+ ports but "
            rf"reference.mountIpPool {pool} has \d+ addresses",
        ):
            render.render_objects(values)
    else:
        reference = next(
            c for w, c in _pod_containers(render.render_objects(values)) if c["name"] == "cfs-reference"
        )
        assert f"--nfs-port-range={ports}" in reference["args"]


def test_only_the_controller_and_operator_get_cloud_credentials():
    for workload, c in _pod_containers(render.render_objects()):
        env = _environment(c)
        mounts = {m["name"] for m in c.get("volumeMounts", [])}
        has_credentials = "CFS_CREDENTIALS_DIR" in env and "credentials" in mounts
        assert has_credentials == (
            workload in ("cfs-csi-controller", "cfs-csi-operator")
            and c["name"] in ("cfs-csi-driver", "cfs-operator")
        ), (workload, c["name"])


def test_storage_class_parameters_are_accepted_by_the_driver():
    """The chart's classes (all enabled) and the example classes parse with the driver's own
    StorageClass parameter parser (unknown keys or values would be INVALID_ARGUMENT)."""
    objects = render.render_objects(ALL_ON)
    classes = [o for o in objects if o["kind"] == "StorageClass"]
    controller = next(
        c for w, c in _pod_containers(objects) if w == "cfs-csi-controller" and c["name"] == "cfs-csi-driver"
    )
    default_clients = DriverConfig.from_args(
        _expanded_args(controller, _environment(controller)), {}
    ).default_allowed_clients
    classes += [
        d
        for p in sorted((REPO / "deploy" / "examples").glob("storageclass-*.yaml"))
        for d in yaml.safe_load_all(p.read_text())
        if d
    ]
    modes = set()
    for storage_class in classes:
        parameters = storage_class["parameters"]
        mode = provisioning_mode(parameters)
        parsed = (
            parse_subdir(parameters)
            if mode == "subdir"
            else parse_filesystem(parameters, ",".join(default_clients))
        )
        assert parsed.vers == parameters["vers"]
        modes.add((mode, parsed.vers))
    assert modes == {("filesystem", "4"), ("filesystem", "3"), ("subdir", "4")}


def test_install_doc_lists_every_parameter_and_custom_resource_field():
    doc = (REPO / "docs" / "install.md").read_text()
    for key in set(params.FILESYSTEM_KEYS) | set(params.SUBDIR_KEYS):
        assert f"`{key}`" in doc, f"StorageClass parameter {key} missing from docs/install.md"
    for path in sorted((REPO / "charts" / "cfs-csi" / "crds").glob("cfs*.yaml")):
        crd = yaml.safe_load(path.read_text())
        assert crd["spec"]["names"]["kind"] in doc
        spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        for field in spec["properties"]:
            assert f"`{field}" in doc, (
                f"{crd['spec']['names']['kind']}.spec.{field} missing from docs/install.md"
            )


# ---- the Dockerfile -------------------------------------------------------------------------


def _stages():
    """[(base, name, [instructions])] of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?$", line, re.I)
        if match:
            stages.append((match.group(1), match.group(2), []))
        else:
            stages[-1][2].append(line)
    return stages


def _chain(stages, name):
    """The instructions of stage `name` and of the stages it is built FROM, base first."""
    by_name = {stage_name: (base, body) for base, stage_name, body in stages}
    base, body = by_name[name]
    return (_chain(stages, base) if base in by_name else []) + body


def test_external_bases_are_pinned_and_small():
    stages = _stages()
    names = {name for _, name, _ in stages}
    externals = [base for base, _, _ in stages if base not in names]
    assert externals
    for base in externals:
        # A full x.y.z version tag or a digest: never "latest" or a moving minor tag.
        assert re.search(r"(@sha256:[0-9a-f]{64}$|:\d+\.\d+\.\d+[-\w.]*$)", base), base
        assert "slim" in base or "@sha256" in base, base


def test_entrypoints_are_console_scripts_and_importable():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    stages = _stages()
    entrypoints = {}
    for _, name, body in stages:
        for line in body:
            if line.upper().startswith("ENTRYPOINT"):
                entrypoints[name] = yaml.safe_load(line.split(None, 1)[1])
    assert entrypoints == {
        "driver": ["cfs-csi-driver"],
        "operator": ["cfs-operator"],
        "reference": ["cfs-reference"],
    }
    for (command,) in entrypoints.values():
        module, function = scripts[command].split(":")
        assert callable(getattr(importlib.import_module(module), function)), command


def test_images_run_unprivileged_and_carry_their_tools():
    stages = _stages()
    for target, packages in (
        ("driver", {"nfs-common", "util-linux"}),
        ("operator", set()),
        ("reference", {"nfs-ganesha", "nfs-ganesha-vfs"}),
    ):
        body = _chain(stages, target)
        users = [line.split()[1] for line in body if line.upper().startswith("USER")]
        assert users and users[-1] == "65532:65532", f"{target} must end as the unprivileged user"
        installs = " ".join(line for line in body if "apt-get install" in line)
        assert packages <= set(installs.split()), target
        assert all("--no-install-recommends" in line for line in body if "apt-get install" in line)


def test_build_context_holds_what_the_dockerfile_copies():
    copied = []
    for _, _, body in _stages():
        for line in body:
            if line.upper().startswith("COPY") and "--from" not in line:
                copied += line.split()[1:-1]
    assert copied
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text()
    for source in copied:
        assert (REPO / source).exists(), source
        assert f"!{source.rstrip('/')}" in ignore.replace("/\n", "\n"), (
            f"{source} excluded from the build context"
        )
