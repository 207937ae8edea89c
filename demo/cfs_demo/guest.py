"""A real Linux kernel for the node plugin: Debian's kernel under QEMU (software emulation).

This machine's kernel has no NFS client; Debian's `linux-image-amd64` has one. `Guest` boots it
with `-accel tcg` from a tiny initramfs (busybox and the kernel's own virtio, 9p, overlay and NFS
modules, loaded in dependency order), shares the host's root read-only over 9p with a tmpfs
overlay on top, and chroots into it: the guest runs this checkout's `.venv` and the host's
`mount.nfs` as they are, against a real kernel.

Networking is QEMU's user mode (slirp): a guest connection becomes a host-side `connect()` in the
network namespace QEMU runs in. 10.0.2.2 is the host's 127.0.0.1, and with only 127.0.0.1/32 on
the guest's loopback plus `route_localnet`, the reference service's mount-target range
(127.16.0.0/16) is routed out through slirp: the guest mounts exactly the `server` that a volume
context names. One more 9p share, read-write and uncached, is the exchange directory: the host
puts the program to run there and reads back what it wrote.

Where QEMU, busybox or a kernel with its modules is missing, `missing()` says which, in one line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

QEMU = "qemu-system-x86_64"
BUSYBOX = "/bin/busybox"  # Debian busybox-static
DEBIAN_PACKAGES = "qemu-system-x86 linux-image-amd64 busybox-static cpio"
# In dependency order per `modprobe --show-depends` of these; the rest come from those lists.
GUEST_MODULES = ("virtio_pci", "virtio_net", "9pnet_virtio", "9p", "overlay", "nfsv3", "nfsv4")
MOUNT_TARGET_RANGE = "127.16.0.0/16"
EXCHANGE_TAG = "exchange"
GUEST_MEMORY_MB = 1024
BOOT_TIMEOUT_SECONDS = 600  # software emulation: a boot is ~3 s, a Python start in it ~5 s

INIT_SCRIPT = r"""#!/bin/busybox sh
# The guest's /init: modules, network, the host's files, then the program in the exchange dir.
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /modules.list); do insmod "$module" || echo "insmod $module failed"; done
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
exchange=$(arg cfs.exchange)
ip link set lo up
ip addr del 127.0.0.1/8 dev lo
ip addr add 127.0.0.1/32 dev lo
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
for conf in all eth0; do
    echo 1 > /proc/sys/net/ipv4/conf/$conf/route_localnet
    echo 0 > /proc/sys/net/ipv4/conf/$conf/rp_filter
