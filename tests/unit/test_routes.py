"""Invariant 1 (routes) and 5 (vpn), pure: observation in, plan out."""

from __future__ import annotations

import ipaddress

from fedkeeper.invariants.routes import RoutesObservation, plan_routes
from fedkeeper.invariants.vpn import VpnObservation, assess_vpn
from fedkeeper.model import Invariant, Route, RouteTable, Tunnel, VpnConnection

VGW = "vgw-1"
NAT_DEFAULT = Route("0.0.0.0/0", "nat-1", "CreateRoute", "active")
LOCAL = Route("10.100.0.0/16", "local", "CreateRouteTable", "active")


def table(
    rt_id: str,
    *,
    propagating: bool = True,
    routes: tuple[Route, ...] = (),
    public: bool = False,
    subnets: tuple[str, ...] = ("subnet-1",),
    tags: dict[str, str] | None = None,
) -> RouteTable:
    default = Route("0.0.0.0/0", "igw-1", "CreateRoute", "active") if public else NAT_DEFAULT
    return RouteTable(
        id=rt_id,
        name=f"name-{rt_id}",
        subnet_ids=subnets,
        main=False,
        routes=(LOCAL, default, *routes),
        propagating_vgws=frozenset({VGW} if propagating else ()),
        tags=tags or {},
    )


def prop(cidr: str, state: str = "active") -> Route:
    return Route(cidr, VGW, "EnableVgwRoutePropagation", state)


ONPREM = ["192.168.0.0/16", "10.244.0.0/16"]
LEARNED = (prop("192.168.0.0/16"), prop("10.244.0.0/16"))


def obs(*tables: RouteTable, vgw: str | None = VGW) -> RoutesObservation:
    return RoutesObservation("vpc-1", vgw, list(tables), ONPREM)


def test_converged_tables_plan_nothing() -> None:
    plan = plan_routes(obs(table("rtb-a", routes=LEARNED), table("rtb-b", routes=LEARNED)))
    assert plan.changes == [] and plan.findings == []


def test_private_table_without_propagation_is_enabled_with_a_reason() -> None:
    plan = plan_routes(obs(table("rtb-a", routes=LEARNED), table("rtb-b", propagating=False)))
    [change] = plan.changes
    assert change.target == "aws/RouteTable/rtb-b"
    assert change.invariant is Invariant.ROUTES
    assert change.payload == {
        "op": "enable_vgw_route_propagation",
        "route_table_id": "rtb-b",
        "gateway_id": VGW,
    }
    assert "does not propagate routes from vgw-1" in change.reason
    assert "cannot reach on-prem" in change.reason


def test_public_table_is_never_touched() -> None:
    plan = plan_routes(obs(table("rtb-pub", propagating=False, public=True)))
    assert plan.changes == []


def test_table_without_subnets_is_not_private() -> None:
    plan = plan_routes(obs(table("rtb-main", propagating=False, subnets=())))
    assert plan.changes == []
    assert plan.findings[0].check == "routes.tables"


def test_opted_out_table_is_reported_not_written() -> None:
    t = table("rtb-x", propagating=False, tags={"fedkeeper.io/ignore": "true"})
    plan = plan_routes(obs(t))
    assert plan.changes == []
    assert plan.findings[0].check == "routes.ignored"


def test_missing_vgw_is_an_error_finding_and_no_write() -> None:
    plan = plan_routes(obs(table("rtb-a", propagating=False), vgw=None))
    assert plan.changes == []
    assert plan.findings[0].severity.value == "error"


def test_onprem_cidr_not_advertised_is_a_finding() -> None:
    plan = plan_routes(obs(table("rtb-a", routes=(prop("192.168.0.0/16"),))))
    assert plan.changes == []
    [f] = plan.findings
    assert "10.244.0.0/16" in f.message and "not advertising" in f.message


def test_blackhole_propagated_route_is_a_finding() -> None:
    plan = plan_routes(
        obs(table("rtb-a", routes=(prop("192.168.0.0/16", "blackhole"), LEARNED[1])))
    )
    assert "blackhole" in plan.findings[0].message


