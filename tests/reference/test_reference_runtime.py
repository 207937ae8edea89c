"""Rate limiting, fault injection, the call log, documented limits and policy schedules, as plain objects."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cfs_reference.backend import limits
from cfs_reference.backend.policies import next_run
from cfs_reference.backend.regions import Regions
from cfs_reference.calls import CallLog
from cfs_reference.errors import ApiError
from cfs_reference.faults import FaultRule, Faults, parse_fault, parse_latency
from cfs_reference.main import parse_settings
from cfs_reference.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_documented_rate():
    clock = FakeClock()
    limiter = RateLimiter({"DescribeCfsFileSystems": 20}, clock=clock)
    assert [limiter.allow("DescribeCfsFileSystems") for _ in range(21)] == [True] * 20 + [False]
    clock.now += 0.5  # half a second refills 10
    assert sum(limiter.allow("DescribeCfsFileSystems") for _ in range(15)) == 10


def test_overrides_zero_and_disabled_limits():
    clock = FakeClock()
    limiter = RateLimiter({"A": 20, "B": 20}, overrides={"B": 0}, clock=clock)
    limiter.set_limits({"A": 1})
    assert [limiter.allow("A") for _ in range(2)] == [True, False]
    assert all(limiter.allow("B") for _ in range(100))  # 0 = unlimited
    assert all(limiter.allow("Unknown") for _ in range(100))
    limiter.enabled = False
    assert all(limiter.allow("A") for _ in range(100))


def test_fault_rules_fire_at_their_rate():
    faults = Faults(
        [FaultRule("*", "RequestLimitExceeded", 0.3), FaultRule("X", "InternalError", 1.0)], seed=7
    )
    codes = [faults.error_for("Y") for _ in range(2000)]
    assert 0.25 < codes.count("RequestLimitExceeded") / 2000 < 0.35
    assert set(codes) == {None, "RequestLimitExceeded"}
    assert faults.error_for("X") in ("RequestLimitExceeded", "InternalError")


def test_fault_and_latency_parsing_and_bounds():
    assert parse_fault("*:InternalError:0.05") == FaultRule("*", "InternalError", 0.05)
    assert parse_latency("DescribeCfsFileSystems:25") == ("DescribeCfsFileSystems", 25.0)
    with pytest.raises(ValueError):
        parse_fault("*:InternalError")
    with pytest.raises(ValueError):
        FaultRule("*", "InternalError", 1.5)
    faults = Faults(latency_ms={"*": 10, "A": 50})
    assert (faults.delay_seconds("A"), faults.delay_seconds("B")) == (0.05, 0.01)
    faults.replace_from_json({"faults": [], "create_failed_rate": 1.0})
    assert faults.create_fails() and faults.delay_seconds("A") == 0


def test_call_log_counts_and_resets():
    calls = CallLog()
    calls.record("A", "OK")
    calls.record("A", "RequestLimitExceeded")
    logged = calls.as_json()
    assert logged["A"]["count"] == 2 and [code for _, code in logged["A"]["calls"]] == [
        "OK",
        "RequestLimitExceeded",
    ]
    calls.reset()
    assert calls.as_json() == {}


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("*", True),
        ("10.1.10.11", True),
        ("10.10.1.0/24", True),
        ("10.10.1.1/24", False),
        ("300.1.1.1", False),
        ("", False),
        ("host.example", False),
    ],
)
def test_auth_client_ip(value, ok):
    if ok:
        assert limits.check_client(value) == value
    else:
        with pytest.raises(ApiError) as caught:
            limits.check_client(value)
        assert caught.value.code == "InvalidParameterValue.InvalidAuthClientIp"


def test_names_count_bytes_and_allow_chinese():
    assert limits.check_name("权限组_a-1", "Name", "TooLong", "Invalid") == "权限组_a-1"
    with pytest.raises(ApiError) as too_long:
        limits.check_name("组" * 22, "Name", "TooLong", "Invalid")  # 66 bytes
    assert too_long.value.code == "TooLong"
    with pytest.raises(ApiError) as invalid:
        limits.check_name("a.b", "Name", "TooLong", "Invalid")
    assert invalid.value.code == "Invalid" and "Name" in invalid.value.message


def test_choices_are_case_insensitive_and_canonical():
    assert limits.check_choice("rw", "RWPermission", limits.ACCESS, "Bad") == "RW"
    with pytest.raises(ApiError) as caught:
        limits.check_choice("rx", "RWPermission", limits.ACCESS, "Bad")
    assert "RO, RW" in caught.value.message


def test_next_run_follows_weekday_and_hour_in_utc():
    wednesday_noon = datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp()
    policy = {"day_of_week": "1,5", "hour": "3"}  # Monday and Friday at 03:00
    assert datetime.fromtimestamp(next_run(policy, wednesday_noon), tz=UTC) == datetime(
        2026, 11, 27, 3, 0, tzinfo=UTC
    )
    same_day = {"day_of_week": "3", "hour": "11,13"}
    assert datetime.fromtimestamp(next_run(same_day, wednesday_noon), tz=UTC).hour == 13


def test_zones_resolve_by_name_or_id():
    regions = Regions(["ap-shanghai-fsi", "ap-beijing-fsi"])
    zone = regions.resolve("ap-beijing-fsi", "ap-beijing-fsi-2", None)
    assert regions.resolve("ap-beijing-fsi", None, zone.zone_id) == zone
    with pytest.raises(ApiError) as caught:
        regions.resolve("ap-shanghai-fsi", "ap-beijing-fsi-2", None)
    assert caught.value.code == "InvalidParameterValue.InvalidZoneOrZoneId"
    assert "ap-shanghai-fsi-1" in caught.value.message
    with pytest.raises(ApiError) as unsupported:
        regions.check("ap-nowhere")
    assert unsupported.value.code == "UnsupportedRegion"


def test_credentials_long_term_and_temporary(monkeypatch):
    """ID:KEY is a long-term key; ID:KEY:TOKEN a temporary one whose requests carry TOKEN."""
    monkeypatch.setenv("CFS_REFERENCE_CREDENTIALS", "AKIDenv:envkey:envtoken")
    settings, _ = parse_settings(
        ["--credential", "AKIDlong:longkey", "--credential", "AKIDtemp:tempkey:temptoken"]
    )
    assert settings.credentials == {"AKIDlong": "longkey", "AKIDtemp": "tempkey", "AKIDenv": "envkey"}
    assert settings.tokens == {"AKIDtemp": "temptoken", "AKIDenv": "envtoken"}
