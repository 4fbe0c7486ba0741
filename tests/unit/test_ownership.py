"""Ownership is per federation: both labels make an object ours; nothing else is touched."""

from __future__ import annotations

from typing import Any

from fedkeeper.config import DisabledPoolPolicy
from fedkeeper.invariants.ippools import IpPoolsObservation, plan_ippools, pool_name
from fedkeeper.invariants.rcc import RccObservation, desired_rcc, plan_rcc
from fedkeeper.model import Action, Ownership, owner_labels, ownership
from tests.unit.test_rcc import NAMES, converged_pair, replace, with_rv

MANAGED_ONLY = {"app.kubernetes.io/managed-by": "fedkeeper"}
NAT_POOL = {
    "metadata": {"name": "default-ipv4-ippool"},
    "spec": {"cidr": "10.244.0.0/16", "natOutgoing": True},
}
GOOD = {
    "disabled": True,
    "natOutgoing": False,
    "disableBGPExport": True,
    "ipipMode": "Never",
    "vxlanMode": "Never",
}


def pool(name: str, cidr: str, labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "kind": "IPPool",
        "metadata": {"name": name, "resourceVersion": "7", "labels": labels},
        "spec": {"cidr": cidr, **spec},
    }


def pools_obs(pools: list[dict[str, Any]], cidrs: list[str] | None = None) -> IpPoolsObservation:
    return IpPoolsObservation(
        "fed-demo",
        "projectcalico.org/v3",
        cidrs or ["10.100.0.0/16"],
        [NAT_POOL, *pools],
        DisabledPoolPolicy.AUTO,
    )


def test_ownership_needs_both_labels_with_this_federations_name() -> None:
    assert ownership({"metadata": {"labels": owner_labels("a")}}, "a") is Ownership.OURS
    assert ownership({"metadata": {"labels": owner_labels("b")}}, "a") is (
        Ownership.OTHER_FEDERATION
    )
    assert ownership({"metadata": {"labels": MANAGED_ONLY}}, "a") is Ownership.UNCLAIMED
    for odd in (None, [], "x", {"metadata": []}, {"metadata": {"labels": "x"}}):
        assert ownership(odd, "a") is Ownership.FOREIGN


def test_another_federations_pool_under_our_name_is_left_alone() -> None:
    name = pool_name("10.100.0.0/16")
    theirs = pool(name, "10.100.0.0/16", owner_labels("fed-other"), **GOOD)
    plan = plan_ippools(pools_obs([theirs]))
    assert plan.changes == []
    assert any(name in f.message for f in plan.findings)


def test_another_federations_pool_no_longer_needed_here_is_not_pruned() -> None:
    theirs = pool(pool_name("10.9.0.0/16"), "10.9.0.0/16", owner_labels("fed-other"), **GOOD)
    plan = plan_ippools(pools_obs([theirs]))
    assert all(c.action is not Action.DELETE for c in plan.changes)


def test_pool_labelled_managed_by_only_under_our_name_is_adopted() -> None:
    name = pool_name("10.100.0.0/16")
    old = pool(name, "10.100.0.0/16", dict(MANAGED_ONLY), **{**GOOD, "natOutgoing": True})
    [change] = plan_ippools(pools_obs([old])).changes
    assert change.action is Action.UPDATE and change.name == name
    assert change.reason.startswith(f"adopted pool {name}")
    patch = change.payload["patch"]
    assert patch["metadata"]["labels"] == {"fedkeeper.io/federation": "fed-demo"}
    assert patch["spec"]["natOutgoing"] is False


def test_pool_labelled_managed_by_only_under_another_name_is_neither_adopted_nor_pruned() -> None:
    old = pool("hand-made", "10.100.0.0/16", dict(MANAGED_ONLY), **GOOD)
    plan = plan_ippools(pools_obs([old]))
    assert all(c.name != "hand-made" for c in plan.changes)


def test_rcc_labelled_managed_by_only_under_our_name_is_adopted() -> None:
    eks, onprem = converged_pair()
    old = with_rv(desired_rcc(NAMES, "onprem"))
    old["metadata"]["labels"] = dict(MANAGED_ONLY)
    plan = plan_rcc(RccObservation(NAMES, replace(eks, rccs=[old]), onprem))
    [change] = plan.changes
    assert change.action is Action.UPDATE and change.reason.startswith("adopted eks")
    labels = change.payload["patch"]["metadata"]["labels"]
    assert labels["fedkeeper.io/federation"] == "fed-demo"


def test_rccs_of_another_federation_or_labelled_the_old_way_elsewhere_are_not_pruned() -> None:
    eks, onprem = converged_pair()
    other = with_rv(desired_rcc(NAMES, "partner"))
    other["metadata"]["labels"] = owner_labels("fed-other")
    old = with_rv(desired_rcc(NAMES, "legacy"))
    old["metadata"]["labels"] = dict(MANAGED_ONLY)
    plan = plan_rcc(RccObservation(NAMES, replace(eks, rccs=[*eks.rccs, other, old]), onprem))
    assert plan.changes == []


def test_another_federations_object_under_our_name_is_reported_not_written() -> None:
    eks, onprem = converged_pair()
    role = dict(eks.cluster_role or {})
    role["metadata"] = {**role["metadata"], "labels": owner_labels("fed-other")}
    role["rules"] = []
    plan = plan_rcc(RccObservation(NAMES, replace(eks, cluster_role=role), onprem))
    assert plan.changes == []
    assert [f.check for f in plan.findings] == ["rcc.other-federation"]
