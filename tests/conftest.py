"""Fixtures shared by every test folder: the reference CFS service and a client for it."""

import pytest


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
