"""API calls of a converged reconcile, and how they grow with the size of the world.

Counts come from the emulators' own request logs (moto calls through the sandbox session, the
fake API servers' request logs), split into reads and writes per backend.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Any

from fedkeeper.config import FederationConfig, load_config
from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox import event_factory as ev
from fedkeeper.sandbox.scenarios import SCENARIOS, run_scenario

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


def converged_calls(
    config: FederationConfig, *, route_tables: int = 2, cidrs: int = 1, pools: int = 0
) -> tuple[Calls, float]:
    with Sandbox.start(config) as sb:
        grow(sb, route_tables=route_tables, cidrs=cidrs, pools=pools)
        sb.reconcile(None, "apply")
        sb.clear_logs()
        t = time.perf_counter()
        report = sb.reconcile(None, "apply")
        ms = (time.perf_counter() - t) * 1000
        assert not report.changes, report.to_dict()
        return emulator_calls(sb), ms


def scaling_rows(config: FederationConfig) -> list[list[str]]:
    rows = []
    for label, kw in (
        ("baseline (2 tables, 1 CIDR)", {}),
        ("10 route tables", {"route_tables": 10}),
        ("50 route tables", {"route_tables": 50}),
        ("3 VPC CIDRs", {"cidrs": 3}),
        ("5 VPC CIDRs", {"cidrs": 5}),
        ("50 on-prem pools", {"pools": 50}),
        ("200 on-prem pools", {"pools": 200}),
    ):
        calls, ms = converged_calls(config, **kw)
        rows.append([label, *calls.cells(), f"{ms:.0f}"])
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
    print(table(["world", "aws r/w", "eks r/w", "onprem r/w", "ms"], scaling_rows(config)))
    print(
        "\nScoped event reconciles on a converged federation (delivered through the deployed patterns)"
    )
    print(table(["event", "scope", "aws r/w", "eks r/w", "onprem r/w", "ms"], event_rows(config)))
    print("\nEvent → converged, per demo scenario (repair run, and inject+deliver+rerun wall time)")
    print(table(["scenario", "repair ms", "wall ms", "ok"], scenario_rows(config)))


if __name__ == "__main__":
    main()
