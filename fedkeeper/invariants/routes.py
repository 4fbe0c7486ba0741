"""Invariant 1 — routes: every private route table of the VPC propagates from the VGW.

Status (read-only): each on-prem host and pod CIDR is *covered* in those tables by
propagated, active routes — one route containing it, or the union of more specific ones
(an edge router may advertise Calico's per-node /26 blocks). A blackhole, a gap or a missing
route is a finding (BGP is not advertising it, or no tunnel is up). Coverage by many routes
is reported with the count against the VGW's limit of 100 dynamic routes per VPN
connection (AWS Site-to-Site VPN quotas): routes beyond it are not propagated.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from fedkeeper.invariants import Plan
from fedkeeper.model import Action, Change, Finding, Invariant, RouteTable, Severity


@dataclass(frozen=True)
class RoutesObservation:
    vpc_id: str
    vgw_id: str | None
    route_tables: Sequence[RouteTable]
    onprem_cidrs: Sequence[str]  # host + pod CIDRs the on-prem router should advertise
    # The mesh: (site, prefix) for every site with a VPN to this VPC's VGW (the topology's
    # propagated_prefixes, by site); when given, these are checked instead of onprem_cidrs
    # and findings name the site.
    site_prefixes: Sequence[tuple[str, str]] = ()

    def prefixes(self) -> list[tuple[str, str]]:
        """(site, prefix) to find propagated; the site is "" for today's one on-prem."""
        if self.site_prefixes:
            return list(self.site_prefixes)
        return [("", c) for c in self.onprem_cidrs]


def private_tables(obs: RoutesObservation) -> list[RouteTable]:
    return [rt for rt in obs.route_tables if rt.private]


def _label(rt: RouteTable) -> str:
    return f"{rt.id} ({rt.name})" if rt.name else rt.id


def route_state(cidr: str, rt: RouteTable) -> str | None:
    """State of the propagated route covering ``cidr`` in ``rt`` (active/blackhole), or None."""
    want = ipaddress.ip_network(cidr)
    if not isinstance(want, ipaddress.IPv4Network):
        return None
    covering = [(net, state) for net, state in _propagated_v4(rt) if want.subnet_of(net)]
    if not covering:
        return None
    return max(covering, key=lambda c: c[0].prefixlen)[1]  # the most specific route wins


VGW_DYNAMIC_ROUTE_LIMIT = 100  # dynamic routes a VGW accepts per VPN connection
NEAR_LIMIT = 80


@dataclass(frozen=True)
class RouteCoverage:
    """How the propagated routes of one table cover one on-prem CIDR."""

    cidr: str
    routes: tuple[str, ...]  # the active propagated routes that cover it (or part of it)
    missing: tuple[str, ...]  # the parts no active propagated route covers
    inactive: tuple[str, ...] = field(default_factory=tuple)  # non-active routes over it

    @property
    def covered(self) -> bool:
        return not self.missing


def _propagated_v4(rt: RouteTable) -> list[tuple[ipaddress.IPv4Network, str]]:
    out = []
    for r in rt.routes:
        if not r.propagated:
            continue
        try:
            net = ipaddress.ip_network(r.destination)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network):
            out.append((net, r.state))
    return out


def route_coverage(cidr: str, rt: RouteTable) -> RouteCoverage:
    """Which active propagated routes cover ``cidr`` in ``rt``, and what they leave out."""
    want = ipaddress.IPv4Network(cidr)
    routes = _propagated_v4(rt)
    containing = sorted(
        (n for n, state in routes if state == "active" and want.subnet_of(n)),
        key=lambda n: n.prefixlen,
    )
    inactive = tuple(
        f"{n} {state}" for n, state in routes if state != "active" and n.overlaps(want)
    )
    if containing:
        return RouteCoverage(cidr, (str(containing[-1]),), (), inactive)
    inside = sorted(n for n, state in routes if state == "active" and n.subnet_of(want))
    rest = [want]
    for n in inside:
        rest = [part for r in rest for part in _minus(r, n)]
    missing = tuple(str(n) for n in ipaddress.collapse_addresses(rest))
    return RouteCoverage(cidr, tuple(str(n) for n in inside), missing, inactive)


