"""`python -m cfs_demo` (`make demo`): the whole product on one machine, no cloud account.

Starts the reference CFS service (serving each file system over NFS with nfs-ganesha when it is
installed), the controller and the node plugin (`cfs-csi-driver --mode controller|node`, each on
its own unix socket; the node in a private mount namespace), then walks a volume through the
real gRPC API as Kubernetes would: CreateVolume, NodeStage, NodePublish, write and read a file,
NodeGetVolumeStats, snapshot, restore into a second volume and read the file back, expand,
unpublish, unstage, delete. Every step prints what happened.

Where the kernel has no NFS client (this project's CI machines), NodeStageVolume fails for real:
the demo says so, prints the exact mount command the node ran, and proves the data path through
the export with libnfs (`nfs-cp` / `nfs-cat`, a user-space NFS client) instead. It never
pretends that a mount happened.
"""

from __future__ import annotations

import argparse
import errno
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import grpc

from cfs_csi.contract import NFS_PORT
from cfs_csi.csipb import csi_pb2, csi_pb2_grpc
from cfs_csi.node import nfs_mount_command, nfs_unreachable, nfs_volume
from cfs_csi.status import RpcError
from cfs_demo.guest import missing as guest_missing
from cfs_demo.guest_node import GuestNode
from cfs_demo.harness import Processes, Report, StepFailed, channel_ready, wait_for

REGION = "ap-shanghai-fsi"
ZONE = "ap-shanghai-fsi-1"
GIB = 1 << 30
FILE_NAME = "hello-cfs.txt"
FILE_TEXT = "hello from the cfs-csi demo\n"
RPC_TIMEOUT = 180.0
GUEST_START_TIMEOUT = 300.0  # a boot under software emulation, then Python in the guest
NODE_AUTO, NODE_ON_HOST, NODE_IN_VM = "auto", "host", "vm"
SNAPSHOT_READY_TIMEOUT = 120.0
LIBNFS_TOOLS = ("nfs-cp", "nfs-cat")
LOG_TAIL_LINES = 15  # of each component's log, printed when the demo fails


def mount_capability() -> csi_pb2.VolumeCapability:
    """What a ReadWriteMany filesystem PVC asks for."""
    return csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(),
        access_mode=csi_pb2.VolumeCapability.AccessMode(
            mode=csi_pb2.VolumeCapability.AccessMode.MULTI_NODE_MULTI_WRITER
        ),
    )


def rpc_error_text(err: grpc.RpcError) -> str:
    return f"{err.code().name}: {err.details()}"


def kernel_has_nfs_client() -> bool:
    """The kernel lists nfs/nfs4 in /proc/filesystems once its NFS client is loaded or built in."""
    kinds = {line.split()[-1] for line in Path("/proc/filesystems").read_text().splitlines() if line}
    return bool(kinds & {"nfs", "nfs4"})


def failed_for_lack_of_nfs_client(err: grpc.RpcError) -> bool:
    """The node really ran mount, and the kernel refused the nfs type (ENODEV): nothing else.

    Any other failure (an unreachable mount target, a refused export) is the demo failing.
    """
    return not kernel_has_nfs_client() and os.strerror(errno.ENODEV) in (err.details() or "")


def libnfs_url(server: str, name: str) -> str:
    """A file at the root of the NFSv4 export "/" (libnfs: export path, then the file's path)."""
    return f"nfs://{server}//{name}?version=4"


def node_kernel_for(choice: str) -> str:
    """Where the node plugin runs: this machine when its kernel mounts NFS, else a VM guest
    where QEMU and a kernel are installed, else this machine (NodeStage then fails honestly)."""
    if choice != NODE_AUTO:
        return choice
    if kernel_has_nfs_client() or guest_missing() is not None:
        return NODE_ON_HOST
    return NODE_IN_VM


