"""Per VPC in a mesh: active peerings and routes to every peer CIDR (plan_peering), and VGW
propagation checked for the prefixes of several sites (plan_routes), pure."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fedkeeper.invariants.peering import (
    PeeringConnection,
    PeeringObservation,
    PeerNetwork,
    plan_peering,
)
from fedkeeper.invariants.routes import RoutesObservation, plan_routes
from fedkeeper.model import Action, Route, RouteTable, Severity

NAT_DEFAULT = Route("0.0.0.0/0", "nat-1", "CreateRoute", "active")
PUBLIC_DEFAULT = Route("0.0.0.0/0", "igw-1", "CreateRoute", "active")
LOCAL = Route("10.1.0.0/16", "local", "CreateRouteTable", "active")
TAGS = {"fedkeeper.io/federation": "fed-mesh"}
B = PeerNetwork("eks-b", "vpc-b", ["10.2.0.0/16"])
C = PeerNetwork("eks-c", "vpc-c", ["10.3.0.0/16", "100.64.0.0/16"])
PCX_B = PeeringConnection("pcx-b", "vpc-a", "vpc-b", "active", TAGS)
PCX_C = PeeringConnection("pcx-c", "vpc-c", "vpc-a", "active", TAGS)


def table(rt_id: str, *routes: Route, public: bool = False) -> RouteTable:
    return RouteTable(
        id=rt_id,
        name=f"name-{rt_id}",
        subnet_ids=("subnet-1",),
        main=False,
        routes=(LOCAL, PUBLIC_DEFAULT if public else NAT_DEFAULT, *routes),
        propagating_vgws=frozenset(),
    )


def via(cidr: str, target: str, state: str = "active") -> Route:
    return Route(cidr, target, "CreateRoute", state)


def obs(
    tables: list[RouteTable],
    peers: list[PeerNetwork] | None = None,
    peerings: list[PeeringConnection] | None = None,
) -> PeeringObservation:
    return PeeringObservation(
        federation="fed-mesh",
        network="eks-a",
        vpc_id="vpc-a",
        route_tables=tables,
        peers=peers if peers is not None else [B, C],
        peerings=peerings if peerings is not None else [PCX_B, PCX_C],
    )


ROUTED = (via("10.2.0.0/16", "pcx-b"), via("10.3.0.0/16", "pcx-c"), via("100.64.0.0/16", "pcx-c"))


def test_given_two_peer_vpcs_and_bare_private_tables_when_planned_then_a_route_to_each_peer_cidr_is_created_in_each() -> (
    None
):
    plan = plan_peering(obs([table("rtb-1"), table("rtb-2"), table("rtb-pub", public=True)]))
    assert sorted((c.action, c.target) for c in plan.changes) == sorted(
        (Action.CREATE, f"aws/Route/{rt}/{cidr}")
        for rt in ("rtb-1", "rtb-2")
        for cidr in ("10.2.0.0/16", "10.3.0.0/16", "100.64.0.0/16")
    )
    by_cidr = {c.name: c.payload["vpc_peering_connection_id"] for c in plan.changes}
    assert by_cidr == {"10.2.0.0/16": "pcx-b", "10.3.0.0/16": "pcx-c", "100.64.0.0/16": "pcx-c"}
    assert all(c.payload["op"] == "create_route" for c in plan.changes)


def test_given_every_route_in_place_when_planned_then_nothing_is_written_or_reported() -> None:
    plan = plan_peering(obs([table("rtb-1", *ROUTED)]))
    assert (plan.changes, plan.findings, plan.deferred) == ([], [], [])


def test_given_a_route_to_a_peer_cidr_via_a_nat_gateway_when_planned_then_it_is_reported_not_overwritten() -> (
    None
):
    plan = plan_peering(obs([table("rtb-1", via("10.2.0.0/16", "nat-9"), *ROUTED[1:])]))
    assert plan.changes == []
    [finding] = plan.findings
    assert finding.check == "peering.route-conflict" and "nat-9" in finding.message
    assert "eks-b's 10.2.0.0/16" in finding.message


def test_given_a_route_via_an_earlier_peering_of_the_same_vpcs_when_planned_then_it_is_pointed_at_the_active_one() -> (
    None
):
    old = PeeringConnection("pcx-old", "vpc-a", "vpc-b", "deleted", TAGS)
    plan = plan_peering(
        obs(
            [table("rtb-1", via("10.2.0.0/16", "pcx-old", "blackhole"), *ROUTED[1:])],
            peerings=[old, PCX_B, PCX_C],
        )
    )
    [change] = plan.changes
    assert change.action is Action.UPDATE and change.payload["op"] == "replace_route"
    assert change.payload["vpc_peering_connection_id"] == "pcx-b"


def test_given_a_propagated_route_to_a_peer_cidr_when_planned_then_the_static_route_is_still_created() -> (
    None
):
    propagated = Route("10.2.0.0/16", "vgw-1", "EnableVgwRoutePropagation", "active")
    plan = plan_peering(obs([table("rtb-1", propagated, *ROUTED[1:])]))
    assert [c.target for c in plan.changes] == ["aws/Route/rtb-1/10.2.0.0/16"]


def test_given_no_peering_with_a_peer_when_planned_then_an_error_names_both_clusters_and_no_route_is_written() -> (
    None
):
    plan = plan_peering(obs([table("rtb-1", *ROUTED[1:])], peerings=[PCX_C]))
    assert plan.changes == []
    [missing] = plan.findings
    assert missing.severity is Severity.ERROR and missing.check == "peering.missing"
    assert "eks-a (vpc-a)" in missing.message and "eks-b" in missing.message


def test_given_our_peering_pending_on_this_accepter_when_planned_then_it_is_accepted_before_its_routes() -> (
    None
):
    pending = PeeringConnection("pcx-b", "vpc-b", "vpc-a", "pending-acceptance", TAGS)
    plan = plan_peering(obs([table("rtb-1", *ROUTED[1:])], peerings=[pending, PCX_C]))
    accept, route = plan.changes
    assert accept.payload == {"op": "accept_vpc_peering_connection", "peering_id": "pcx-b"}
    assert route.after == ("aws/VpcPeeringConnection/pcx-b",)


def test_given_a_pending_peering_not_tagged_as_ours_when_planned_then_it_is_reported_not_accepted() -> (
    None
):
    pending = PeeringConnection("pcx-b", "vpc-b", "vpc-a", "pending-acceptance", {})
    plan = plan_peering(obs([table("rtb-1", *ROUTED[1:])], peerings=[pending, PCX_C]))
    assert plan.changes == []
    assert [f.check for f in plan.findings] == ["peering.state"]


def test_given_a_pending_peering_requested_by_this_vpc_when_planned_then_its_routes_wait() -> None:
    pending = PeeringConnection("pcx-b", "vpc-a", "vpc-b", "pending-acceptance", TAGS)
    plan = plan_peering(obs([table("rtb-1", *ROUTED[1:])], peerings=[pending, PCX_C]))
    assert plan.changes == [] and plan.findings == []
    assert [d.target for d in plan.deferred] == ["aws/VpcPeeringConnection/pcx-b"]


@given(st.sets(st.sampled_from(ROUTED)), st.integers(1, 3))
@settings(max_examples=40, deadline=None)
def test_given_any_routes_missing_when_planned_then_exactly_the_missing_ones_are_created(
    present: set[Route], tables: int
) -> None:
    rts = [table(f"rtb-{i}", *sorted(present, key=str)) for i in range(tables)]
    plan = plan_peering(obs(rts))
    missing = {r.destination for r in ROUTED} - {r.destination for r in present}
    assert sorted(c.target for c in plan.changes) == sorted(
        f"aws/Route/rtb-{i}/{cidr}" for i in range(tables) for cidr in missing
    )


def prop(cidr: str) -> Route:
    return Route(cidr, "vgw-1", "EnableVgwRoutePropagation", "active")


def test_given_two_sites_on_one_vgw_when_one_is_not_advertising_then_the_finding_names_that_site() -> (
    None
):
    rt = RouteTable(
        id="rtb-1",
        name="",
        subnet_ids=("subnet-1",),
        main=False,
        routes=(LOCAL, NAT_DEFAULT, prop("192.168.1.0/24"), prop("10.65.0.0/16")),
        propagating_vgws=frozenset({"vgw-1"}),
    )
    o = RoutesObservation(
        "vpc-a",
        "vgw-1",
        [rt],
        [],
        site_prefixes=[
            ("dc1", "192.168.1.0/24"),
            ("dc1", "10.65.0.0/16"),
            ("dc2", "192.168.2.0/24"),
        ],
    )
    plan = plan_routes(o)
    [finding] = plan.findings
    assert "dc2's 192.168.2.0/24" in finding.message and "dc2 is not advertising" in finding.message
