"""One Kubernetes Service per file system, for the in-cluster mount-target scheme.

The Service's ClusterIP is the mount-target IP DescribeMountTargets reports; its port 2049
forwards to that file system's own ganesha port on the reference pod. So nodes mount
`<ClusterIP>:/` with the vendor's options, exactly as they would mount CFS.
"""

from __future__ import annotations

import logging
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from cfs_reference.nfs.ganesha_config import NFS_PORT
from cfs_reference.nfs.kube_api import KubeApi, KubeApiError
from cfs_reference.nfs.model import DataPlaneError, MountTargetRefused

OWNER_LABEL = "cfs.tencentcloud.com/file-system-id"
MANAGED_BY = ("app.kubernetes.io/managed-by", "cfs-reference")
SERVICE_NAME_PREFIX = "mount-"  # mount-cfs-1a2b3c4d
PORT_NAME = "nfs"
HTTP_NOT_FOUND, HTTP_CONFLICT, HTTP_UNPROCESSABLE = 404, 409, 422

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MountTarget:
    file_system_id: str
    ip_address: str  # the ClusterIP
    port: int  # ganesha's port on the reference pod

    @property
    def service_name(self) -> str:
        return SERVICE_NAME_PREFIX + self.file_system_id


class MountTargetServices:
    """Creates, deletes and reconciles the mount-target Services in the pod's namespace;
    selector is the reference pod's labels."""

    def __init__(self, api: KubeApi, selector: dict[str, str]):
        self._api = api
        self._selector = dict(selector)
        self._collection = f"/api/v1/namespaces/{api.namespace}/services"

    def manifest(self, target: MountTarget) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": target.service_name,
                "namespace": self._api.namespace,
                "labels": {OWNER_LABEL: target.file_system_id, MANAGED_BY[0]: MANAGED_BY[1]},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": target.ip_address,
                "selector": dict(self._selector),
                "ports": [{"name": PORT_NAME, "protocol": "TCP", "port": NFS_PORT,
                           "targetPort": target.port}],
            },
        }  # fmt: skip

    def owned(self) -> dict[str, dict[str, Any]]:
        """file-system id -> its Service, for every Service carrying the owner label."""
        reply = self._api.request("GET", self._collection, query={"labelSelector": OWNER_LABEL})
        # Filtered again here: a Service without the label must never be taken for ours.
        return {
            item["metadata"]["labels"][OWNER_LABEL]: item
            for item in reply.get("items", [])
            if OWNER_LABEL in (item.get("metadata", {}).get("labels") or {})
        }

    def create(self, target: MountTarget) -> None:
        """MountTargetRefused when the API server refuses the ClusterIP (already allocated, or
        outside the service CIDR): retrying cannot help. KubeApiError for anything else."""
        try:
            self._api.request("POST", self._collection, self.manifest(target))
        except KubeApiError as error:
            if error.status == HTTP_UNPROCESSABLE:
                raise MountTargetRefused(
                    f"mount target {target.ip_address} of {target.file_system_id}: the API server "
                    f"refused Service {target.service_name}: {error}"
                ) from None
            raise
        log.info("created Service %s (%s:%d -> pod port %d)", target.service_name,
                 target.ip_address, NFS_PORT, target.port)  # fmt: skip

    def delete(self, service_name: str) -> None:
        try:
            self._api.request("DELETE", f"{self._collection}/{service_name}")
        except KubeApiError as error:
            if error.status != HTTP_NOT_FOUND:
                raise
        log.info("deleted Service %s", service_name)

    def matches(self, service: dict[str, Any], target: MountTarget) -> bool:
        """Does an existing Service route exactly like the one manifest(target) describes?
        (Only the fields we set: the API server adds its own defaults.)"""
        spec = service.get("spec") or {}
        routes = [(port.get("port"), port.get("targetPort")) for port in spec.get("ports") or ()]
        return (
            service["metadata"].get("name") == target.service_name
            and spec.get("clusterIP") == target.ip_address
            and routes == [(NFS_PORT, target.port)]
            and spec.get("selector") == self._selector
        )

    def ensure(self, target: MountTarget) -> None:
        """Make target's Service exist now. Our Services that hold its IP for another file
        system are stale (the backend hands each IP to one file system; a deleted one's Service
        may not be reconciled away yet), so they go first."""
        owned = self.owned()
        existing = owned.pop(target.file_system_id, None)
        for service in owned.values():
            if (service.get("spec") or {}).get("clusterIP") == target.ip_address:
                self.delete(service["metadata"]["name"])
        if existing is not None and self.matches(existing, target):
            return
        if existing is not None:
            self.delete(existing["metadata"]["name"])
        self.create(target)

    def reconcile(self, targets: list[MountTarget], keep: AbstractSet[str] = frozenset()) -> None:
        """Exactly these targets get a Service: missing ones are created, ones that route
        elsewhere are replaced (a ClusterIP cannot change in place), and Services of other
        file systems are deleted, except those in keep (claimed, not served yet).
        DataPlaneError naming every Service that failed; the others are done regardless."""
        existing = self.owned()
        wanted = {target.file_system_id: target for target in targets}
        failures = []
        for file_system_id, service in sorted(existing.items()):
            target = wanted.get(file_system_id)
            if target is None and file_system_id in keep:
                continue
            if target is None or not self.matches(service, target):
                try:
                    self.delete(service["metadata"]["name"])
                except KubeApiError as error:
                    failures.append(str(error))
                existing.pop(file_system_id)
        for file_system_id, target in sorted(wanted.items()):
            if file_system_id not in existing:
                try:
                    self.create(target)
                except DataPlaneError as error:
                    failures.append(str(error))
        if failures:
            raise DataPlaneError("; ".join(failures))