class Demo:
    def __init__(self, workdir: Path, stack: ExitStack, create_delay: float, node_kernel: str):
        self.workdir = workdir
        self.node_kernel = node_kernel
        self.guest_node: GuestNode | None = None
        self.node_process: subprocess.Popen[bytes] | None = None
        self.stack = stack
        self.create_delay = create_delay
        self.processes = Processes(stack, workdir)
        self.report = Report()
        self.secret_id = "AKID" + secrets.token_hex(16)
        self.secret_key = secrets.token_hex(16)
        self.base_env = {k: v for k, v in os.environ.items() if not k.startswith(("TENCENTCLOUD_", "CFS_"))}

    # --- starting the pieces ---------------------------------------------------------------
    def start_reference(self) -> str:
        port_file = self.workdir / "reference.port"
        argv = [
            sys.executable,
            "-m",
            "cfs_reference",
            "--listen",
            "127.0.0.1:0",
            "--port-file",
            str(port_file),
            "--state-dir",
            str(self.workdir / "reference"),
            "--region",
            REGION,
            "--create-delay",
            str(self.create_delay),
            "--nfs",
            "auto",
            "--log-level",
            "WARNING",
        ]
        env = dict(self.base_env, CFS_REFERENCE_CREDENTIALS=f"{self.secret_id}:{self.secret_key}")
        process = self.processes.start("reference", argv, env)

        def healthy() -> bool:
            if not port_file.exists() or not port_file.read_text().strip():
                return False
            try:
                url = f"http://127.0.0.1:{port_file.read_text().strip()}/healthz"
                with urllib.request.urlopen(url, timeout=2):
                    return True
            except OSError:
                return False

        wait_for(healthy, "the reference service", process)
        return f"http://127.0.0.1:{port_file.read_text().strip()}"

    def start_driver(
        self, mode: str, env: dict[str, str], *flags: str, prefix: tuple[str, ...] = ()
    ) -> tuple[grpc.Channel, subprocess.Popen]:
        sock = self.workdir / f"{mode}.sock"
        argv = [
            *prefix,
            sys.executable,
            "-m",
            "cfs_csi",
            "--mode",
            mode,
            "--endpoint",
            f"unix://{sock}",
            "--zone",
            ZONE,
            "--log-level",
            "INFO",
            *flags,
        ]
        process = self.processes.start(mode, argv, env)
        channel = grpc.insecure_channel(f"unix://{sock}")
        self.stack.callback(channel.close)

        wait_for(lambda: channel_ready(channel), f"cfs-csi-driver --mode {mode}", process)
        return channel, process

    # --- the walk -----------------------------------------------------------------------------
    def run(self) -> int:
        step = self.report.step
        url = self.start_reference()
        step(
            "Start the reference CFS service",
            "ok",
            f"API at {url}",
            "the CFS API as documented; file systems are served by nfs-ganesha when installed",
        )

        cloud_env = dict(
            self.base_env,
            TENCENTCLOUD_SECRET_ID=self.secret_id,
            TENCENTCLOUD_SECRET_KEY=self.secret_key,
            CFS_ENDPOINT=url,
            TENCENTCLOUD_REGION=REGION,
        )
        channel, _ = self.start_driver(
            "controller", cloud_env, "--default-allowed-clients", "127.0.0.0/8", "--create-timeout", "120"
        )
        controller = csi_pb2_grpc.ControllerStub(channel)
        step(
            "Start the controller plugin",
            "ok",
            f"cfs-csi-driver --mode controller on {self.workdir / 'controller.sock'}",
        )
        node_flags = ("--node-id", "demo-node", "--zone", ZONE, "--mount-timeout", "30")
        if self.node_kernel == NODE_IN_VM:
            # The node plugin in a guest whose kernel mounts NFS; its paths are the guest's.
            self.guest_node = GuestNode(self.workdir / "guest", *node_flags)
            self.stack.callback(self.guest_node.stop)
            channel = grpc.insecure_channel(self.guest_node.address)
            self.stack.callback(channel.close)
            qemu = self.guest_node.running.process
            wait_for(lambda: channel_ready(channel), "the node plugin in the VM", qemu, GUEST_START_TIMEOUT)
            kubelet = Path("/var/lib/kubelet")
            where = (
                f"in a QEMU guest: Debian's kernel {self.guest_node.guest.kernel_version}, which mounts NFS"
            )
        else:
            # The node needs no cloud credentials; `unshare` execs it, so the pid is the plugin's.
            kubelet = self.workdir / "kubelet"
            channel, self.node_process = self.start_driver(
                "node",
                self.base_env,
                *node_flags,
                "--kubelet-dir",
                str(kubelet),
                prefix=("unshare", "-m", "--propagation", "private"),
            )
            where = "in a private mount namespace: nothing it mounts reaches this machine's mount table"
        node = csi_pb2_grpc.NodeStub(channel)
        info = node.NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=RPC_TIMEOUT)
        step(
            "Start the node plugin",
            "ok",
            f"cfs-csi-driver --mode node, node id {info.node_id}, topology "
            f"{dict(info.accessible_topology.segments)}",
            where,
        )

        volume = self.create_volume(controller, "demo-volume")
        staging = kubelet / "plugins/demo-volume/globalmount"
        target = kubelet / "pods/demo-pod/volumes/demo-volume/mount"
        staged = self.stage(node, volume, staging)
        published = self.publish(node, volume, staging, target, staged)
        self.write_and_read(volume, target if published else None)
        self.volume_stats(node, volume, target, published)

        snapshot = self.snapshot(controller, volume)
        restored = self.create_volume(controller, "demo-restored", snapshot_id=snapshot.snapshot_id)
        self.read_restored(restored)
        self.expand(controller, volume)

        node.NodeUnpublishVolume(
            csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume.volume_id, target_path=str(target)),
            timeout=RPC_TIMEOUT,
        )
        step(
            "NodeUnpublishVolume",
            "ok",
            f"{target} unmounted and removed"
            if published
            else "nothing was published; the call is idempotent",
        )
        node.NodeUnstageVolume(
            csi_pb2.NodeUnstageVolumeRequest(volume_id=volume.volume_id, staging_target_path=str(staging)),
            timeout=RPC_TIMEOUT,
        )
        step(
            "NodeUnstageVolume",
            "ok",
            f"{staging} unmounted and removed" if staged else "nothing was staged; the call is idempotent",
        )

        controller.DeleteSnapshot(
            csi_pb2.DeleteSnapshotRequest(snapshot_id=snapshot.snapshot_id), timeout=RPC_TIMEOUT
        )
        step("DeleteSnapshot", "ok", f"{snapshot.snapshot_id} deleted")
        for each in (restored, volume):
            controller.DeleteVolume(
                csi_pb2.DeleteVolumeRequest(volume_id=each.volume_id), timeout=RPC_TIMEOUT
            )
            step("DeleteVolume", "ok", f"{each.volume_id} deleted")
        counts = self.report.counts
        print(f"demo finished: {counts['ok']} steps ok, {counts['skipped']} skipped", flush=True)
        return 0

    def create_volume(self, controller, name: str, snapshot_id: str = "") -> csi_pb2.Volume:
        source = (
            csi_pb2.VolumeContentSource(
                snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=snapshot_id)
            )
            if snapshot_id
            else None
        )
        volume = controller.CreateVolume(
            csi_pb2.CreateVolumeRequest(
                name=name,
                capacity_range=csi_pb2.CapacityRange(required_bytes=10 * GIB),
                volume_capabilities=[mount_capability()],
                volume_content_source=source,
            ),
            timeout=RPC_TIMEOUT,
        ).volume
        origin = f" from snapshot {snapshot_id}" if snapshot_id else ""
        self.report.step(
            f"CreateVolume {name}{origin}",
            "ok",
            f"{volume.volume_id}, {volume.capacity_bytes // GIB} GiB",
            f"volume context: {dict(sorted(volume.volume_context.items()))}",
        )
        return volume

    def stage(self, node, volume: csi_pb2.Volume, staging: Path) -> bool:
        try:
            planned = nfs_volume(volume.volume_context)
        except RpcError as err:
            raise StepFailed(f"the volume context is not mountable: {err}") from None
        command = " ".join(
            nfs_mount_command(
                planned.server, planned.export_path, str(staging), list(planned.options.options)
            )
        )
        try:
            node.NodeStageVolume(
                csi_pb2.NodeStageVolumeRequest(
                    volume_id=volume.volume_id,
                    staging_target_path=str(staging),
                    volume_capability=mount_capability(),
                    volume_context=volume.volume_context,
                ),
                timeout=RPC_TIMEOUT,
            )
        except grpc.RpcError as err:
            if not failed_for_lack_of_nfs_client(err):
                raise StepFailed(f"NodeStageVolume: {rpc_error_text(err)}") from None
            self.report.step(
                "NodeStageVolume",
                "skipped",
                "this machine's kernel has no NFS client, so nothing was mounted",
                f"the node plugin answered {rpc_error_text(err)}",
                f"on a Kubernetes node it mounts with: {command}",
                f"the mount target {planned.server}:{NFS_PORT} answered the node's probe; the "
                "data steps below use libnfs (a user-space NFS client) against it instead of a "
                "mount",
            )
            return False
        kernel = "the guest's" if self.guest_node else "this machine's"
        self.report.step(
            "NodeStageVolume", "ok", f"mounted at {staging} by {kernel} kernel", f"ran: {command}"
        )
        return True

    def publish(self, node, volume: csi_pb2.Volume, staging: Path, target: Path, staged: bool) -> bool:
        if not staged:
            self.report.step(
                "NodePublishVolume",
                "skipped",
                "nothing is staged (the kubelet publishes only after NodeStageVolume succeeded)",
            )
            return False
        node.NodePublishVolume(
            csi_pb2.NodePublishVolumeRequest(
                volume_id=volume.volume_id,
                staging_target_path=str(staging),
                target_path=str(target),
                volume_capability=mount_capability(),
                volume_context=volume.volume_context,
            ),
            timeout=RPC_TIMEOUT,
        )
        self.report.step("NodePublishVolume", "ok", f"bind-mounted at {target}")
        return True

    def write_and_read(self, volume: csi_pb2.Volume, target: Path | None) -> None:
        server = volume.volume_context["server"]
        if target is not None and self.guest_node is not None:
            code, output = self.guest_node.sh(
                f"cat > {target / FILE_NAME} <<'END'\n{FILE_TEXT}END\ncat {target / FILE_NAME}"
            )
            if code != 0:
                raise StepFailed(f"writing in the guest failed: {output.strip()}")
            text = output
            how = f"through the pod's mount {target}, in the guest"
        elif target is not None and self.node_process is not None:
            inside = ["nsenter", "-t", str(self.node_process.pid), "-m", "--"]
            subprocess.run(
                [*inside, "tee", str(target / FILE_NAME)],
                input=FILE_TEXT,
                text=True,
                check=True,
                capture_output=True,
            )
            text = run_tool([*inside, "cat", str(target / FILE_NAME)])
            how = f"through the pod's mount {target}"
        else:
            require_libnfs(server)
            local = self.workdir / FILE_NAME
            local.write_text(FILE_TEXT)
            run_tool(["nfs-cp", str(local), libnfs_url(server, FILE_NAME)])
            text = run_tool(["nfs-cat", libnfs_url(server, FILE_NAME)])
            how = f"over NFSv4 with libnfs (nfs-cp, nfs-cat) at {libnfs_url(server, FILE_NAME)}"
        if text != FILE_TEXT:
            raise StepFailed(f"read back {text!r}, wrote {FILE_TEXT!r}")
        self.report.step("Write and read a file", "ok", f"{FILE_NAME} = {text.strip()!r}", how)

    def volume_stats(self, node, volume: csi_pb2.Volume, target: Path, published: bool) -> None:
        try:
            stats = node.NodeGetVolumeStats(
                csi_pb2.NodeGetVolumeStatsRequest(volume_id=volume.volume_id, volume_path=str(target)),
                timeout=RPC_TIMEOUT,
            )
        except grpc.RpcError as err:
            if published:
                raise StepFailed(f"NodeGetVolumeStats: {rpc_error_text(err)}") from None
            self.report.step(
                "NodeGetVolumeStats",
                "skipped",
                "statistics come from the mounted volume",
                f"the node plugin answered {rpc_error_text(err)}",
            )
            return
        usage = {u.unit: u for u in stats.usage}
        size, inodes = usage[csi_pb2.VolumeUsage.BYTES], usage[csi_pb2.VolumeUsage.INODES]
        self.report.step(
            "NodeGetVolumeStats",
            "ok",
            f"{size.used} of {size.total} bytes used, {inodes.used} inodes used",
            f"condition: {stats.volume_condition.message}",
        )

    def snapshot(self, controller, volume: csi_pb2.Volume) -> csi_pb2.Snapshot:
        snapshot = controller.CreateSnapshot(
            csi_pb2.CreateSnapshotRequest(source_volume_id=volume.volume_id, name="demo-snapshot"),
            timeout=RPC_TIMEOUT,
        ).snapshot
        deadline = time.monotonic() + SNAPSHOT_READY_TIMEOUT
        while not snapshot.ready_to_use:
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"snapshot {snapshot.snapshot_id} not ready after {SNAPSHOT_READY_TIMEOUT:g}s"
                )
            time.sleep(0.5)
            snapshot = controller.GetSnapshot(
                csi_pb2.GetSnapshotRequest(snapshot_id=snapshot.snapshot_id), timeout=RPC_TIMEOUT
            ).snapshot
        self.report.step(
            "CreateSnapshot", "ok", f"{snapshot.snapshot_id} ready to use, {snapshot.size_bytes} bytes"
        )
        return snapshot

    def read_restored(self, restored: csi_pb2.Volume) -> None:
        server = restored.volume_context["server"]
        require_libnfs(server)
        text = run_tool(["nfs-cat", libnfs_url(server, FILE_NAME)])
        if text != FILE_TEXT:
            raise StepFailed(f"the restored volume holds {text!r}, not {FILE_TEXT!r}")
        self.report.step(
            "Read the file from the restored volume",
            "ok",
            f"{FILE_NAME} = {text.strip()!r}",
            f"over NFSv4 with libnfs at {libnfs_url(server, FILE_NAME)}",
        )

    def expand(self, controller, volume: csi_pb2.Volume) -> None:
        reply = controller.ControllerExpandVolume(
            csi_pb2.ControllerExpandVolumeRequest(
                volume_id=volume.volume_id, capacity_range=csi_pb2.CapacityRange(required_bytes=20 * GIB)
            ),
            timeout=RPC_TIMEOUT,
        )
        self.report.step(
            "ControllerExpandVolume",
            "ok",
            f"{reply.capacity_bytes // GIB} GiB, node expansion "
            f"{'required' if reply.node_expansion_required else 'not needed'}",
        )


