"""A cfs_cloud client for a running reference service (tests and benchmarks)."""

from cfs_cloud import CfsClient, CloudConfig


def cloud_config(ref, **overrides) -> CloudConfig:
    """The reference's endpoint, region and first key pair; `overrides` may replace any field."""
    fields = dict(endpoint=ref.url, region=ref.region, secret_id=ref.secret_id, secret_key=ref.secret_key)
    return CloudConfig(**{**fields, **overrides})


def cloud_client(ref, **overrides) -> CfsClient:
    return CfsClient(cloud_config(ref, **overrides))
