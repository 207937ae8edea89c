"""One ganesha.nfsd process serving one mount-target IP: start, reload (SIGHUP), stop, and
reaping a predecessor's process left behind by a crash."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from cfs_reference.nfs.ganesha_config import InstancePaths, Listener, render_server
from cfs_reference.nfs.model import DataPlaneError

STARTED_MARK = "NFS SERVER INITIALIZED"
RELOADED_MARK = "Reread exports complete"
# ganesha keeps running when an export block is invalid (it just drops the export), so
# configuration errors are read from its log instead of its exit status. On SIGHUP it logs
# them right after RELOADED_MARK, so a reload sees them only when they are already written;
# validate_spec() is what keeps bad exports out in the first place.
CONFIG_ERROR_MARK = "Config File ("
NOTABLE_LEVELS = (":FATAL :", ":MAJ :", ":CRIT :", ":WARN :")
EXPECTED_NOISE = (
    ":DBUS :", ":NFS CB :", "krb5", "RADOS", "protocol is specified for a CLIENT block"
)  # fmt: skip
POLL_SECONDS = 0.02
STOP_GRACE_SECONDS = 5.0

log = logging.getLogger(__name__)


def exact_bind_problem() -> str | None:
    """Why ganesha would not bind a single IPv4 address here, or None when it will.

    With IPv6 available ganesha listens on an IPv6 socket and needs Bind_addr as a v4-mapped
    address, which glibc (AI_ADDRCONFIG) only resolves when a non-loopback IPv6 address exists.
    Otherwise it silently listens on every address and all mount targets collide on :2049.
    """
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
    except OSError:
        return None  # no IPv6 at all: ganesha binds the IPv4 address directly
    try:
        socket.getaddrinfo(
            "127.0.0.1", None, socket.AF_INET6, 0, 0, socket.AI_ADDRCONFIG | socket.AI_V4MAPPED
        )
    except socket.gaierror:
        return (
            "ganesha can bind one mount-target address only when this network namespace has a "
            "non-loopback IPv6 address (e.g. `ip -6 addr add fd00::1/128 dev lo nodad`)"
        )
    return None


def process_command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def reap_orphan(paths: InstancePaths) -> None:
    """Kill a ganesha a crashed predecessor left running for this instance directory.

    The pid file alone is not trusted (pids are reused): the process must be ganesha started
    with this very configuration file."""
    pid = read_pid(paths.pid_file)
    if pid is None:
        return
    argv = process_command_line(pid)
    if argv and argv[0].endswith("ganesha.nfsd") and str(paths.server_config) in argv:
        log.warning("reaping orphaned ganesha pid %d (%s)", pid, paths.root)
        terminate_pid(pid)
    paths.pid_file.unlink(missing_ok=True)


def terminate_pid(pid: int) -> None:
    """SIGTERM, then SIGKILL after a grace period, for a process that is not our child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline:
        if not process_command_line(pid):
            return
        time.sleep(POLL_SECONDS)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class GaneshaServer:
    """ganesha.nfsd for one mount-target IP; its files live in one instance directory."""

    def __init__(
        self,
        binary: str,
        paths: InstancePaths,
        ip_address: str,
        listener: Listener,
        nfsv3: bool,
        timeout: float = 10.0,
    ):
        self.paths = paths
        self.ip_address = ip_address
        self.listener = listener
        self._binary = binary
        self._nfsv3 = nfsv3
        self._timeout = timeout
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, exports_text: str) -> None:
        """Start serving; returns once ganesha accepts requests or raises DataPlaneError."""
        try:
            self._process = process = self._spawn(exports_text)
        except OSError as error:  # e.g. the binary is gone or the state dir unwritable
            raise DataPlaneError(f"ganesha for {self.ip_address} could not start: {error}") from None
        log.info("ganesha pid %d serving %s on %s", process.pid, self.ip_address, self.listener)
        try:
            new_text = self._wait_for_log(0, STARTED_MARK, "start")
            self._raise_on_config_errors(new_text, "start")
        except DataPlaneError:
            self.stop()
            raise

    def _spawn(self, exports_text: str) -> subprocess.Popen[bytes]:
        """Write the config files and launch ganesha (OSError when either fails)."""
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self.paths.recovery_dir.mkdir(exist_ok=True)
        self.paths.log_file.unlink(missing_ok=True)
        write_atomically(self.paths.exports_config, exports_text)
        write_atomically(self.paths.server_config, render_server(self.paths, self.listener, self._nfsv3))
        argv = [
            self._binary,
            "-F",  # foreground: it stays our child, so stop() can wait for it
            "-f", str(self.paths.server_config),
            "-L", str(self.paths.log_file),
            "-p", str(self.paths.pid_file),
        ]  # fmt: skip
        with open(self.paths.log_file, "ab") as early_output:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=early_output,
                stderr=early_output,
                start_new_session=True,  # a Ctrl-C meant for the service must not kill it first
            )

    def reload(self, exports_text: str) -> None:
        """Swap in a new export file with SIGHUP; returns once ganesha has re-read it."""
        offset = self._log_size()
        write_atomically(self.paths.exports_config, exports_text)
        assert self._process is not None
        self._process.send_signal(signal.SIGHUP)
        new_text = self._wait_for_log(offset, RELOADED_MARK, "reload")
        self._raise_on_config_errors(new_text, "reload")

    def stop(self, keep_rpcbind_registration: bool = False) -> None:
        """Stop serving. A clean shutdown unregisters NFS and MOUNT from rpcbind, which other
        NFSv3 instances share (same ports), so they ask to be killed without it instead; the
        data is safe either way (ganesha's VFS writes go straight to the kernel)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            if keep_rpcbind_registration:
                process.kill()
            else:
                process.terminate()
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.info("ganesha pid %d for %s stopped", process.pid, self.ip_address)
        self.paths.pid_file.unlink(missing_ok=True)

    def _log_size(self) -> int:
        try:
            return self.paths.log_file.stat().st_size
        except FileNotFoundError:
            return 0

    def _wait_for_log(self, offset: int, mark: str, step: str) -> str:
        """Poll the log after offset until mark appears; the text read, or DataPlaneError."""
        deadline = time.monotonic() + self._timeout
        while True:
            text = self._read_log(offset)
            if mark in text:
                return text
            if not self.running():
                raise DataPlaneError(f"ganesha for {self.ip_address} exited during {step}: {log_tail(text)}")
            if time.monotonic() > deadline:
                raise DataPlaneError(
                    f"ganesha for {self.ip_address} did not finish {step} within "
                    f"{self._timeout:g}s: {log_tail(text)}"
                )
            time.sleep(POLL_SECONDS)

    def _read_log(self, offset: int) -> str:
        try:
            with open(self.paths.log_file, "rb") as log_file:
                log_file.seek(offset)
                return log_file.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _raise_on_config_errors(self, text: str, step: str) -> None:
        errors = [line for line in text.splitlines() if CONFIG_ERROR_MARK in line]
        if errors:
            raise DataPlaneError(
                f"ganesha for {self.ip_address} rejected its configuration on {step}: "
                + " | ".join(line[line.index(CONFIG_ERROR_MARK) :] for line in errors)
            )


def log_tail(text: str, lines: int = 3) -> str:
    """The last warnings and errors of a ganesha log, without timestamps or the complaints
    about D-Bus and Kerberos that every ganesha without them logs."""
    notable = [
        line.split(" : ", 3)[-1]
        for line in text.splitlines()
        if any(level in line for level in NOTABLE_LEVELS)
        and not any(noise in line for noise in EXPECTED_NOISE)
    ]
    return " | ".join(notable[-lines:]) or "(nothing notable in its log)"


def write_atomically(path: Path, text: str) -> None:
    """ganesha may re-read a file at any time; never let it see a half-written one."""
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text)
    os.replace(partial, path)