def test_covering_supernet_counts_as_routed() -> None:
    plan = plan_routes(obs(table("rtb-a", routes=(prop("192.168.0.0/15"), prop("10.0.0.0/8")))))
    assert plan.findings == []


def tunnel(ip: str, up: bool, routes: int = 2) -> Tunnel:
    return Tunnel(ip, up, routes if up else 0, "2026-11-27T03:00:00+00:00", "")


def test_both_tunnels_up_is_quiet() -> None:
    v = assess_vpn(
        VpnObservation(
            VGW,
            [VpnConnection("vpn-1", "available", (tunnel("a", True), tunnel("b", True)), False)],
        )
    )
    assert v.tunnels_up == 2 and v.onprem_reachable and v.plan.findings == []


def test_one_tunnel_down_warns_with_since() -> None:
    v = assess_vpn(
        VpnObservation(
            VGW,
            [VpnConnection("vpn-1", "available", (tunnel("a", True), tunnel("b", False)), False)],
        )
    )
    assert v.onprem_reachable
    [f] = v.plan.findings
    assert f.check == "vpn.tunnels" and "DOWN since 2026-11-27" in f.message


def test_no_tunnel_up_makes_onprem_unreachable() -> None:
    v = assess_vpn(
        VpnObservation(
            VGW,
            [VpnConnection("vpn-1", "available", (tunnel("a", False), tunnel("b", False)), False)],
        )
    )
    assert not v.onprem_reachable
    assert any(f.severity.value == "error" for f in v.plan.findings)


def test_tunnel_up_without_routes_warns() -> None:
    v = assess_vpn(
        VpnObservation(
            VGW,
            [VpnConnection("vpn-1", "available", (tunnel("a", True, 0), tunnel("b", True)), False)],
        )
    )
    assert [f.check for f in v.plan.findings] == ["vpn.routes"]


def test_static_vpn_warns() -> None:
    v = assess_vpn(
        VpnObservation(VGW, [VpnConnection("vpn-1", "available", (tunnel("a", True),), True)])
    )
    assert [f.check for f in v.plan.findings] == ["vpn.routing"]


# --- routes by coverage -----------------------------------------------------------------------


def blocks(cidr: str, prefix: int = 26) -> tuple[Route, ...]:

    return tuple(prop(str(n)) for n in ipaddress.ip_network(cidr).subnets(new_prefix=prefix))


def test_a_cidr_covered_by_per_node_26_blocks_counts_as_advertised() -> None:
    per_node = blocks("10.244.0.0/24")  # four /26 blocks
    o = RoutesObservation(
        "vpc-1",
        VGW,
        [table("rtb-a", routes=(LEARNED[0], *per_node))],
        ["192.168.0.0/16", "10.244.0.0/24"],
    )
    plan = plan_routes(o)
    [finding] = plan.findings
    assert finding.severity.value == "info" and finding.check == "routes.coverage"
    assert "by 4 propagated routes" in finding.message
    assert "5 propagated routes against the VGW's limit of 100" in finding.message


def test_a_gap_in_the_26_blocks_is_reported_with_what_is_missing() -> None:
    per_node = blocks("10.244.0.0/24")[:3]
    o = RoutesObservation("vpc-1", VGW, [table("rtb-a", routes=per_node)], ["10.244.0.0/24"])
    [finding] = plan_routes(o).findings
    assert finding.severity.value == "warning" and "only partly routed" in finding.message
    assert "10.244.0.192/26" in finding.message


def test_coverage_close_to_the_vgw_route_limit_is_a_warning() -> None:
    per_node = blocks("10.244.0.0/20")  # 64 /26 blocks
    extra = blocks("10.245.0.0/21")  # 32 more
    o = RoutesObservation(
        "vpc-1", VGW, [table("rtb-a", routes=(*per_node, *extra))], ["10.244.0.0/20"]
    )
    [finding] = plan_routes(o).findings
    assert finding.severity.value == "warning" and "96 propagated routes" in finding.message
