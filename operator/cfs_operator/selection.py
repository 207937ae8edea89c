"""persistentVolumeClaimSelector → CFS file-system ids. Pure functions over indexed records.

The operator indexes Namespaces, PersistentVolumeClaims and PersistentVolumes (kopf indices) into
the small records below; a policy's selector is resolved against them in memory, so following
claims as they come, change labels or go costs no API call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cfs_operator.specs import ClaimSelector, LabelSelector

DRIVER_NAME = "cfs.csi.tencentcloud.com"
_CFS_ID = re.compile(r"^cfs-[0-9a-z]+$")


@dataclass(frozen=True)
class ClaimRecord:
    namespace: str
    name: str
    labels: tuple[tuple[str, str], ...]
    volume_name: str


@dataclass(frozen=True)
class VolumeRecord:
    file_system_id: str
    claim: tuple[str, str] | None  # (namespace, name) from spec.claimRef


def file_system_id_of_volume(pv: Mapping[str, Any]) -> str | None:
    """The CFS file system behind a PersistentVolume of our driver, else None.

    Volume ids are ``fs:<FileSystemId>`` or ``subdir:<FileSystemId>:<path>`` (docs/ARCHITECTURE.md);
    static volumes may instead carry ``volumeAttributes.fileSystemId``.
    """
    csi = (pv.get("spec") or {}).get("csi") or {}
    if csi.get("driver") != DRIVER_NAME:
        return None
    handle = str(csi.get("volumeHandle") or "")
    kind, _, rest = handle.partition(":")
    candidate = rest.split(":", 1)[0] if kind in ("fs", "subdir") else ""
    if not _CFS_ID.match(candidate):
        candidate = str((csi.get("volumeAttributes") or {}).get("fileSystemId") or "")
    return candidate if _CFS_ID.match(candidate) else None


def volume_record(pv: Mapping[str, Any]) -> VolumeRecord | None:
    file_system_id = file_system_id_of_volume(pv)
    if file_system_id is None:
        return None
    claim_ref = (pv.get("spec") or {}).get("claimRef") or {}
    claim = (claim_ref["namespace"], claim_ref["name"]) if claim_ref.get("name") else None
    return VolumeRecord(file_system_id, claim)


def claim_record(pvc: Mapping[str, Any]) -> ClaimRecord | None:
    """Only claims bound to a volume matter; unbound ones have no file system yet."""
    volume_name = (pvc.get("spec") or {}).get("volumeName")
    if not volume_name:
        return None
    metadata = pvc.get("metadata") or {}
    return ClaimRecord(
        namespace=metadata.get("namespace", ""),
        name=metadata.get("name", ""),
        labels=tuple(sorted((metadata.get("labels") or {}).items())),
        volume_name=volume_name,
    )


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics; the empty selector matches everything."""
    if any(labels.get(key) != value for key, value in selector.match_labels):
        return False
    for key, operator, values in selector.match_expressions:
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def resolve_file_systems(
    selector: ClaimSelector,
    namespaces: Mapping[str, Mapping[str, str]],
    claims: Iterable[ClaimRecord],
    volumes: Mapping[str, VolumeRecord],
) -> set[str]:
    """File systems behind the claims the selector picks (namespace labels, then claim labels)."""
    found: set[str] = set()
    for claim in claims:
        namespace_labels = namespaces.get(claim.namespace)
        if namespace_labels is None or not selector_matches(selector.namespace_selector, namespace_labels):
            continue
        if not selector_matches(selector.label_selector, dict(claim.labels)):
            continue
        volume = volumes.get(claim.volume_name)
        # A volume bound to another claim (claimRef) is not this claim's, e.g. while re-binding.
        if volume is None or (volume.claim is not None and volume.claim != (claim.namespace, claim.name)):
            continue
        found.add(volume.file_system_id)
    return found
