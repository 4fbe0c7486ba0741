"""Invariant 1 — routes: every private route table of the VPC propagates from the VGW.

Status (read-only): each on-prem host and pod CIDR is present in those tables as a
propagated, active route; a blackhole or a missing route is a finding (BGP is not
advertising it, or no tunnel is up).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from fedkeeper.invariants import Plan
from fedkeeper.model import Action, Change, Finding, Invariant, RouteTable, Severity


@dataclass(frozen=True)
class RoutesObservation:
    vpc_id: str
    vgw_id: str | None
    route_tables: Sequence[RouteTable]
    onprem_cidrs: Sequence[str]  # host + pod CIDRs the on-prem router should advertise


def private_tables(obs: RoutesObservation) -> list[RouteTable]:
    return [rt for rt in obs.route_tables if rt.private]


def _label(rt: RouteTable) -> str:
    return f"{rt.id} ({rt.name})" if rt.name else rt.id


def route_state(cidr: str, rt: RouteTable) -> str | None:
    """State of the propagated route covering ``cidr`` in ``rt`` (active/blackhole), or None."""
    want = ipaddress.ip_network(cidr)
    best: tuple[int, str] | None = None
    for r in rt.routes:
        if not r.propagated:
            continue
        try:
            net = ipaddress.ip_network(r.destination)
        except ValueError:
            continue
        if (
            isinstance(net, ipaddress.IPv4Network)
            and isinstance(want, ipaddress.IPv4Network)
            and want.subnet_of(net)
            and (best is None or net.prefixlen > best[0])
        ):
            best = (net.prefixlen, r.state)
    return best[1] if best else None


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
        for cidr in obs.onprem_cidrs:
            state = route_state(cidr, rt)
            if state is None:
                plan.findings.append(
                    Finding(
                        Severity.WARNING,
                        "routes.propagated",
                        f"route table {_label(rt)} has no propagated route for on-prem "
                        f"{cidr}: the on-prem router is not advertising it over BGP",
                    )
                )
            elif state != "active":
                plan.findings.append(
                    Finding(
                        Severity.WARNING,
                        "routes.propagated",
                        f"the propagated route for on-prem {cidr} in route table {_label(rt)} "
                        f"is {state} (no VPN tunnel up?)",
                    )
                )
    return plan
