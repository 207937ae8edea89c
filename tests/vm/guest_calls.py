"""Runs inside the VM guest (cfs_demo/guest.py): the real node plugin and a list of steps.

`python guest_calls.py plan.json results.json`. The plan names the plugin's command line and a
list of steps; each step's outcome is appended to the results, which the host reads back from
the exchange directory:
- {"rpc": "NodeStageVolume", "request": {...}}: a Node (or Identity) call with the request as
  protobuf JSON; the outcome is the status code name, the message and the reply as JSON;
- {"shell": "..."}: a POSIX shell command (observations: /proc/mounts, writes, ownership);
  the outcome is its exit code and output;
- {"parallel": [steps]}: the steps at once, each in its own thread (one hung call must not
  hold up another);
- {"handshake": "name"}: write `name.request` and wait for the host's `name.done` (the host acts
  meanwhile, e.g. lists the file system's clients); '/' in a name is '--' in the file name.
Every step has a "label" that the host uses to find its outcome.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from google.protobuf import json_format

from cfs_csi.csipb import csi_pb2, csi_pb2_grpc

SOCKET = "/run/cfs-csi/node.sock"
CALL_TIMEOUT = 120.0
HANDSHAKE_TIMEOUT = 120.0
STARTUP_TIMEOUT = 60.0


def timing(started: float) -> dict:
    """How long a step took and when it ended (one clock for all threads: steps run at once
    can be ordered by it)."""
    finished = time.monotonic()
    return {"seconds": finished - started, "finished": finished}


def call(stubs: dict[str, object], step: dict) -> dict:
    method = step["rpc"]
    service = "Identity" if method in ("Probe", "GetPluginInfo", "GetPluginCapabilities") else "Node"
    request = json_format.ParseDict(step.get("request", {}), getattr(csi_pb2, f"{method}Request")())
    started = time.monotonic()
    try:
        reply = getattr(stubs[service], method)(request, timeout=step.get("timeout", CALL_TIMEOUT))
    except grpc.RpcError as err:
        return {
            "code": err.code().name,
            "message": err.details(),
            **timing(started),
        }
    return {
        "code": "OK",
        "reply": json_format.MessageToDict(reply, preserving_proto_field_name=True),
        **timing(started),
    }


def shell(step: dict) -> dict:
    started = time.monotonic()
    done = subprocess.run(
        ["/bin/sh", "-c", step["shell"]], capture_output=True, text=True, timeout=CALL_TIMEOUT
    )
    return {
        "returncode": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr,
        **timing(started),
    }


def handshake_file(name: str) -> str:
    """The exchange-directory file name of a handshake (labels may contain '/')."""
    return name.replace("/", "--")


def handshake(step: dict, exchange: Path) -> dict:
    name = handshake_file(step["handshake"])
    (exchange / f"{name}.request").write_text("")
    deadline = time.monotonic() + HANDSHAKE_TIMEOUT
    while not (exchange / f"{name}.done").exists():
        if time.monotonic() > deadline:
            return {"done": False}
        time.sleep(0.1)
    return {"done": True}


def run_step(stubs: dict[str, object], step: dict, exchange: Path) -> dict:
    if "rpc" in step:
        return call(stubs, step)
    if "shell" in step:
        return shell(step)
    return handshake(step, exchange)


def wait_for_plugin(stubs: dict[str, object], plugin: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            stubs["Identity"].GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=2)
            return
        except grpc.RpcError:
            if plugin.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the node plugin did not start") from None
            time.sleep(0.2)


def main() -> int:
    plan_file, results_file = Path(sys.argv[1]), Path(sys.argv[2])
    plan = json.loads(plan_file.read_text())
    Path(SOCKET).parent.mkdir(parents=True, exist_ok=True)
    with open(plan_file.parent / "plugin.log", "w") as plugin_log:
        plugin = subprocess.Popen(
            [*plan["plugin"], "--endpoint", f"unix://{SOCKET}"], stdout=plugin_log, stderr=plugin_log
        )
    channel = grpc.insecure_channel(f"unix://{SOCKET}")
    stubs = {"Identity": csi_pb2_grpc.IdentityStub(channel), "Node": csi_pb2_grpc.NodeStub(channel)}
    results: dict[str, dict] = {}
    try:
        wait_for_plugin(stubs, plugin)
        for step in plan["steps"]:
            if "parallel" in step:
                with ThreadPoolExecutor(len(step["parallel"])) as pool:
                    outcomes = pool.map(
                        lambda inner: run_step(stubs, inner, plan_file.parent), step["parallel"]
                    )
                    results.update(zip((inner["label"] for inner in step["parallel"]), outcomes, strict=True))
            else:
                results[step["label"]] = run_step(stubs, step, plan_file.parent)
            results_file.write_text(json.dumps(results, indent=1))
    finally:
        plugin.terminate()
        plugin.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