def require_libnfs(server: str) -> None:
    missing = [tool for tool in LIBNFS_TOOLS if shutil.which(tool) is None]
    if missing:
        raise StepFailed(f"{', '.join(missing)} not installed (Debian package libnfs-utils)")
    if nfs_unreachable(server):
        raise StepFailed(
            f"no NFS server at {server}:{NFS_PORT}: the reference service serves "
            "its file systems only where nfs-ganesha can run (its log's 'NFS data "
            "plane disabled' line says why not)"
        )


def run_tool(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise StepFailed(f"{' '.join(argv)} failed: {result.stderr.strip() or result.stdout}")
    return result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cfs_demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep state and logs here (default: a temporary directory, removed afterwards)",
    )
    parser.add_argument(
        "--create-delay",
        type=float,
        default=1.0,
        help="seconds the reference service takes to create a file system",
    )
    parser.add_argument(
        "--node-kernel",
        choices=(NODE_AUTO, NODE_ON_HOST, NODE_IN_VM),
        default=NODE_AUTO,
        help="where the node plugin runs: this machine, a QEMU guest with Debian's kernel, or "
        "auto (this machine if its kernel mounts NFS, else the guest if QEMU is installed)",
    )
    args = parser.parse_args(argv)
    if not args.create_delay >= 0:
        parser.error(f"--create-delay: {args.create_delay:g} is not a number of seconds >= 0")
    if os.geteuid() != 0:
        print("the demo mounts and starts an NFS server: run it as root", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        if args.workdir:
            workdir = args.workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cfs-demo-")))
        if args.node_kernel == NODE_IN_VM and (reason := guest_missing()):
            parser.error(f"--node-kernel vm: {reason}")
        demo = Demo(workdir, stack, args.create_delay, node_kernel_for(args.node_kernel))
        try:
            return demo.run()
        except (StepFailed, grpc.RpcError) as err:
            reason = rpc_error_text(err) if isinstance(err, grpc.RpcError) else str(err)
            print(f"demo FAILED: {reason}", flush=True)
            for log in sorted(workdir.glob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                print(f"--- last lines of {log.name}", *tail, sep="\n", flush=True)
            return 1
