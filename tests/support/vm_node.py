"""The node plugin driven in a VM guest (cfs_demo/guest.py) against a real NFS host side.

- `nfs_host(work)`: this thread's own network namespace with rpcbind (its own /run), the reference service
  serving real NFSv4 and NFSv3 (nfs-ganesha) at its mount-target addresses, and the real
  controller provisioning from it (subdir shares reached through the reference's data dirs);
- `Plan`: the labelled steps tests/vm/guest_calls.py runs in the guest (Node calls, shell
  commands, handshakes with the host, steps at once);
- `run_plan(guest, plan, ...)`: one boot that starts `cfs-csi-driver --mode node` in the guest
  and runs the plan; the outcomes by label, and the logs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfs_csi.controller.subdir import LocalShareAccess
from cfs_demo.guest import Guest, node_plugin_argv
from tests.support.csi import ZONE, serving_controller
from tests.support.netns import private_network, private_rpcbind
from tests.support.reference import running_reference

REPO = Path(__file__).resolve().parents[2]
GUEST_PROGRAM = REPO / "tests" / "vm" / "guest_calls.py"


@contextmanager
def nfs_host(work: Path) -> Iterator[tuple[Any, Any]]:
    """(the running reference, the controller) in this thread's own network namespace."""
    with (
        private_network([]),
        private_rpcbind(),
        running_reference(
            work / "reference", create_delay=0.05, nfs="on", extra_args=["--nfs-v3"]
        ) as reference,
        serving_controller(
            work, reference, share_access=LocalShareAccess(reference.state_dir / "data")
        ) as controller,
    ):
        yield reference, controller


@dataclass
class Plan:
    """The guest's steps, each with a label its outcome is found by."""

    steps: list[dict[str, Any]] = field(default_factory=list)

    def rpc(self, label: str, method: str, **request: Any) -> None:
        timeout = request.pop("timeout", None)
        step = {"label": label, "rpc": method, "request": request}
        self.steps.append(step if timeout is None else {**step, "timeout": timeout})

    def shell(self, label: str, command: str) -> None:
        self.steps.append({"label": label, "shell": command})

    def handshake(self, label: str) -> None:
        self.steps.append({"label": label, "handshake": label})

    def parallel(self, label: str, build: Callable[[Plan], None]) -> None:
        inner = Plan()
        build(inner)
        self.steps.append({"label": label, "parallel": inner.steps})


@dataclass(frozen=True)
class PlanRun:
    results: dict[str, dict[str, Any]]
    log: str  # guest_calls.py's own output
    plugin_log: str  # the node plugin's log


def run_plan(
    guest: Guest, plan: Plan, handshakes: dict[str, Callable[[], None]] | None = None, *flags: str
) -> PlanRun:
    """Boot once and run `plan` against a node plugin started with `flags`."""
    run = guest.run(
        f"exec {sys.executable} {GUEST_PROGRAM} plan.json results.json\n",
        files={
            "plan.json": json.dumps(
                {
                    "plugin": node_plugin_argv("--node-id", "vm-node", "--zone", ZONE, *flags),
                    "steps": plan.steps,
                }
            )
        },
        handshakes=handshakes,
    )
    results = run.exchange / "results.json"
    if not results.exists():
        raise AssertionError(f"the guest wrote no results:\n{run.log}\n{run.console[-3000:]}")
    plugin_log = run.exchange / "plugin.log"
    return PlanRun(
        json.loads(results.read_text()),
        run.log,
        plugin_log.read_text(errors="replace") if plugin_log.exists() else "",
    )


def capability(read_only: bool = False) -> dict[str, Any]:
    """A mount capability in a plan's JSON: ReadWriteMany, or ReadOnlyMany."""
    mode = "MULTI_NODE_READER_ONLY" if read_only else "MULTI_NODE_MULTI_WRITER"
    return {"mount": {}, "access_mode": {"mode": mode}}
