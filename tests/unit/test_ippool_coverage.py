"""Invariant 3 (ippools), pure: coverage counts, not names (Felix masq_mgr.go)."""

from __future__ import annotations

import ipaddress

from fedkeeper.config import DisabledPoolPolicy
from fedkeeper.invariants.ippools import plan_ippools, pool_name, uncovered
from fedkeeper.model import Action, Report, Scope, Severity
from tests.unit.test_ippools import GOOD, NAT_POOL, obs, pool


def _net(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr)


def test_full_coverage_by_an_unowned_pool_writes_nothing_and_says_who_covers() -> None:
    manual = pool("aws-vpc-no-nat", "10.100.0.0/16", disabled=True, natOutgoing=False)
    plan = plan_ippools(obs([NAT_POOL, manual]))
    assert plan.changes == []
    [finding] = plan.findings
    assert finding.severity is Severity.INFO and finding.check == "ippools.coverage"
    assert "aws-vpc-no-nat (10.100.0.0/16)" in finding.message


def test_full_coverage_by_an_unowned_pool_is_converged() -> None:
    manual = pool("aws-vpc-no-nat", "10.100.0.0/16", disabled=True)
    report = Report(
        "apply", Scope.of("ippools"), findings=plan_ippools(obs([NAT_POOL, manual])).findings
    )
    assert report.converged


def test_partial_coverage_gets_owned_pools_for_exactly_the_remainder() -> None:
    half = pool("manual-half", "10.100.0.0/17", disabled=True)
    plan = plan_ippools(obs([NAT_POOL, half]))
    [change] = plan.changes
    assert change.action is Action.CREATE
    assert change.payload["body"]["spec"] == {"cidr": "10.100.128.0/17", **GOOD}
    assert change.name == pool_name("10.100.128.0/17")
    assert "10.100.128.0/17" in plan.findings[0].message


def test_remainder_is_the_smallest_set_of_cidrs_and_overlaps_no_pool() -> None:
    pools = [
        NAT_POOL,
        pool("a", "10.100.0.0/18", disabled=True),
        pool("b", "10.100.128.0/18", disabled=True),
        pool("c", "10.100.255.0/24", disabled=True),
    ]
    created = [c.payload["body"]["spec"]["cidr"] for c in plan_ippools(obs(pools)).changes]
    assert created == [
        "10.100.64.0/18",
        "10.100.192.0/19",
        "10.100.224.0/20",
        "10.100.240.0/21",
        "10.100.248.0/22",
        "10.100.252.0/23",
        "10.100.254.0/24",
    ]
    for cidr in created:
        assert not any(_net(cidr).overlaps(_net(p["spec"]["cidr"])) for p in pools[1:])


def test_uncovered_of_a_cidr_inside_a_larger_pool_is_nothing() -> None:
    assert uncovered(_net("10.100.0.0/16"), [_net("10.0.0.0/8")]) == []


def test_new_unowned_coverage_replaces_the_owned_pool_deleting_first() -> None:
    ours = pool(pool_name("10.100.0.0/16"), "10.100.0.0/16", owned=True, **GOOD)
    manual = pool("manual-half", "10.100.0.0/17", disabled=True)
    changes = plan_ippools(obs([NAT_POOL, ours, manual])).changes
    assert [(c.action, c.name) for c in changes] == [
        (Action.DELETE, pool_name("10.100.0.0/16")),
        (Action.CREATE, pool_name("10.100.128.0/17")),
    ]


def test_coverage_by_a_pool_that_nats_is_an_error_with_the_fix() -> None:
    nat_cover = pool("manual-aws", "10.100.0.0/16", disabled=True, natOutgoing=True)
    plan = plan_ippools(obs([NAT_POOL, nat_cover]))
    assert plan.changes == []
    [error] = [f for f in plan.findings if f.severity is Severity.ERROR]
    assert "natOutgoing" in error.message and "kubectl patch ippool manual-aws" in error.message
    assert not Report("apply", Scope.of("ippools"), findings=plan.findings).converged


