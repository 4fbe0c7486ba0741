"""Per VPC in a mesh: the VPC peerings to every peer VPC are active, and routed.

An EKS cluster's VPC is peered with the VPC of every EKS cluster it is linked to
(``links.peerings``; VPC peering is not transitive, so each pair has its own). For each peer
VPC, on the VPC of this cluster:

* the peering connection between the two VPCs is ``active``. The network stacks create it;
  one still ``pending-acceptance`` that carries this federation's tag is accepted (on the
  accepter side only, so one plan of the two VPCs does it); any other state, or none, is an
  error finding naming both clusters;
* every private route table (a subnet table without a default route to an internet gateway,
  as for VGW propagation) has a route to each CIDR of the peer via that peering. A missing
  route is created. A route to that CIDR via anything else (a NAT gateway, a transit
  gateway, another VPC's peering) is a finding, never overwritten: only routes fedkeeper
  would create - via a peering between these two VPCs - are its to change, and one via an
  earlier peering of the same two VPCs (replaced, so its route is a blackhole) is pointed
  at the active one.

Routes are compared by exact destination: a static route wins over a propagated one of the
same prefix (EC2 route priority), so propagated routes neither count nor conflict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fedkeeper.invariants import Plan
from fedkeeper.model import (
    FEDERATION_LABEL,
    Action,
    Change,
    Deferred,
    Finding,
    Invariant,
    RouteTable,
    Severity,
)

# States in which a peering connection no longer exists for routing (EC2
# VpcPeeringConnectionStateReasonCode); a peering in one of them is as good as none.
GONE = frozenset({"deleted", "deleting", "rejected", "failed", "expired"})
TRANSIENT = frozenset({"initiating-request", "provisioning"})  # on its way to active


@dataclass(frozen=True)
class PeeringConnection:
    """A VPC peering connection as describe_vpc_peering_connections returns it."""

    id: str
    requester_vpc: str
    accepter_vpc: str
    status: str  # Status.Code: active, pending-acceptance, provisioning, deleted, ...
    tags: Mapping[str, str] = field(default_factory=dict, compare=False)

    def joins(self, a: str, b: str) -> bool:
        return {self.requester_vpc, self.accepter_vpc} == {a, b}


@dataclass(frozen=True)
class PeerNetwork:
    """The VPC of one peer EKS cluster: its id (None: not found) and the CIDRs to route."""

    name: str  # the peer cluster's mesh name
    vpc_id: str | None
    cidrs: Sequence[str]  # the topology's cidrs_of(peer)


@dataclass(frozen=True)
class PeeringObservation:
    """One EKS cluster's VPC, its route tables, its peer VPCs and the peerings touching it.

    Filled from describe_vpcs (the peers' VPC ids), describe_route_tables (this VPC) and
    describe_vpc_peering_connections (filtered on this VPC as requester or accepter).
    """

    federation: str
    network: str  # this EKS cluster's mesh name
    vpc_id: str
    route_tables: Sequence[RouteTable]
    peers: Sequence[PeerNetwork]
    peerings: Sequence[PeeringConnection]


def _label(rt: RouteTable) -> str:
    return f"{rt.id} ({rt.name})" if rt.name else rt.id


def active_peering(obs: PeeringObservation, peer: PeerNetwork) -> PeeringConnection | None:
    """The live peering between this VPC and ``peer``'s: active first, then any not gone."""
    if peer.vpc_id is None:
        return None
    live = [p for p in obs.peerings if p.joins(obs.vpc_id, peer.vpc_id) and p.status not in GONE]
    return min(live, key=lambda p: (p.status != "active", p.id), default=None)


def _static_route(rt: RouteTable, cidr: str) -> tuple[str, str] | None:
    """(target, state) of the route ``rt`` sends ``cidr`` by, ignoring propagated ones."""
    for r in rt.routes:
        if r.destination == cidr and not r.propagated:
            return r.target, r.state
    return None


def plan_peering(obs: PeeringObservation) -> Plan:
    """Accept and route the peerings of one VPC; report what fedkeeper does not own."""
    plan = Plan()
    tables = [rt for rt in obs.route_tables if rt.private and not rt.ignored]
    for peer in obs.peers:
        pcx = _plan_connection(obs, peer, plan)
        if pcx is None:
            continue  # reported, or the other VPC's plan accepts it: routes wait for it
        # Routes to a peering accepted in this plan are written after it (never before).
        after = (f"aws/VpcPeeringConnection/{pcx.id}",) if pcx.status != "active" else ()
        for rt in tables:
            for cidr in peer.cidrs:
                _plan_route(obs, peer, pcx, rt, cidr, plan, after)
    return plan


def _plan_connection(
    obs: PeeringObservation, peer: PeerNetwork, plan: Plan
) -> PeeringConnection | None:
    """The peering's state; returns it when routes may point at it."""
    both = f"{obs.network} ({obs.vpc_id}) and {peer.name}"
    pcx = active_peering(obs, peer)
    if peer.vpc_id is None or pcx is None:
        plan.findings.append(
            Finding(
                Severity.ERROR,
                "peering.missing",
                f"no VPC peering joins {both}"
                + (f" ({peer.vpc_id})" if peer.vpc_id else " (its VPC was not found)")
                + ": pods of the two clusters cannot reach each other — deploy the network "
                "stacks with the peering in links.peerings",
            )
        )
        return None
    if pcx.status == "active":
        return pcx
    ours = pcx.tags.get(FEDERATION_LABEL) == obs.federation
    if pcx.status == "pending-acceptance" and ours and pcx.accepter_vpc == obs.vpc_id:
        plan.changes.append(
            Change(
                backend="aws",
                kind="VpcPeeringConnection",
                name=pcx.id,
                action=Action.UPDATE,
                invariant=Invariant.ROUTES,
                reason=(
                    f"VPC peering {pcx.id} between {both} is pending acceptance; accepting it "
                    f"(it carries {FEDERATION_LABEL}={obs.federation})"
                ),
                payload={"op": "accept_vpc_peering_connection", "peering_id": pcx.id},
            )
        )
        return pcx
    if pcx.status in TRANSIENT:
        plan.deferred.append(
            Deferred(f"aws/VpcPeeringConnection/{pcx.id}", f"{pcx.status}: routed once active")
        )
        return None
    if pcx.status == "pending-acceptance" and pcx.accepter_vpc != obs.vpc_id:
        plan.deferred.append(
            Deferred(
                f"aws/VpcPeeringConnection/{pcx.id}",
                f"pending acceptance by {peer.name}'s VPC: routed once it is active",
            )
        )
        return None
    plan.findings.append(
        Finding(
            Severity.ERROR,
            "peering.state",
            f"VPC peering {pcx.id} between {both} is {pcx.status}, not active"
            + (
                ""
                if ours or pcx.status != "pending-acceptance"
                else f" (it lacks the tag {FEDERATION_LABEL}={obs.federation}, so fedkeeper "
                "does not accept it)"
            )
            + ": no traffic flows between the two VPCs until it is",
        )
    )
    return None


def _plan_route(
    obs: PeeringObservation,
    peer: PeerNetwork,
    pcx: PeeringConnection,
    rt: RouteTable,
    cidr: str,
    plan: Plan,
    after: tuple[str, ...],
) -> None:
    have = _static_route(rt, cidr)
    if have is not None and have[0] == pcx.id:
        if have[1] != "active":
            plan.findings.append(
                Finding(
                    Severity.WARNING,
                    "peering.route",
                    f"route table {_label(rt)}'s route to {peer.name}'s {cidr} via {pcx.id} is "
                    f"{have[1]}",
                )
            )
        return
    payload = {
        "route_table_id": rt.id,
        "destination_cidr_block": cidr,
        "vpc_peering_connection_id": pcx.id,
    }
    if have is None:
        plan.changes.append(
            _route_change(
                rt,
                cidr,
                Action.CREATE,
                f"route table {_label(rt)} has no route to {peer.name}'s {cidr}: its subnets "
                f"cannot reach {peer.name}'s pods; routing it via peering {pcx.id}",
                {"op": "create_route", **payload},
                after,
            )
        )
        return
    target = have[0]
    earlier = next(
        (
            p
            for p in obs.peerings
            if p.id == target and peer.vpc_id is not None and p.joins(obs.vpc_id, peer.vpc_id)
        ),
        None,
    )
    if earlier is not None:
        plan.changes.append(
            _route_change(
                rt,
                cidr,
                Action.UPDATE,
                f"route table {_label(rt)} routes {peer.name}'s {cidr} via peering {target}, "
                f"which is {earlier.status}; routing it via the active peering {pcx.id}",
                {"op": "replace_route", **payload},
                after,
            )
        )
        return
    plan.findings.append(
        Finding(
            Severity.WARNING,
            "peering.route-conflict",
            f"route table {_label(rt)} sends {peer.name}'s {cidr} to {target}, not to the "
            f"peering {pcx.id}: fedkeeper does not overwrite a route it did not create — "
            f"point it at {pcx.id} or remove it",
        )
    )


def _route_change(
    rt: RouteTable,
    cidr: str,
    action: Action,
    reason: str,
    payload: dict[str, str],
    after: tuple[str, ...] = (),
) -> Change:
    return Change(
        backend="aws",
        kind="Route",
        namespace=rt.id,
        name=cidr,
        action=action,
        invariant=Invariant.ROUTES,
        reason=reason,
        payload=payload,
        after=after,
    )
