"""Observation: what each invariant reads, through the adapters, before its pure plan.

Each runner reads what its invariant manages afresh (level-triggered), hands the
observation to the pure module in :mod:`fedkeeper.invariants`, and returns the Plan. Reads
that several invariants share go through ``Run.cached`` so a full reconcile makes them once.
"""

from __future__ import annotations

from fedkeeper.invariants import Plan
from fedkeeper.invariants.routes import RoutesObservation, plan_routes
from fedkeeper.invariants.vpn import VpnObservation, VpnVerdict, assess_vpn
from fedkeeper.model import Finding, Invariant, RouteTable, Severity, VpnConnection
from fedkeeper.service import Run, Runner


def _no_vpc(run: Run, check: str) -> Plan:
    tag = "=".join(run.config.federation_tag)
    return Plan(
        findings=[
            Finding(
                Severity.ERROR,
                check,
                f"no VPC found (tag {tag}, or FEDKEEPER_VPC_ID); deploy the network stack",
            )
        ]
    )


def route_tables(run: Run, vpc_id: str) -> list[RouteTable]:
    tables: list[RouteTable] = run.cached(
        "route_tables", lambda: run.conns.aws.route_tables(vpc_id)
    )
    return tables


def vpn_connections(run: Run, vgw_id: str) -> list[VpnConnection]:
    conns: list[VpnConnection] = run.cached(
        "vpn_connections", lambda: run.conns.aws.vpn_connections(vgw_id)
    )
    return conns


def observe_routes(run: Run) -> RoutesObservation | None:
    vpc = run.vpc()
    if vpc is None:
        return None
    vgw = run.vgw_id(vpc.id)
    onprem = run.config.onprem
    return RoutesObservation(
        vpc_id=vpc.id,
        vgw_id=vgw,
        route_tables=route_tables(run, vpc.id),
        onprem_cidrs=[str(c) for c in (*onprem.host_cidrs, *onprem.pod_cidrs)],
    )


def run_routes(run: Run) -> Plan:
    obs = observe_routes(run)
    return plan_routes(obs) if obs else _no_vpc(run, "routes.vpc")


def observe_vpn(run: Run) -> VpnVerdict | None:
    vpc = run.vpc()
    if vpc is None:
        return None
    vgw = run.vgw_id(vpc.id)
    conns = vpn_connections(run, vgw) if vgw else []
    return assess_vpn(VpnObservation(vgw_id=vgw, connections=conns))


def run_vpn(run: Run) -> Plan:
    verdict = observe_vpn(run)
    if verdict is None:
        return _no_vpc(run, "vpn.vpc")
    run.report.tunnels_up = verdict.tunnels_up
    if not verdict.onprem_reachable:
        run.onprem_down = "no VPN tunnel up: the on-prem cluster is unreachable"
    return verdict.plan


RUNNERS: dict[Invariant, Runner] = {
    Invariant.VPN: run_vpn,
    Invariant.ROUTES: run_routes,
}
