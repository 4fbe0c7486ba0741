"""Invariant 5 — vpn (read-only): both tunnels UP, each accepting routes.

When no tunnel is up the on-prem cluster is unreachable: the engine defers its work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedkeeper.invariants import Plan
from fedkeeper.model import Finding, Severity, VpnConnection


@dataclass(frozen=True)
class VpnObservation:
    vgw_id: str | None
    connections: Sequence[VpnConnection]


@dataclass(frozen=True)
class VpnVerdict:
    plan: Plan
    tunnels_up: int
    tunnels_total: int

    @property
    def onprem_reachable(self) -> bool:
        """False only when we know every tunnel is down (unknown counts as reachable)."""
        return self.tunnels_total == 0 or self.tunnels_up > 0


def assess_vpn(obs: VpnObservation) -> VpnVerdict:
    plan = Plan()
    if obs.vgw_id is None:
        plan.findings.append(
            Finding(Severity.ERROR, "vpn.gateway", "no virtual private gateway on the VPC")
        )
        return VpnVerdict(plan, 0, 0)
    if not obs.connections:
        plan.findings.append(
            Finding(Severity.ERROR, "vpn.connection", f"no VPN connection on {obs.vgw_id}")
        )
        return VpnVerdict(plan, 0, 0)
    up = total = 0
    for conn in obs.connections:
        if conn.static_routes_only:
            plan.findings.append(
                Finding(
                    Severity.WARNING,
                    "vpn.routing",
                    f"VPN {conn.id} uses static routes; the federation expects BGP",
                )
            )
        for i, t in enumerate(conn.tunnels, start=1):
            total += 1
            since = f" since {t.last_change}" if t.last_change else ""
            detail = f" ({t.message})" if t.message else ""
            if not t.up:
                plan.findings.append(
                    Finding(
                        Severity.WARNING,
                        "vpn.tunnels",
                        f"VPN {conn.id} tunnel {i} ({t.outside_ip}) DOWN{since}{detail}",
                    )
                )
            else:
                up += 1
                if t.accepted_routes == 0:
                    plan.findings.append(
                        Finding(
                            Severity.WARNING,
                            "vpn.routes",
                            f"VPN {conn.id} tunnel {i} ({t.outside_ip}) is UP but accepts no "
                            "routes: BGP advertises nothing from on-prem",
                        )
                    )
    if total and not up:
        plan.findings.append(
            Finding(
                Severity.ERROR,
                "vpn.tunnels",
                "no VPN tunnel is up: the on-prem cluster is unreachable; its work is deferred",
            )
        )
    return VpnVerdict(plan, up, total)
