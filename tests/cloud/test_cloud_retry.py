"""Retry classification and jittered exponential backoff."""

import random

import pytest

from cfs_cloud.errors import CfsNetworkError, error_for
from cfs_cloud.retry import Backoff, is_idempotent, is_retryable


@pytest.mark.parametrize(
    "code",
    [
        "RequestLimitExceeded",
        "RequestLimitExceeded.UinLimitExceeded",
        "InternalError",
        "InternalError.CreateFsFailed",
    ],
)
def test_throttling_and_internal_errors_are_retried_for_every_action(code):
    assert is_retryable("DescribeCfsFileSystems", error_for(code))
    assert is_retryable("CreateCfsFileSystem", error_for(code))


@pytest.mark.parametrize(
    "code",
    [
        "InvalidParameter",
        "InvalidParameterValue.InvalidFsName",
        "MissingParameter",
        "ResourceNotFound.FileSystemNotFound",
        "AuthFailure.SignatureFailure",
        "AuthFailure.UnauthorizedOperation",
        "UnauthorizedOperation",
        "FailedOperation.PgroupInUse",
        "ResourceInsufficient.RegionSoldOut",
    ],
)
def test_permanent_errors_are_never_retried(code):
    assert not is_retryable("DescribeCfsFileSystems", error_for(code))


def test_network_errors_retry_creates_only_when_nothing_was_sent():
    refused = CfsNetworkError("ClientNetworkError", "refused", maybe_sent=False)
    reset = CfsNetworkError("ClientNetworkError", "read timeout", maybe_sent=True)
    assert is_retryable("CreateCfsFileSystem", refused)
    assert not is_retryable("CreateCfsFileSystem", reset)
    assert not is_retryable("CopyFileSystemSnapshotCrossRegion", reset)
    assert is_retryable("DescribeCfsFileSystems", reset)
    assert is_retryable("DeleteCfsFileSystem", reset)


def test_idempotency_by_action_name():
    assert not is_idempotent("CreateCfsSnapshot")
    assert is_idempotent("UpdateCfsRule")


def test_backoff_is_jittered_and_bounded():
    backoff = Backoff(base=0.05, cap=2.0, rng=random.Random(7))
    for attempt in range(40):
        ceiling = min(2.0, 0.05 * 2**attempt)
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 150  # jitter: not a fixed schedule
    late = [backoff.delay(10) for _ in range(500)]
    assert max(late) > 1.5  # grows to the cap
