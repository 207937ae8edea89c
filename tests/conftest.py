"""Fixtures shared by every test folder (the reference CFS service and a client for it), and one
marker per component folder, so `pytest -m node` runs the node's tests wherever they live."""

from pathlib import Path

import pytest

COMPONENT_FOLDERS = (
    "chart",
    "cloud",
    "controller",
    "driver",
    "e2e",
    "node",
    "operator",
    "reference",
    "vm",
    "cluster",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(item.path).parent.name
        if folder in COMPONENT_FOLDERS:
            item.add_marker(folder)


@pytest.fixture
def reference(tmp_path):
    """A real reference CFS service over HTTP on a random loopback port (NFS off)."""
    from tests.support.reference import running_reference

    with running_reference(tmp_path / "reference", create_delay=0.05, nfs="off") as ref:
        yield ref


@pytest.fixture
def cloud_config(reference):
    from tests.support.cloud import cloud_config

    return cloud_config(reference)


@pytest.fixture
def cloud_client(cloud_config):
    from cfs_cloud import CfsClient

    return CfsClient(cloud_config)
