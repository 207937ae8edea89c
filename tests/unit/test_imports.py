"""The node plugin needs no cloud credentials and never loads the cloud client or the SDK, even
though it shares the rule vocabulary (`cfs_cloud.rules`) with the controller and the operator."""

import subprocess
import sys


def test_the_node_plugin_loads_neither_the_cloud_client_nor_the_sdk():
    probe = ("import sys, cfs_csi.node, cfs_csi.params; "
             "print(sorted(m for m in sys.modules "
             "if m.startswith('tencentcloud') or m == 'cfs_cloud.client'))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"


def test_the_cloud_client_names_still_import_from_the_package():
    from cfs_cloud import CfsClient, CloudConfig, grpc_status_for  # noqa: F401 (import is the test)
    import cfs_cloud

    assert sorted(cfs_cloud.__all__) == cfs_cloud.__all__ and "CfsClient" in cfs_cloud.__all__
