"""API calls of a converged reconcile, and how they grow with the size of the world.

Counts come from the emulators' own request logs (moto calls through the sandbox session, the
fake API servers' request logs), split into reads and writes per backend.
"""

from __future__ import annotations

import ipaddress
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from fedkeeper.config import FederationConfig, load_config
from fedkeeper.lambda_runtime import Settings, build_connections
from fedkeeper.model import Scope
from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox import event_factory as ev
from fedkeeper.sandbox.scenarios import SCENARIOS, run_scenario
from fedkeeper.service import Connections, reconcile

AWS_READS = ("Describe", "List", "Get")


@dataclass
class Calls:
    aws_r: int = 0
    aws_w: int = 0
    eks_r: int = 0
    eks_w: int = 0
    onprem_r: int = 0
    onprem_w: int = 0

    def cells(self) -> list[str]:
        return [
            f"{self.aws_r}/{self.aws_w}",
            f"{self.eks_r}/{self.eks_w}",
            f"{self.onprem_r}/{self.onprem_w}",
        ]


def emulator_calls(sb: Sandbox) -> Calls:
    c = Calls()
    for service, op in sb.aws.calls:
        if service == "sts":
            continue
        if op.startswith(AWS_READS):
            c.aws_r += 1
        else:
            c.aws_w += 1
    for rec in sb.eks_server.requests:
        if rec.is_write:
            c.eks_w += 1
        else:
            c.eks_r += 1
    for rec in sb.onprem_server.requests:
        if rec.is_write:
            c.onprem_w += 1
        else:
            c.onprem_r += 1
    return c


def grow(sb: Sandbox, *, route_tables: int, cidrs: int, pools: int) -> None:
    """Add private route tables (propagating), secondary VPC CIDRs and unrelated on-prem pools."""
    b = sb.baseline
    assert b is not None
    ec2 = sb.aws_session().client("ec2")
    nat = b.nat_gateway_ids[0]
    extra_tables = max(0, route_tables - len(b.private_route_table_ids))
    free = ipaddress.ip_network("10.100.128.0/17").subnets(new_prefix=28)
    azs = [
        s["AvailabilityZone"]
        for s in ec2.describe_subnets(SubnetIds=list(b.private_subnet_ids))["Subnets"]
    ]
    for i in range(extra_tables):
        subnet = ec2.create_subnet(
            VpcId=b.vpc_id, CidrBlock=str(next(free)), AvailabilityZone=azs[i % len(azs)]
        )
        rt = ec2.create_route_table(VpcId=b.vpc_id)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        ec2.associate_route_table(RouteTableId=rt, SubnetId=subnet["Subnet"]["SubnetId"])
        ec2.enable_vgw_route_propagation(RouteTableId=rt, GatewayId=b.vgw_id)
    for i in range(1, cidrs):
        ec2.associate_vpc_cidr_block(VpcId=b.vpc_id, CidrBlock=f"10.{100 + i}.0.0/16")
    api = sb.config.federation.calico_api
    for i in range(pools):
        sb.onprem_server.seed(
            {
                "apiVersion": f"{api.group}/{api.version}",
                "kind": "IPPool",
                "metadata": {"name": f"site-pool-{i}"},
                "spec": {"cidr": f"172.{16 + i // 256}.{i % 256}.0/24", "disabled": False},
            }
        )


# The worlds a converged full run is measured in: the baseline and each dimension grown to
# the bounds (2-200 route tables, 1-5 VPC CIDRs, 0-1,000 foreign on-prem pools).
WORLDS: tuple[tuple[str, dict[str, int]], ...] = (
    ("baseline (2 tables, 1 CIDR, 0 pools)", {}),
    ("20 route tables", {"route_tables": 20}),
    ("200 route tables", {"route_tables": 200}),
    ("3 VPC CIDRs", {"cidrs": 3}),
    ("5 VPC CIDRs", {"cidrs": 5}),
    ("100 foreign pools", {"pools": 100}),
    ("1,000 foreign pools", {"pools": 1000}),
    ("all at once (200, 5, 1,000)", {"route_tables": 200, "cidrs": 5, "pools": 1000}),
)


def deployed_connections(sb: Sandbox) -> Connections:
    """Connections as a deployed function builds them (the ids the stack sets, the checks'
    preconditions kept between runs), as the reconciler, on the sandbox clock."""
    b = sb.baseline
    assert b is not None
    settings = Settings.from_env({}).model_copy(
        update={
            "vpc_id": b.vpc_id,
            "vgw_id": b.vgw_id,
            "vpn_connection_id": b.vpn_connection_id,
            "cluster_name": sb.config.sole_eks().cluster_name,
        }
    )
    return build_connections(
        settings, sb.config, session=sb.reconciler_session(), clock=sb.clock.monotonic
    )


@dataclass
class Converged:
    """Converged full runs in one world: a fresh container's first, then the steady state."""

    first: Calls  # a fresh container's first run: every read it can make
    reads: list[str]  # what that first run read, in order
    steady: list[Calls]  # the runs after it, on the same connections
    ms: float  # median time of the steady runs
    steady_reads: list[list[str]] = field(default_factory=list)

    @property
    def calls(self) -> Calls:
        """The steady run that read the most."""
        return max(self.steady, key=lambda c: c.aws_r + c.eks_r + c.onprem_r)


def _read_log(sb: Sandbox) -> list[str]:
    out = [f"aws {svc}:{op}" for svc, op in sb.aws.calls if svc != "sts"]
    for name, server in (("eks", sb.eks_server), ("onprem", sb.onprem_server)):
        out += [
            f"{name} {r.method} {r.path}" + ("?" + r.query.split("=", 1)[0] if r.query else "")
            for r in server.requests
            if not r.is_write
        ]
    return out


