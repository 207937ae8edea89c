"""tests/e2e/kind.sh: valid bash, skips (exit 77) with a message naming what is missing, and
runs the whole kind scenario where Docker and kind are really there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

SCRIPT = Path(__file__).resolve().parent / "kind.sh"
REPO = SCRIPT.parents[2]
SKIPPED = 77
TOOLS = ("docker", "kind", "kubectl", "helm", "git", "curl", "python3")


def run(path_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [shutil.which("bash"), str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": str(path_dir), "HOME": str(path_dir)},
    )


def fake_tools(directory: Path, docker_info_status: int) -> None:
    """Stand-ins for the tools: only `docker info` is ever run before the skip decision."""
    directory.mkdir()
    for tool in TOOLS:
        body = f"exit {docker_info_status}" if tool == "docker" else "exit 0"
        (directory / tool).write_text(f"#!{shutil.which('bash')}\n{body}\n")
        (directory / tool).chmod(0o755)


def test_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")


def test_skips_naming_every_missing_tool(tmp_path):
    result = run(tmp_path)
    assert result.returncode == SKIPPED
    assert result.stderr.strip() == f"SKIP: kind scenario needs {' '.join(TOOLS)} (not installed)"


def test_skips_when_the_docker_daemon_is_unreachable(tmp_path):
    fake_tools(tmp_path / "bin", docker_info_status=1)
    result = run(tmp_path / "bin")
    assert result.returncode == SKIPPED
    assert "needs a running Docker daemon" in result.stderr
    assert result.stdout == ""  # nothing was built or created


def _selects(selector: dict, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions) against a label set."""
    operators = {
        "In": lambda key, values: labels.get(key) in values,
        "NotIn": lambda key, values: labels.get(key) not in values,
        "Exists": lambda key, _: key in labels,
        "DoesNotExist": lambda key, _: key not in labels,
    }
    return selector.get("matchLabels", {}).items() <= labels.items() and all(
        operators[e["operator"]](e["key"], e.get("values", [])) for e in selector.get("matchExpressions", [])
    )


def test_custom_resources_it_applies_can_work_on_a_fresh_reference_service():
    """The scenario waits for its custom resources to become Ready against an empty reference
    service: none may adopt or bind a fixed cloud id, and the snapshot policy's claim selector
    must pick the claim the script labels."""
    script = SCRIPT.read_text()
    applied = re.findall(r'-f "\$REPO/(deploy/examples/cfs-[\w-]+\.yaml)"', script)
    assert applied
    labels = {
        kind: dict(pair.split("=") for pair in found.split())
        for kind, found in re.findall(
            r'label (namespace "\$NS"|pvc cfs-data) ((?:\S+=\S+ )+)--overwrite', script
        )
    }
    namespace_labels, claim_labels = labels['namespace "$NS"'], labels["pvc cfs-data"]
    policies = 0
    for path in applied:
        spec = yaml.safe_load((REPO / path).read_text())["spec"]
        assert not {"pGroupId", "autoSnapshotPolicyId", "fileSystemIds"} & set(spec), path
        if "persistentVolumeClaimSelector" in spec:
            selector = spec["persistentVolumeClaimSelector"]
            assert _selects(selector["namespaceSelector"], namespace_labels), path
            assert _selects(selector["labelSelector"], claim_labels), path
            policies += 1
    assert policies == 1


def test_selector_matching_used_above():
    selector = {
        "matchLabels": {"env": "prod"},
        "matchExpressions": [{"key": "backup", "operator": "In", "values": ["nightly"]}],
    }
    assert _selects(selector, {"env": "prod", "backup": "nightly"})
    assert not _selects(selector, {"env": "prod", "backup": "weekly"})
    assert not _selects(selector, {"backup": "nightly"})


def _docker_works() -> bool:
    if not all(shutil.which(tool) for tool in TOOLS):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_kind_scenario():
    if not _docker_works():
        pytest.skip(f"kind scenario needs Docker (with a running daemon) and {', '.join(TOOLS[1:])}")
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=3500)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "kind scenario passed" in result.stdout
