"""Invariant 3 (ippools) on a NATing site of a mesh: pools covering every peer CIDR, pure."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fedkeeper.config import DisabledPoolPolicy
from fedkeeper.invariants.ippools import IpPoolsObservation, plan_ippools, pool_name
from fedkeeper.model import Action, Severity

OWNED = {"app.kubernetes.io/managed-by": "fedkeeper", "fedkeeper.io/federation": "fed-mesh"}
NAT_POOL = {
    "apiVersion": "projectcalico.org/v3",
    "kind": "IPPool",
    "metadata": {"name": "default-ipv4-ippool", "labels": {}},
    "spec": {"cidr": "10.244.0.0/16", "natOutgoing": True},
}
PEERS: dict[str, list[str]] = {
    "eks-a": ["10.1.0.0/16"],
    "eks-b": ["10.2.0.0/16", "100.64.0.0/16"],
    "dc2": ["192.168.2.0/24", "10.66.0.0/16"],
}


def peer_cidrs(peers: list[str]) -> list[tuple[str, str]]:
    return [(p, c) for p in peers for c in PEERS[p]]


def site_obs(
    peers: list[str],
    pools: list[dict[str, Any]],
    *,
    complete: bool = True,
    ranges: list[tuple[str, str]] | None = None,
) -> IpPoolsObservation:
    return IpPoolsObservation.of_peers(
        federation="fed-mesh",
        api_version="projectcalico.org/v3",
        site="dc1",
        peer_cidrs=peer_cidrs(peers),
        pools=pools,
        policy=DisabledPoolPolicy.AUTO,
        site_ranges=ranges or [("pod range", "10.244.0.0/16")],
        complete=complete,
    )


def applied(pools: list[dict[str, Any]], obs: IpPoolsObservation) -> list[dict[str, Any]]:
    """The site's pools after the plan is applied (creates and deletes; no patches here)."""
    by_name = {p["metadata"]["name"]: p for p in pools}
    for c in plan_ippools(obs).changes:
        assert c.backend == "dc1"
        if c.action is Action.CREATE:
            by_name[c.name] = copy.deepcopy(c.payload["body"])
        elif c.action is Action.DELETE:
            del by_name[c.name]
    return list(by_name.values())


def test_given_a_natting_site_with_three_peers_when_planned_then_every_peer_cidr_gets_a_disabled_pool_on_the_site() -> (
    None
):
    plan = plan_ippools(site_obs(["eks-a", "eks-b", "dc2"], [NAT_POOL]))
    assert sorted(c.target for c in plan.changes) == sorted(
        f"dc1/IPPool/{pool_name(c)}" for _, c in peer_cidrs(["eks-a", "eks-b", "dc2"])
    )
    assert all(c.action is Action.CREATE for c in plan.changes)
    reasons = {c.name: c.reason for c in plan.changes}
    assert reasons[pool_name("10.66.0.0/16")].startswith("dc2's CIDR 10.66.0.0/16 has no disabled")
    assert "its peers' pods" in reasons[pool_name("10.1.0.0/16")]


def test_given_the_pools_in_place_when_planned_again_then_nothing_is_written() -> None:
    peers = ["eks-a", "eks-b", "dc2"]
    pools = applied([NAT_POOL], site_obs(peers, [NAT_POOL]))
    assert plan_ippools(site_obs(peers, pools)).changes == []


def test_given_a_peer_that_left_when_planned_then_only_its_pools_are_pruned() -> None:
    pools = applied([NAT_POOL], site_obs(["eks-a", "eks-b"], [NAT_POOL]))
    plan = plan_ippools(site_obs(["eks-a"], pools))
    assert sorted((c.action, c.name) for c in plan.changes) == sorted(
        (Action.DELETE, pool_name(c)) for c in PEERS["eks-b"]
    )
    assert all("no CIDR of a peer dc1 federates with" in c.reason for c in plan.changes)


def test_given_a_peers_cidrs_unknown_when_planned_then_nothing_is_pruned() -> None:
    pools = applied([NAT_POOL], site_obs(["eks-a", "eks-b"], [NAT_POOL]))
    plan = plan_ippools(site_obs(["eks-a"], pools, complete=False))
    assert [c for c in plan.changes if c.action is Action.DELETE] == []


def test_given_a_peer_cidr_overlapping_the_site_when_planned_then_the_finding_names_the_peer_and_no_pool_is_written() -> (
    None
):
    plan = plan_ippools(site_obs(["dc2"], [NAT_POOL], ranges=[("host range", "192.168.0.0/16")]))
    [overlap] = [f for f in plan.findings if f.check == "ippools.overlap"]
    assert overlap.severity is Severity.ERROR
    assert "dc2's CIDR 192.168.2.0/24" in overlap.message and "renumber dc2" in overlap.message
    assert pool_name("192.168.2.0/24") not in [c.name for c in plan.changes]


def test_given_no_natting_pool_on_the_site_when_planned_then_no_pool_is_needed() -> None:
    quiet = {**NAT_POOL, "spec": {"cidr": "10.244.0.0/16", "natOutgoing": False}}
    assert plan_ippools(site_obs(["eks-a", "dc2"], [quiet])).changes == []


@given(
    st.lists(st.sampled_from(sorted(PEERS)), unique=True),
    st.lists(st.sampled_from(sorted(PEERS)), unique=True),
)
@settings(max_examples=40, deadline=None)
def test_given_any_change_of_peers_when_applied_then_the_owned_pools_are_exactly_the_peer_cidrs(
    before: list[str], after: list[str]
) -> None:
    pools = applied([NAT_POOL], site_obs(before, [NAT_POOL])) if before else [NAT_POOL]
    if after:
        pools = applied(pools, site_obs(after, pools))
        owned = sorted(p["spec"]["cidr"] for p in pools if p["metadata"]["labels"] == OWNED)
        assert owned == sorted(c for _, c in peer_cidrs(after))
        assert plan_ippools(site_obs(after, pools)).changes == []