done
ip route add $(arg cfs.mount_targets) via 10.0.2.2 dev eth0
mkdir -p /host /layers /root
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose hostroot /host
mount -t tmpfs tmpfs /layers
mkdir -p /layers/upper /layers/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/layers/upper,workdir=/layers/work /root
# Not /tmp: a checkout (and its .venv) may live there; the overlay keeps writes in memory anyway.
for fs in proc:/proc sysfs:/sys devtmpfs:/dev tmpfs:/run tmpfs:/var/lib/kubelet; do
    mkdir -p /root${fs#*:}
    mount -t ${fs%%:*} ${fs%%:*} /root${fs#*:}
done
mkdir -p /root$exchange
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none exchange /root$exchange
echo "cfs-guest: running $exchange/run"
chroot /root /bin/sh -c "cd $exchange && exec /bin/sh ./run > guest.log 2>&1"
echo "cfs-guest: exit $?"
sync
poweroff -f
"""


def node_plugin_argv(*flags: str) -> list[str]:
    """`cfs-csi-driver --mode node` as a guest runs it: this checkout's Python, which the guest
    sees through the shared host root."""
    return [sys.executable, "-m", "cfs_csi", "--mode", "node", *flags]


def kernel() -> tuple[Path, str] | None:
    """The newest /boot/vmlinuz-* whose modules are installed, with its version."""
    found = []
    for image in Path("/boot").glob("vmlinuz-*"):
        version = image.name.removeprefix("vmlinuz-")
        if (Path("/lib/modules") / version / "modules.dep").exists():
            found.append((image, version))
    return max(found, key=lambda item: _version_key(item[1]), default=None)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def missing() -> str | None:
    """None when a guest can boot here, else one line naming what is missing."""
    absent = [name for name in (QEMU, "cpio", "modprobe") if shutil.which(name) is None]
    if not Path(BUSYBOX).exists():
        absent.append(BUSYBOX)
    if kernel() is None:
        absent.append("a kernel in /boot with its modules")
    if not absent:
        return None
    return f"the VM lane needs {', '.join(absent)} (Debian: {DEBIAN_PACKAGES})"


def module_files(version: str) -> list[str]:
    """The .ko files GUEST_MODULES need, each once, dependencies first."""
    ordered: list[str] = []
    for module in GUEST_MODULES:
        shown = subprocess.run(
            ["modprobe", "-S", version, "--show-depends", module],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for line in shown.splitlines():
            words = line.split()
            if words[:1] == ["insmod"] and words[1] not in ordered:
                ordered.append(words[1])
    return ordered


def build_initramfs(version: str, output: Path) -> Path:
    """A newc cpio with busybox, /init and the modules (uncompressed: the kernel reads it as is)."""
    with tempfile.TemporaryDirectory(prefix="initramfs-") as scratch:
        root = Path(scratch)
        (root / "bin").mkdir()
        shutil.copy2(BUSYBOX, root / "bin" / "busybox")
        listed = []
        for module in module_files(version):
            copy = root / module.lstrip("/")
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(module, copy)
            listed.append(module)
        (root / "modules.list").write_text("\n".join(listed) + "\n")
        init = root / "init"
        init.write_text(INIT_SCRIPT)
        init.chmod(0o755)
        names = sorted(str(path.relative_to(root)) for path in root.rglob("*"))
        with open(output, "wb") as archive:
            subprocess.run(
                ["cpio", "--create", "--format=newc", "--quiet"],
                input="\n".join(names).encode(),
                stdout=archive,
                cwd=root,
                check=True,
            )
    return output


@dataclass(frozen=True)
class GuestRun:
    console: str  # the kernel's and /init's output on the serial console
    log: str  # what the program wrote (stdout and stderr), from the exchange directory
    exchange: Path


class RunningGuest:
    """A booted guest: its QEMU process and its exchange directory."""

    def __init__(self, process: subprocess.Popen[bytes], exchange: Path):
        self.process = process
        self.exchange = exchange

    def answer(self, handshakes: dict[str, Callable[[], None]]) -> None:
        """Call the handler of each handshake the guest asked for; refuse unknown ones."""
        for request in self.exchange.glob("*.request"):
            name = request.stem
            if (self.exchange / f"{name}.done").exists():
                continue
            if name not in handshakes:
                raise RuntimeError(f"the guest asked for a handshake nobody answers: {name}")
            handshakes[name]()
            (self.exchange / f"{name}.done").write_text("")

    def wait(self, timeout: float, handshakes: dict[str, Callable[[], None]] | None = None) -> GuestRun:
        """Until the guest powers off (answering handshakes meanwhile); killed after `timeout`."""
        deadline = time.monotonic() + timeout
        try:
            while self.process.poll() is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the guest did not power off within {timeout:g} s")
                self.answer(handshakes or {})
                time.sleep(0.1)
        finally:
            self.kill()
        log_file = self.exchange / "guest.log"
        return GuestRun(
            console=(self.exchange / "console.log").read_text(errors="replace"),
            log=log_file.read_text(errors="replace") if log_file.exists() else "",
            exchange=self.exchange,
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class Guest:
    """Boots guests from one initramfs (built once per Guest). `forwards` maps host ports on
    127.0.0.1 to guest ports (QEMU's hostfwd), e.g. to reach a gRPC server in the guest."""

    def __init__(self, work_dir: Path, forwards: dict[int, int] | None = None):
        found = kernel()
        if found is None:
            raise RuntimeError(missing())
        self.kernel_image, self.kernel_version = found
        work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir = work_dir
        self.forwards = dict(forwards or {})
        self.initramfs = build_initramfs(self.kernel_version, work_dir / "initramfs.cpio")
        self._boots = 0

    def start(self, script: str, files: dict[str, str] | None = None) -> RunningGuest:
        """Boot and run `script` (POSIX sh, in the chroot of the host's files, cwd = the
        exchange directory, whose absolute path is the same in the guest); the guest powers
        off when it ends. A file `NAME.request` the script writes asks the host to act
        (RunningGuest.answer); `NAME.done` tells it the host has."""
        self._boots += 1
        exchange = self.work_dir / f"exchange-{self._boots}"
        exchange.mkdir()
        for name, text in (files or {}).items():
            (exchange / name).write_text(text)
        (exchange / "run").write_text(script)
        with open(exchange / "console.log", "wb") as console:
            # setpriv makes QEMU die with its parent, so no guest outlives a killed demo or test.
            # (Not preexec_fn: Python code between fork and exec breaks in a process with gRPC
            # threads, and the guest then never starts.)
            argv = ["setpriv", "--pdeathsig", "KILL", "--", *self.qemu_argv(exchange)]
            process = subprocess.Popen(argv, stdout=console, stderr=subprocess.STDOUT)
        return RunningGuest(process, exchange)

    def run(
        self,
        script: str,
        files: dict[str, str] | None = None,
        handshakes: dict[str, Callable[[], None]] | None = None,
        timeout: float = BOOT_TIMEOUT_SECONDS,
    ) -> GuestRun:
        """Boot, run `script` to its end, power off (see `start`)."""
        return self.start(script, files).wait(timeout, handshakes)

    def qemu_argv(self, exchange: Path) -> Sequence[str]:
        append = [
            "console=ttyS0",
            "panic=-1",
            "quiet",
            f"cfs.exchange={exchange}",
            f"cfs.mount_targets={MOUNT_TARGET_RANGE}",
        ]
        return [
            QEMU,
            "-accel", "tcg",
            "-m", str(GUEST_MEMORY_MB),
            "-smp", "1",
            "-nographic",
            "-no-reboot",
            "-kernel", str(self.kernel_image),
            "-initrd", str(self.initramfs),
            "-append", " ".join(append),
            "-netdev", "user,id=net0" + "".join(
                f",hostfwd=tcp:127.0.0.1:{host}-:{guest}" for host, guest in self.forwards.items()),
            "-device", "virtio-net-pci,netdev=net0",
            "-virtfs",
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            "-virtfs", f"local,path={exchange},mount_tag={EXCHANGE_TAG},security_model=none",
        ]  # fmt: skip


def guest_environment() -> dict[str, str]:
    """The few variables a program in the guest needs (the chroot starts with none)."""
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}


def shell_exports(variables: dict[str, str]) -> str:
    return "".join(f"export {name}='{value}'\n" for name, value in variables.items())
