"""cfs_cloud under load and failure, against the real reference service: injected faults,
rate limits as the server counts them, coalesced waiting, and a dead endpoint."""

import collections
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest
from prometheus_client import REGISTRY

from cfs_cloud import CallTimeout, CfsInternalError, CfsNetworkError
from cfs_cloud.limits import DOCUMENTED_RATE_LIMITS
from tests.support.cloud import cloud_client as client_for
from tests.support.local import eventually


def fs_params(reference, name):
    return {
        "Zone": f"{reference.region}-1",
        "NetInterface": "VPC",
        "PGroupId": "pgroupbasic",
        "VpcId": "vpc-cloudtest",
        "SubnetId": "subnet-cloudtest",
        "FsName": name,
    }


def call_log(reference, action):
    return reference.admin.calls().get(action, {}).get("calls", [])


# The limiter spaces *sends* at 95 % of the limit (unit-tested exactly in test_cloud_limits);
# the server sees *arrivals*, which scheduling on a loaded machine can bunch. The margin absorbs
# up to 1/0.95 - 1 s ≈ 52 ms of such jitter per second, so a window shortened by 50 ms must
# never hold more than the limit at the server.
DELIVERY_JITTER_ALLOWANCE = 0.05


def max_calls_per_second(timestamps):
    """Most arrivals in any sliding window of one second less the jitter allowance."""
    window = 1.0 - DELIVERY_JITTER_ALLOWANCE
    timestamps = sorted(timestamps)
    return max(sum(1 for u in timestamps if t <= u < t + window) for t in timestamps)


WORKLOAD_ACTIONS = (
    "CreateCfsPGroup",
    "CreateCfsFileSystem",
    "DescribeCfsFileSystems",
    "DescribeCfsRules",
    "DeleteCfsFileSystem",
    "DeleteCfsPGroup",
)


def metric_total(name):
    return sum(REGISTRY.get_sample_value(name, {"action": action}) or 0 for action in WORKLOAD_ACTIONS)


def test_every_call_succeeds_through_throttling_and_internal_errors(reference):
    client = client_for(reference)
    reference.admin.set_faults(
        [
            {"action": "*", "code": "RequestLimitExceeded", "rate": 0.3},
            {"action": "*", "code": "InternalError", "rate": 0.05},
        ]
    )
    retries_before = metric_total("cfs_cloud_retries_total")
    throttled_before = metric_total("cfs_cloud_throttled_total")

    def workload(i):
        name = f"fault-{i}-{uuid.uuid4().hex[:6]}"
        group = client.call("CreateCfsPGroup", {"Name": f"g{i}{uuid.uuid4().hex[:6]}"})
        fs_id = client.call("CreateCfsFileSystem", fs_params(reference, name))["FileSystemId"]
        info = client.wait_file_system_available(fs_id, timeout=30)
        assert client.find_file_system_by_name(name)["FileSystemId"] == fs_id
        client.call("DescribeCfsRules", {"PGroupId": group["PGroupId"]})
        client.call("DeleteCfsFileSystem", {"FileSystemId": fs_id})
        client.call("DeleteCfsPGroup", {"PGroupId": group["PGroupId"]})
        return info["LifeCycleState"]

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(workload, range(8))) == ["available"] * 8

    calls = reference.admin.calls()
    codes = collections.Counter(code for entry in calls.values() for _, code in entry["calls"])
    injected = codes["RequestLimitExceeded"] + codes["InternalError"]
    assert injected > 10  # ~1/3 of ~90 attempts failed...
    assert metric_total("cfs_cloud_retries_total") - retries_before == injected  # all retried
    assert metric_total("cfs_cloud_throttled_total") - throttled_before == codes["RequestLimitExceeded"]


def test_internal_errors_alone_are_retried(reference):
    """InternalError at a rate high enough that it surely happens (limits off for speed)."""
    reference.admin.configure(rate_limits={"DescribeCfsServiceStatus": 0})
    client = client_for(reference, rate_limits={"DescribeCfsServiceStatus": 0})
    reference.admin.set_faults([{"action": "DescribeCfsServiceStatus", "code": "InternalError", "rate": 0.5}])
    reference.admin.reset_calls()
    for _ in range(30):
        assert client.call("DescribeCfsServiceStatus", {})["CfsServiceStatus"]
    codes = collections.Counter(code for _, code in call_log(reference, "DescribeCfsServiceStatus"))
    assert codes["OK"] == 30 and codes["InternalError"] > 0


