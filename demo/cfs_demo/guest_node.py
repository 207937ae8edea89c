"""A Kubernetes node for the demo where this machine's kernel cannot mount NFS: a QEMU guest
(cfs_demo.guest) running the real `cfs-csi-driver --mode node`, reached over gRPC on a port
forwarded to 127.0.0.1, plus a way to run a shell command in it (what a pod would do with its
volume).

The guest's program serves the plugin and runs the commands the host drops into the exchange
directory (`cmd-N.sh` → `cmd-N.out`, `cmd-N.rc`) until a `stop` file appears or the plugin
exits (then the guest powers off, and the demo sees QEMU end instead of waiting).
"""

from __future__ import annotations

import shlex
import socket
import time
from pathlib import Path

from cfs_demo.guest import Guest, node_plugin_argv

GUEST_PORT = 10000
COMMAND_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0

GUEST_SCRIPT = """\
{plugin} > plugin.log 2>&1 &
plugin=$!
while [ ! -e stop ] && kill -0 $plugin 2>/dev/null; do
    for request in cmd-*.sh; do
        [ -e "$request" ] || continue
        name=${{request%.sh}}
        sh "$request" > "$name.out" 2>&1
        echo $? > "$name.rc.tmp" && mv "$name.rc.tmp" "$name.rc"
        rm -f "$request"
    done
    sleep 0.2
done
kill $plugin 2>/dev/null
wait $plugin
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class GuestNode:
    def __init__(self, work_dir: Path, *plugin_flags: str):
        self.host_port = free_port()
        self.guest = Guest(work_dir, forwards={self.host_port: GUEST_PORT})
        plugin = node_plugin_argv("--endpoint", f"tcp://0.0.0.0:{GUEST_PORT}", *plugin_flags)
        script = GUEST_SCRIPT.format(plugin=shlex.join(plugin))
        self.running = self.guest.start(script)
        self._commands = 0

    @property
    def address(self) -> str:
        """Where the guest's node plugin answers gRPC."""
        return f"127.0.0.1:{self.host_port}"

    @property
    def plugin_log(self) -> Path:
        return self.running.exchange / "plugin.log"

    def sh(self, command: str) -> tuple[int, str]:
        """Run `command` in the guest; (exit code, output)."""
        self._commands += 1
        name = f"cmd-{self._commands}"
        exchange = self.running.exchange
        (exchange / f"{name}.tmp").write_text(command + "\n")
        (exchange / f"{name}.tmp").rename(exchange / f"{name}.sh")
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while not (exchange / f"{name}.rc").exists():
            if self.running.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the guest did not run {command!r}")
            time.sleep(0.1)
        return int((exchange / f"{name}.rc").read_text()), (exchange / f"{name}.out").read_text()

    def stop(self) -> None:
        (self.running.exchange / "stop").write_text("")
        try:
            self.running.wait(STOP_TIMEOUT)
        except TimeoutError:
            pass  # wait() killed it
