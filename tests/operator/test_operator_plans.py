"""Desired vs observed → the fewest cloud changes; conditions; failure classification."""

import pytest

from cfs_cloud import (
    CfsInternalError,
    CfsInUse,
    CfsInvalidParameter,
    CfsNetworkError,
    CfsResourceExhausted,
    CfsThrottled,
)
from cfs_cloud.errors import CfsError
from cfs_operator.conditions import Condition, merge_conditions, without_condition
from cfs_operator.config import OperatorConfig
from cfs_operator.failures import classify, create_may_have_happened, failed_permanently, failure_conditions
from cfs_operator.plans import (
    CloudGroup,
    CloudPolicy,
    CloudRule,
    CreateRule,
    DeleteRule,
    UpdateRule,
    format_int_list,
    group_from_cloud,
    plan_bindings,
    plan_group_update,
    plan_policy_update,
    plan_rules,
    policy_from_cloud,
    rule_from_cloud,
)
from cfs_operator.policies import BindingFailed
from cfs_operator.specs import RuleSpec, SpecError, parse_group_spec, parse_policy_spec


def r(ip, priority=1, rw="RO", squash="root_squash"):
    return RuleSpec(ip, rw, squash, priority)


def test_identical_rules_need_nothing():
    observed = [CloudRule("rule-1", r("10.0.0.0/24")), CloudRule("rule-2", r("*", 100))]
    assert plan_rules([r("*", 100), r("10.0.0.0/24")], observed) == []


def test_changed_rule_is_updated_in_place():
    observed = [CloudRule("rule-1", r("10.0.0.1", 1))]
    assert plan_rules([r("10.0.0.1", 2, "RW")], observed) == [
        UpdateRule("rule-1", r("10.0.0.1", 2, "RW"), r("10.0.0.1", 1))
    ]


def test_replaced_client_reuses_the_old_rule_and_extras_are_deleted_first():
    observed = [
        CloudRule("rule-1", r("10.0.0.1")),
        CloudRule("rule-2", r("10.0.0.2")),
        CloudRule("rule-3", r("10.0.0.3")),
    ]
    actions = plan_rules([r("10.0.0.9")], observed)
    assert actions == [
        DeleteRule("rule-2", r("10.0.0.2")),
        DeleteRule("rule-3", r("10.0.0.3")),
        UpdateRule("rule-1", r("10.0.0.9"), r("10.0.0.1")),
    ]


def test_new_rules_are_created_last():
    observed = [CloudRule("rule-1", r("10.0.0.1"))]
    assert plan_rules([r("10.0.0.1"), r("10.0.0.2"), r("10.0.0.3")], observed) == [
        CreateRule(r("10.0.0.2")),
        CreateRule(r("10.0.0.3")),
    ]


def test_duplicate_cloud_rules_for_one_client_are_reduced_to_one():
    observed = [CloudRule("rule-1", r("10.0.0.1")), CloudRule("rule-2", r("10.0.0.1", 5))]
    assert plan_rules([r("10.0.0.1")], observed) == [DeleteRule("rule-2", r("10.0.0.1", 5))]


def test_cloud_rules_are_normalised_for_comparison():
    rule = rule_from_cloud(
        {
            "RuleId": "rule-1",
            "AuthClientIp": "10.0.0.7/32",
            "RWPermission": "rw",
            "UserPermission": "no_root_squash",
            "Priority": 3,
        }
    )
    assert rule == CloudRule("rule-1", r("10.0.0.7", 3, "RW", "no_root_squash"))


def test_group_update_only_sends_what_differs():
    cloud = group_from_cloud({"PGroupId": "pgroup-1", "Name": "web", "DescInfo": "old", "BindCfsNum": 2})
    assert cloud == CloudGroup("pgroup-1", "web", "old", 2)
    assert plan_group_update(parse_group_spec({"name": "web", "description": "old"}, "x"), cloud) == {}
    assert plan_group_update(parse_group_spec({"name": "web2", "description": "old"}, "x"), cloud) == {
        "Name": "web2"
    }
    assert plan_group_update(parse_group_spec({"pGroupId": "pgroup-1"}, "x"), cloud) == {}


def test_policy_update_only_sends_what_differs():
    cloud = policy_from_cloud(
        {
            "AutoSnapshotPolicyId": "asp-1",
            "PolicyName": "p",
            "DayOfWeek": "1,3",
            "Hour": "2",
            "AliveDays": 7,
            "IsActive": 1,
            "NextActiveTime": "t",
            "FileSystems": [{"FileSystemId": "cfs-b"}, {"FileSystemId": "cfs-a"}],
        }
    )
    assert cloud == CloudPolicy("asp-1", "p", (1, 3), (2,), 7, True, "t", ("cfs-a", "cfs-b"))
    same = parse_policy_spec({"policyName": "p", "dayOfWeek": [3, 1], "hour": [2], "aliveDays": 7}, "x")
    assert plan_policy_update(same, cloud) == {}
    edited = parse_policy_spec(
        {"policyName": "p", "dayOfWeek": [1, 3], "hour": [2, 14], "isActive": False}, "x"
    )
    assert plan_policy_update(edited, cloud) == {"Hour": "2,14", "IsActive": 0}
    assert format_int_list([5, 1, 3]) == "1,3,5"


def test_bindings_are_diffed_and_none_means_unmanaged():
    assert plan_bindings({"cfs-a", "cfs-c"}, ["cfs-a", "cfs-b"]) == (["cfs-c"], ["cfs-b"])
    assert plan_bindings(None, ["cfs-a"]) == ([], [])
    assert plan_bindings(set(), ["cfs-a"]) == ([], ["cfs-a"])


