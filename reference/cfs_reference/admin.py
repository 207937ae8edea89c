"""GET /_admin/state: every resource, rendered as the 2019-07-19 API shows it plus what tests need
to see behind the API (DataDir, Region, a file system's Tags)."""

from __future__ import annotations

from typing import Any

from cfs_reference.api import views
from cfs_reference.backend import Backend
from cfs_reference.backend.state import FILE_SYSTEM, PGROUP, POLICY, RULE, SNAPSHOT


def state_snapshot(backend: Backend) -> dict[str, Any]:
    tables = backend.state.tables
    return {
        "FileSystems": [
            {
                **views.file_system_info(backend, fs),
                **views.mount_info(backend, fs),
                "Region": fs["region"],
                "DataDir": str(backend.state.data_dir(fs["id"])),
                "Tags": views.tag_list(fs["tags"]),  # CreateCfsFileSystem's ResourceTags
            }
            for fs in tables[FILE_SYSTEM].values()
        ],
        "PGroups": [
            {**views.pgroup_info(backend, group["region"], group), "Region": group["region"]}
            for group in tables[PGROUP].values()
        ],
        "Rules": [{**views.rule_info(rule), "PGroupId": rule["pgroup_id"]} for rule in tables[RULE].values()],
        "Snapshots": [
            {**views.snapshot_info(snap), "DataDir": str(backend.state.snapshot_dir(snap["id"]))}
            for snap in tables[SNAPSHOT].values()
        ],
        "AutoSnapshotPolicies": [views.policy_info(backend, policy) for policy in tables[POLICY].values()],
        "Bindings": [
            {"AutoSnapshotPolicyId": policy["id"], "FileSystemId": fs_id}
            for policy in tables[POLICY].values()
            for fs_id in policy["fs_ids"]
        ],
        "CfsServiceStatus": backend.service_status(),
    }