def test_observed_rate_never_exceeds_the_documented_limits(reference):
    """Creates (10/s) and describes (20/s) from many threads at once; the reference enforces
    the same limits, so any excess would also show up as RequestLimitExceeded."""
    client = client_for(reference)
    reference.admin.reset_calls()

    def create(i):
        return client.call("CreateCfsFileSystem", fs_params(reference, f"rate-{i}"))

    def describe(_):
        return client.call("DescribeCfsFileSystems", {"Limit": 1})

    with ThreadPoolExecutor(16) as pool:
        creates = [pool.submit(create, i) for i in range(14)]
        describes = [pool.submit(describe, i) for i in range(40)]
        for future in creates + describes:
            future.result()

    for action, count in (("CreateCfsFileSystem", 14), ("DescribeCfsFileSystems", 40)):
        log = call_log(reference, action)
        assert len(log) == count  # no call needed a retry
        assert all(code == "OK" or code == "Success" for _, code in log), log
        assert max_calls_per_second([t for t, _ in log]) <= DOCUMENTED_RATE_LIMITS[action]


def test_configured_limit_is_shared_with_credential_clones(reference):
    reference.admin.configure(rate_limits={"DescribeCfsPGroups": 5})
    client = client_for(reference, rate_limits={"DescribeCfsPGroups": 5})
    clone = client.with_credentials(reference.secret_id, reference.secret_key)
    reference.admin.reset_calls()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: (client if i % 2 else clone).call("DescribeCfsPGroups", {}), range(10)))
    log = call_log(reference, "DescribeCfsPGroups")
    assert len(log) == 10 and max_calls_per_second([t for t, _ in log]) <= 5


def test_concurrent_waiters_share_one_describe_per_interval(reference):
    client = client_for(reference, poll_max_interval=0.5)
    reference.admin.configure(create_delay=1.5)
    fs_ids = [
        client.call("CreateCfsFileSystem", fs_params(reference, f"wait-{i}"))["FileSystemId"]
        for i in range(12)
    ]
    reference.admin.reset_calls()
    with ThreadPoolExecutor(len(fs_ids)) as pool:
        infos = list(pool.map(lambda fs_id: client.wait_file_system_available(fs_id, 30), fs_ids))
    assert [i["LifeCycleState"] for i in infos] == ["available"] * len(fs_ids)
    # Polls start 50 ms apart and double to 500 ms: about 6 rounds cover the 1.5 s create
    # delay. Uncoalesced, every round would cost 12 calls.
    assert len(call_log(reference, "DescribeCfsFileSystems")) <= 10


def test_a_single_waiter_backs_off(reference):
    client = client_for(reference, poll_max_interval=0.5)
    reference.admin.configure(create_delay=2.0)
    fs_id = client.call("CreateCfsFileSystem", fs_params(reference, "idle"))["FileSystemId"]
    reference.admin.reset_calls()
    client.wait_file_system_available(fs_id, timeout=30)
    describes = sorted(t for t, _ in call_log(reference, "DescribeCfsFileSystems"))
    gaps = [b - a for a, b in pairwise(describes)]
    # Soon after the create, then backing off: never closer than the minimum interval, and
    # about 7 calls for 2 s instead of 40 at a fixed 50 ms.
    assert len(describes) <= 10
    assert min(gaps) >= 0.05


def test_dead_endpoint_gives_a_network_error_and_recovers(reference):
    client = client_for(reference, retry_deadline=0.5)
    client.call("DescribeCfsFileSystems", {})
    reference.kill()
    try:
        with pytest.raises(CfsNetworkError) as info:
            client.call("DescribeCfsFileSystems", {})
        assert info.value.code == "ClientNetworkError"
        assert info.value.maybe_sent is False  # connection refused: never sent
        retries = REGISTRY.get_sample_value("cfs_cloud_retries_total", {"action": "CreateCfsFileSystem"}) or 0
        with pytest.raises(CfsNetworkError):  # safe to retry even a create
            client.call("CreateCfsFileSystem", fs_params(reference, "down"))
        assert (
            REGISTRY.get_sample_value("cfs_cloud_retries_total", {"action": "CreateCfsFileSystem"}) > retries
        )
    finally:
        reference.restart()
    assert client_for(reference).call("DescribeCfsFileSystems", {})["RequestId"]


