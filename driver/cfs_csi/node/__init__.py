"""The node side of the CSI plugin: NFS mounts on the kubelet's paths.

servicer.py (the Node service), mounter.py (mount commands under timeouts, the mount table),
mount_options.py (the vendor's options, merged with user options against an allowlist). It
reads what cfs_csi.contract describes and imports nothing of the controller or the cloud client.
The names below are the node's public interface (the demo and the controller's share mounts use
them).
"""

from cfs_csi.node.mounter import Mounter, nfs_mount_command
from cfs_csi.node.servicer import NfsVolume, NodeServicer, build_node, nfs_unreachable, nfs_volume

__all__ = [
    "Mounter",
    "NfsVolume",
    "NodeServicer",
    "build_node",
    "nfs_mount_command",
    "nfs_unreachable",
    "nfs_volume",
]