STEADY_RUNS = 3  # as many as the checks have precondition groups: each is re-read once


def converged_calls(
    config: FederationConfig,
    *,
    deployed: bool = True,
    route_tables: int = 2,
    cidrs: int = 1,
    pools: int = 0,
) -> Converged:
    """Converged full runs: ``deployed`` as the repair function runs them, else as the CLI
    does (discovering the VPC and its gateway, every precondition read each run)."""
    with Sandbox.start(config) as sb:
        grow(sb, route_tables=route_tables, cidrs=cidrs, pools=pools)
        sb.reconcile(None, "apply")  # converge the grown world
        conns = deployed_connections(sb) if deployed else sb.connections()
        sb.clear_logs()
        reconcile(conns, Scope.everything(), "apply")
        first, reads = emulator_calls(sb), _read_log(sb)
        steady, times, steady_reads = [], [], []
        for _ in range(STEADY_RUNS):
            sb.clear_logs()
            t = time.perf_counter()
            report = reconcile(conns, Scope.everything(), "apply")
            times.append((time.perf_counter() - t) * 1000)
            assert not report.changes and not report.errors, report.to_dict()
            steady.append(emulator_calls(sb))
            steady_reads.append(_read_log(sb))
        return Converged(first, reads, steady, statistics.median(times), steady_reads)


def scaling(config: FederationConfig) -> list[tuple[str, Converged]]:
    """A converged full run in every world of :data:`WORLDS` (the repair function's path)."""
    return [(label, converged_calls(config, **kw)) for label, kw in WORLDS]


def scaling_rows(config: FederationConfig) -> list[list[str]]:
    rows = []
    for label, c in scaling(config):
        reads = c.calls.aws_r + c.calls.eks_r + c.calls.onprem_r
        writes = c.calls.aws_w + c.calls.eks_w + c.calls.onprem_w
        rows.append([label, *c.calls.cells(), f"{reads}/{writes}", f"{c.ms:.0f}"])
    return rows


def _events(sb: Sandbox) -> dict[str, dict[str, Any]]:
    b = sb.baseline
    assert b is not None
    region = sb.config.aws.region
    from fedkeeper.events import tunnel_alarm_name

    return {
        "CloudTrail DisableVgwRoutePropagation": ev.cloudtrail(
            "ec2",
            "DisableVgwRoutePropagation",
            {"routeTableId": b.private_route_table_ids[0], "gatewayId": b.vgw_id},
            region,
        ),
        "CloudTrail AssociateVpcCidrBlock": ev.cloudtrail(
            "ec2",
            "AssociateVpcCidrBlock",
            {"vpcId": b.vpc_id, "cidrBlock": "10.109.0.0/16"},
            region,
        ),
        "CloudTrail EKS UpdateAddon": ev.cloudtrail(
            "eks", "UpdateAddon", {"clusterName": b.cluster_name, "addonName": "vpc-cni"}, region
        ),
        "EKS Addon Update Succeeded": ev.addon_event(
            "EKS Addon Update Succeeded", b.cluster_name, "vpc-cni", region
        ),
        "TunnelState alarm ALARM": ev.tunnel_alarm(
            tunnel_alarm_name(sb.config, 1),
            "ALARM",
            "OK",
            b.vpn_connection_id,
            b.tunnel_outside_ips[0],
            region,
        ),
        "TunnelState alarm OK": ev.tunnel_alarm(
            tunnel_alarm_name(sb.config, 1),
            "OK",
            "ALARM",
            b.vpn_connection_id,
            b.tunnel_outside_ips[0],
            region,
        ),
        "AWS Health VPN": ev.health_vpn("AWS_VPN_REDUNDANCY_LOSS", region, b.vpn_connection_id),
        "Scheduled": ev.scheduled(region),
    }


def event_rows(config: FederationConfig) -> list[list[str]]:
    rows = []
    with Sandbox.start(config) as sb:
        for label, event in _events(sb).items():
            sb.clear_logs()
            report = sb.deliver(event)
            calls = emulator_calls(sb)
            rows.append(
                [
                    label,
                    ",".join(report.scope.names()) or "-",
                    *calls.cells(),
                    str(report.duration_ms),
                ]
            )
    return rows


def scenario_rows(config: FederationConfig) -> list[list[str]]:
    rows = []
    with Sandbox.start(config) as sb:
        for name, scenario in SCENARIOS.items():
            t = time.perf_counter()
            result = run_scenario(sb, scenario)
            wall = (time.perf_counter() - t) * 1000
            rows.append(
                [name, f"{result.report.duration_ms}", f"{wall:.0f}", "yes" if result.ok else "NO"]
            )
    return rows


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def main(config_path: str = "federation.example.yaml") -> None:
    config = load_config(config_path)
    print(
        "Converged full reconcile: API calls (reads/writes) per backend, from the emulators' logs"
    )
    print(
        table(
            ["world", "aws r/w", "eks r/w", "onprem r/w", "total r/w", "ms"],
            scaling_rows(config),
        )
    )
    print(
        "\nScoped event reconciles on a converged federation (delivered through the deployed patterns)"
    )
    print(table(["event", "scope", "aws r/w", "eks r/w", "onprem r/w", "ms"], event_rows(config)))
    print("\nEvent → converged, per demo scenario (repair run, and inject+deliver+rerun wall time)")
    print(table(["scenario", "repair ms", "wall ms", "ok"], scenario_rows(config)))


if __name__ == "__main__":
    main()