def test_a_create_that_may_have_been_sent_is_not_repeated(reference):
    """A reply lost after the request left (here: a read timeout) may hide a created file
    system; the client reports it instead of creating a second one."""
    client = client_for(reference, request_timeout=0.3, retry_deadline=5)
    reference.admin.set_faults([], latency={"CreateCfsFileSystem": 800})
    reference.admin.reset_calls()
    with pytest.raises(CfsNetworkError) as info:
        client.call("CreateCfsFileSystem", fs_params(reference, "lost-reply"))
    assert info.value.maybe_sent is True
    reference.admin.set_faults([])
    creates = eventually(lambda: call_log(reference, "CreateCfsFileSystem"))
    assert len(creates) == 1 and creates[0][1] == "OK"  # it did succeed, once
    found = client.find_file_system_by_name("lost-reply")  # the caller's recovery
    assert found is not None and found["FsName"] == "lost-reply"

    # The same failure on a read is simply retried until the deadline.
    reference.admin.set_faults([], latency={"DescribeCfsPGroups": 800})
    with pytest.raises(CfsNetworkError):
        client_for(reference, request_timeout=0.3, retry_deadline=0.5).call("DescribeCfsPGroups", {})
    eventually(lambda: len(call_log(reference, "DescribeCfsPGroups")) >= 2)  # retried


def test_a_callers_timeout_bounds_the_attempt_and_the_rate_limit_wait(reference):
    """`call(timeout=...)` carries a caller's own deadline (e.g. a gRPC one) into the client."""
    client = client_for(reference, request_timeout=30, rate_limits={"DescribeCfsPGroups": 1})
    reference.admin.set_faults([], latency={"DescribeCfsRules": 800})
    # The reply would come in 0.8 s, well within request_timeout: only the caller's 0.3 s
    # cuts the attempt short, and no retry is started past it.
    with pytest.raises(CfsNetworkError) as info:
        client.call("DescribeCfsRules", {"PGroupId": "pgroupbasic"}, timeout=0.3)
    assert info.value.code == "ClientNetworkError" and "timed out" in info.value.message
    assert client.call("DescribeCfsRules", {"PGroupId": "pgroupbasic"})["RequestId"]

    reference.admin.reset_calls()
    client.call("DescribeCfsPGroups", {})
    # The next slot of a 1/s limit is ~1 s away: refused at once, nothing sent or claimed.
    with pytest.raises(CallTimeout, match="DescribeCfsPGroups: no rate-limit slot within"):
        client.call("DescribeCfsPGroups", {}, timeout=0.2)
    assert client.call("DescribeCfsPGroups", {}, timeout=5)["RequestId"]
    assert len(call_log(reference, "DescribeCfsPGroups")) == 2

    # The helpers take the same timeout, shared by all the pages they fetch.
    with pytest.raises(CallTimeout):
        list(client.paginate("DescribeCfsPGroups", "PGroupList", timeout=0.2))
    reference.admin.set_faults([], latency={"DescribeCfsFileSystems": 800})
    with pytest.raises(CfsNetworkError):
        client.find_file_system_by_name("x", timeout=0.2)


def test_a_client_bounded_by_a_deadline_stops_there(reference):
    """until(): every call of a bounded client (helpers included) ends by the deadline, while
    the unbounded client it came from keeps its own retry window."""
    client = client_for(reference, request_timeout=10)
    reference.admin.set_faults([{"action": "DescribeCfsServiceStatus", "code": "InternalError", "rate": 1.0}])
    reference.admin.reset_calls()
    deadline = time.monotonic() + 0.3
    bounded = client.until(deadline)
    with pytest.raises((CallTimeout, CfsInternalError)):
        bounded.call("DescribeCfsServiceStatus")
    attempts = len(call_log(reference, "DescribeCfsServiceStatus"))
    assert 1 <= attempts < 20  # retried only within the 0.3 s
    reference.admin.set_faults([])
    time.sleep(max(0.0, deadline - time.monotonic()) + 0.01)
    reference.admin.reset_calls()
    with pytest.raises(CallTimeout):  # a spent deadline sends nothing at all
        next(bounded.iter_file_systems())
    assert call_log(reference, "DescribeCfsFileSystems") == []
    assert client.call("DescribeCfsServiceStatus")["RequestId"]
    assert client.until(None) is client