def test_conditions_keep_transition_time_until_status_flips(monkeypatch):
    first = merge_conditions(None, [Condition("Ready", True, "Reconciled", "ok")], 3)
    assert first[0]["observedGeneration"] == 3
    monkeypatch.setattr("cfs_operator.conditions.now_iso", lambda: "later")
    again = merge_conditions(first, [Condition("Ready", True, "Reconciled", "still ok")], 4)
    assert (
        again[0]["lastTransitionTime"] == first[0]["lastTransitionTime"] and again[0]["message"] == "still ok"
    )
    flipped = merge_conditions(again, [Condition("Ready", False, "Throttled", "slow down")], 4)
    assert flipped[0]["lastTransitionTime"] == "later" and flipped[0]["status"] == "False"
    assert without_condition(flipped + [{"type": "InUse"}], "InUse") == flipped


@pytest.mark.parametrize(
    ("error", "reason", "permanent", "slow"),
    [
        (SpecError("spec.rules", "too many"), "InvalidSpec", True, False),
        (
            CfsInvalidParameter("InvalidParameterValue.InvalidAuthClientIp", "bad"),
            "CloudRejected",
            True,
            False,
        ),
        (
            CfsResourceExhausted("ResourceInsufficient.RuleLimitExceeded", "full"),
            "CloudRejected",
            True,
            False,
        ),
        (
            CfsResourceExhausted("ResourceInsufficient.PgroupNumberLimitExceeded", "full"),
            "QuotaExceeded",
            False,
            True,
        ),
        (CfsThrottled("RequestLimitExceeded", "slow"), "Throttled", False, False),
        (CfsInternalError("InternalError", "oops"), "CloudBusy", False, False),
        (CfsError("FailedOperation.PgroupIsUpdating", "busy"), "CloudBusy", False, False),
        (CfsInUse("FailedOperation.PgroupInUse", "bound"), "InUse", False, True),
        (
            CfsError("UnsupportedOperation", "the default group cannot be changed"),
            "CloudRejected",
            True,
            False,
        ),
        (CfsError("UnsupportedOperation.OutOfService", "arrears"), "CloudError", False, False),
        (
            BindingFailed({"cfs-x": CfsError("ResourceNotFound.FileSystemNotFound", "")}),
            "BindFailed",
            False,
            True,
        ),
    ],
)
def test_failures_are_classified(error, reason, permanent, slow):
    failure = classify(error)
    assert (failure.reason, failure.permanent, failure.slow_retry) == (reason, permanent, slow)


def test_cloud_rejection_names_the_field():
    failure = classify(CfsInvalidParameter("InvalidParameterValue.DuplicatedPgroupName", "dup", "req-1"))
    assert failure.message.startswith(
        "spec.name: the CFS API rejected it: InvalidParameterValue.DuplicatedPgroupName"
    )
    failure = classify(CfsInvalidParameter("InvalidParameterValue.InvalidPgroup", "not yours", "req-2"))
    assert failure.message.startswith("spec.pGroupId: ") and failure.permanent


def test_retry_delays_back_off_and_cap():
    config = OperatorConfig(retry_delay=1, max_retry_delay=5, slow_retry_delay=30)
    assert [config.retry_after(n, slow=False) for n in range(5)] == [1, 2, 4, 5, 5]
    assert config.retry_after(0, slow=True) == 30
    with pytest.raises(ValueError, match="drift_interval"):
        OperatorConfig(drift_interval=0)


def test_a_failure_leaves_ready_true_only_while_the_object_exists_and_was_ready():
    throttled = classify(CfsThrottled("RequestLimitExceeded", "slow"))
    ready = [{"type": "Ready", "status": "True", "reason": "Reconciled"}]
    assert [c.type for c in failure_conditions(throttled, True, ready)] == ["Synced"]
    assert [c.type for c in failure_conditions(throttled, False, None)] == ["Synced", "Ready"]
    # Ready was False for an earlier, since fixed spec: it now tells the current problem.
    stale = [{"type": "Ready", "status": "False", "reason": "InvalidSpec", "message": "spec.rules[0]..."}]
    updates = failure_conditions(throttled, True, stale)
    assert [(c.type, c.status, c.reason) for c in updates] == [
        ("Synced", False, "Throttled"),
        ("Ready", False, "Throttled"),
    ]
    invalid = classify(SpecError("spec.rules", "too many"))
    assert [(c.type, c.reason) for c in failure_conditions(invalid, True, ready)] == [
        ("Synced", "InvalidSpec"),
        ("Ready", "InvalidSpec"),
    ]


def test_failed_permanently_only_for_the_generation_that_failed():
    status = {
        "conditions": merge_conditions(None, [Condition("Ready", False, "InvalidSpec", "spec.name: bad")], 4)
    }
    assert failed_permanently(status, 4)
    assert not failed_permanently(status, 5)
    throttled = {"conditions": merge_conditions(None, [Condition("Ready", False, "Throttled", "slow")], 4)}
    assert not failed_permanently(throttled, 4)
    assert not failed_permanently({}, 4)


def test_only_an_unseen_outcome_may_have_created_the_object():
    assert not create_may_have_happened(CfsThrottled("RequestLimitExceeded", "slow"))
    assert not create_may_have_happened(SpecError("spec.name", "taken"))
    assert create_may_have_happened(KeyError("PGroupId"))  # a reply the operator could not read
    assert create_may_have_happened(CfsNetworkError("NetworkError", "reset after sending"))
    assert not create_may_have_happened(CfsNetworkError("NetworkError", "refused", maybe_sent=False))