def test_coverage_by_an_enabled_pool_is_an_overlap_and_gets_no_pool() -> None:
    enabled = pool("onprem-extra", "10.100.128.0/17")
    plan = plan_ippools(obs([NAT_POOL, enabled]))
    assert plan.changes == []
    [error] = [f for f in plan.findings if f.severity is Severity.ERROR]
    assert error.check == "ippools.overlap" and "onprem-extra" in error.message


def test_auto_counts_a_disabled_pool_that_still_nats() -> None:
    # An on-prem pool migration: the old pool is disabled but its pods still NAT.
    old = pool("old-pool", "10.244.0.0/16", disabled=True, natOutgoing=True)
    new = pool("new-pool", "10.245.0.0/16", natOutgoing=False)
    [change] = plan_ippools(obs([old, new])).changes
    assert change.action is Action.CREATE
    assert "old-pool (10.244.0.0/16) (disabled) does outgoing NAT" in change.reason


def test_auto_keeps_owned_pools_while_a_disabled_pool_still_nats() -> None:
    old = pool("old-pool", "10.244.0.0/16", disabled=True, natOutgoing=True)
    ours = pool(pool_name("10.100.0.0/16"), "10.100.0.0/16", owned=True, **GOOD)
    assert plan_ippools(obs([old, ours])).changes == []


def test_secondary_cidr_overlapping_an_onprem_range_is_an_error_and_gets_no_pool() -> None:
    ranges = [("service range", "172.20.0.0/16"), ("pod range", "10.244.0.0/16")]
    plan = plan_ippools(obs([NAT_POOL], ["10.100.0.0/16", "172.20.128.0/17"], ranges=ranges))
    assert [c.name for c in plan.changes] == [pool_name("10.100.0.0/16")]
    [error] = plan.findings
    assert error.severity is Severity.ERROR and error.check == "ippools.overlap"
    assert "172.20.128.0/17" in error.message and "service range 172.20.0.0/16" in error.message


def test_owned_pool_for_a_cidr_that_now_overlaps_onprem_is_deleted() -> None:
    ours = pool(pool_name("10.96.0.0/16"), "10.96.0.0/16", owned=True, **GOOD)
    plan = plan_ippools(
        obs([NAT_POOL, ours], ["10.96.0.0/16"], ranges=[("service range", "10.96.0.0/12")])
    )
    [change] = plan.changes
    assert change.action is Action.DELETE and "overlaps" in change.reason


def test_adopted_pool_keeps_its_name_and_covers_its_cidr() -> None:
    adopted = pool("aws-cluster-no-nat", "10.100.0.0/16", owned=True, **GOOD)
    plan = plan_ippools(obs([NAT_POOL, adopted]))
    assert plan.changes == [] and plan.findings == []


def test_drifted_adopted_pool_is_restored_under_its_own_name() -> None:
    adopted = pool(
        "aws-cluster-no-nat", "10.100.0.0/16", owned=True, **{**GOOD, "natOutgoing": True}
    )
    [change] = plan_ippools(obs([NAT_POOL, adopted])).changes
    assert change.action is Action.UPDATE and change.name == "aws-cluster-no-nat"
    assert change.payload["patch"]["spec"]["natOutgoing"] is False


def test_adopted_pool_is_deleted_when_no_pool_nats_any_more() -> None:
    adopted = pool("aws-cluster-no-nat", "10.100.0.0/16", owned=True, **GOOD)
    [change] = plan_ippools(obs([adopted], policy=DisabledPoolPolicy.AUTO)).changes
    assert change.action is Action.DELETE and change.name == "aws-cluster-no-nat"


def test_another_federations_pool_counts_as_coverage() -> None:
    other = pool("fedkeeper-aws-10-100-0-0-16", "10.100.0.0/16", owned=True, **GOOD)
    other["metadata"]["labels"]["fedkeeper.io/federation"] = "other-fed"
    plan = plan_ippools(obs([NAT_POOL, other]))
    assert plan.changes == []