def _minus(net: ipaddress.IPv4Network, hole: ipaddress.IPv4Network) -> list[ipaddress.IPv4Network]:
    if not net.overlaps(hole):
        return [net]
    if net.subnet_of(hole):
        return []
    return list(net.address_exclude(hole))


def plan_routes(obs: RoutesObservation) -> Plan:
    """Enable VGW propagation where it is off; report on-prem CIDRs that are not routed."""
    plan = Plan()
    if obs.vgw_id is None:
        plan.findings.append(
            Finding(
                Severity.ERROR,
                "routes.vgw",
                f"no virtual private gateway is attached to VPC {obs.vpc_id}; routes to "
                "on-prem cannot propagate (deploy the network stack)",
            )
        )
        return plan
    tables = private_tables(obs)
    if not tables:
        plan.findings.append(
            Finding(
                Severity.WARNING,
                "routes.tables",
                f"VPC {obs.vpc_id} has no private route tables (subnet route tables without a "
                "default route to an internet gateway); nothing to propagate into",
            )
        )
        return plan
    for rt in tables:
        if rt.ignored:
            plan.findings.append(
                Finding(
                    Severity.INFO,
                    "routes.ignored",
                    f"route table {_label(rt)} is tagged fedkeeper.io/ignore=true; left alone",
                )
            )
            continue
        if obs.vgw_id not in rt.propagating_vgws:
            plan.changes.append(
                Change(
                    backend="aws",
                    kind="RouteTable",
                    name=rt.id,
                    action=Action.UPDATE,
                    invariant=Invariant.ROUTES,
                    reason=(
                        f"route table {_label(rt)} does not propagate routes from "
                        f"{obs.vgw_id}: its subnets ({', '.join(rt.subnet_ids)}) cannot reach "
                        "on-prem; enabling VGW route propagation"
                    ),
                    payload={
                        "op": "enable_vgw_route_propagation",
                        "route_table_id": rt.id,
                        "gateway_id": obs.vgw_id,
                    },
                )
            )
            continue
        for site, cidr in obs.prefixes():
            _report_coverage(route_coverage(cidr, rt), rt, plan, site)
    return plan


def _report_coverage(cov: RouteCoverage, rt: RouteTable, plan: Plan, site: str = "") -> None:
    cidr, label = cov.cidr, _label(rt)
    where = f"{site}'s" if site else "on-prem"  # the site that should advertise it
    if cov.covered and len(cov.routes) == 1:
        return
    if cov.covered:
        total = len(_propagated_v4(rt))
        near = total >= NEAR_LIMIT
        plan.findings.append(
            Finding(
                Severity.WARNING if near else Severity.INFO,
                "routes.coverage",
                f"{where} {cidr} is covered in route table {label} by {len(cov.routes)} "
                f"propagated routes (more specific ones, e.g. {cov.routes[0]}); the table has "
                f"{total} propagated routes against the VGW's limit of "
                f"{VGW_DYNAMIC_ROUTE_LIMIT} dynamic routes per VPN connection"
                + (
                    "; close to it: routes beyond it are dropped — summarise on "
                    + (f"{site}'s router" if site else "the on-prem router")
                    if near
                    else ""
                ),
            )
        )
        return
    if cov.inactive and not cov.routes:
        plan.findings.append(
            Finding(
                Severity.WARNING,
                "routes.propagated",
                f"the propagated route for {where} {cidr} in route table {label} is not "
                f"active: {', '.join(cov.inactive)} (no VPN tunnel up?)",
            )
        )
        return
    if not cov.routes:
        plan.findings.append(
            Finding(
                Severity.WARNING,
                "routes.propagated",
                f"route table {label} has no propagated route for {where} "
                f"{cidr}: {f'{site} is' if site else 'the on-prem router is'} not advertising "
                "it over BGP",
            )
        )
        return
    shown = ", ".join(cov.missing[:3]) + (" ..." if len(cov.missing) > 3 else "")
    plan.findings.append(
        Finding(
            Severity.WARNING,
            "routes.propagated",
            f"{where} {cidr} is only partly routed in route table {label}: "
            f"{len(cov.routes)} propagated routes cover part of it, {shown} "
            "is not advertised over BGP",
        )
    )
