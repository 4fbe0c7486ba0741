"""What the synthesized templates cost a month, per region: the figures of docs/DEPLOY.md.

Counted from the templates (NAT gateways, VPN connections, endpoints, the cluster, the node
group, KMS keys, alarms, dashboards, secrets, the watch function and the SnapStart caches),
priced with the list prices below, so the docs cannot drift from what `cdk deploy` creates
(tests/infra/test_deploy_docs.py). On-demand, 730 hours a month, before free tiers.

Prices (December 2026): https://aws.amazon.com/vpc/pricing/ (NAT gateway, public IPv4,
PrivateLink), https://aws.amazon.com/vpn/site-to-site-vpn-pricing/,
https://aws.amazon.com/eks/pricing/, https://aws.amazon.com/ec2/pricing/on-demand/,
https://aws.amazon.com/ebs/pricing/, https://aws.amazon.com/kms/pricing/,
https://aws.amazon.com/cloudwatch/pricing/, https://aws.amazon.com/secrets-manager/pricing/,
https://aws.amazon.com/lambda/pricing/ (x86; SnapStart cache for Python, same price in both
regions here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

HOURS = 730
SECONDS = HOURS * 3600


@dataclass(frozen=True)
class Prices:
    nat_hour: float
    public_ipv4_hour: float
    vpn_hour: float
    eks_hour: float
    instance_hour: Mapping[str, float]
    gp3_gb_month: float
    endpoint_az_hour: float
    kms_key: float = 1.00
    alarm: float = 0.10
    dashboard: float = 3.00
    secret: float = 0.40
    lambda_gb_s: float = 0.0000166667
    snapstart_cache_gb_s: float = 0.0000015046


PRICES: dict[str, Prices] = {
    "us-east-1": Prices(
        nat_hour=0.045,
        public_ipv4_hour=0.005,
        vpn_hour=0.05,
        eks_hour=0.10,
        instance_hour={"m6i.large": 0.096, "m6i.xlarge": 0.192, "m6i.2xlarge": 0.384},
        gp3_gb_month=0.08,
        endpoint_az_hour=0.01,
    ),
    "eu-west-1": Prices(
        nat_hour=0.048,
        public_ipv4_hour=0.005,
        vpn_hour=0.05,
        eks_hour=0.10,
        instance_hour={"m6i.large": 0.107, "m6i.xlarge": 0.214, "m6i.2xlarge": 0.428},
        gp3_gb_month=0.088,
        endpoint_az_hour=0.011,
    ),
}
# Secrets the operator stores for the deploy (the Calico pull secret and licence).
OPERATOR_SECRETS = 2


def _resources(templates: Iterable[Mapping[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        dict(r.get("Properties") or {})
        for t in templates
        for r in t.get("Resources", {}).values()
        if r.get("Type") == kind
    ]


@dataclass(frozen=True)
class StackCosts:
    """Monthly cost per stack in one region (the Calico stack's only cost is its nodes')."""

    network: float
    cluster: float
    automation: float

    @property
    def total(self) -> float:
        return self.network + self.cluster + self.automation


def monthly_costs(templates: Mapping[str, Mapping[str, Any]], region: str) -> StackCosts:
    """``templates``: stack name suffix (network, cluster, calico, automation) → template."""
    p = PRICES[region]
    every = list(templates.values())
    network = templates["network"]
    nats = len(_resources([network], "AWS::EC2::NatGateway"))
    eips = len(_resources([network], "AWS::EC2::EIP"))
    vpns = len(_resources([network], "AWS::EC2::VPNConnection"))
    endpoint_azs = sum(
        len(e.get("SubnetIds") or [])
        for e in _resources([network], "AWS::EC2::VPCEndpoint")
        if e.get("VpcEndpointType") == "Interface"
    )
    network_cost = (
        nats * p.nat_hour + eips * p.public_ipv4_hour + vpns * p.vpn_hour
    ) * HOURS + endpoint_azs * p.endpoint_az_hour * HOURS

    cluster = templates["cluster"]
    clusters = len(_resources([cluster], "AWS::EKS::Cluster"))
    nodes_cost = 0.0
    for group in _resources([cluster], "AWS::EKS::Nodegroup"):
        desired = int(group["ScalingConfig"]["DesiredSize"])
        nodes_cost += desired * p.instance_hour[group["InstanceTypes"][0]] * HOURS
        for template in _resources([cluster], "AWS::EC2::LaunchTemplate"):
            for device in template["LaunchTemplateData"].get("BlockDeviceMappings", []):
                nodes_cost += desired * int(device["Ebs"]["VolumeSize"]) * p.gp3_gb_month
    cluster_kms = len(_resources([cluster], "AWS::KMS::Key"))
    cluster_cost = clusters * p.eks_hour * HOURS + nodes_cost + cluster_kms * p.kms_key

    automation = templates["automation"]
    functions = _resources([automation], "AWS::Lambda::Function")
    watch_gb = sum(
        f["MemorySize"] / 1024 for f in functions if f.get("Handler") == "lambdas.watch.handler"
    )
    snapstart_gb = sum(f["MemorySize"] / 1024 for f in functions if f.get("SnapStart"))
    automation_cost = (
        watch_gb * SECONDS * p.lambda_gb_s
        + snapstart_gb * SECONDS * p.snapstart_cache_gb_s
        + len(_resources([automation], "AWS::CloudWatch::Alarm")) * p.alarm
        + len(_resources([automation], "AWS::CloudWatch::Dashboard")) * p.dashboard
        + len(_resources([automation], "AWS::KMS::Key")) * p.kms_key
        + (len(_resources(every, "AWS::SecretsManager::Secret")) + OPERATOR_SECRETS) * p.secret
    )
    return StackCosts(round(network_cost, 2), round(cluster_cost, 2), round(automation_cost, 2))


def cost_table(templates: Mapping[str, Mapping[str, Any]]) -> str:
    """The Markdown table of docs/DEPLOY.md, step 3."""
    lines = [
        "| Region | network | cluster (with calico) | automation | total |",
        "|---|---|---|---|---|",
    ]
    for region in PRICES:
        c = monthly_costs(templates, region)
        lines.append(
            f"| {region} | ${c.network:,.2f} | ${c.cluster:,.2f} | ${c.automation:,.2f} "
            f"| **${c.total:,.2f}** |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``python -m stacks.costs CDK_OUT``: the cost table of a synthesized app, for the docs."""
    import json
    from pathlib import Path

    if len(argv) != 1:
        print("usage: python -m stacks.costs CDK_OUT  (after `make synth`)")
        return 2
    templates = {
        path.name.removesuffix(".template.json").rsplit("-", 1)[-1]: json.loads(path.read_text())
        for path in Path(argv[0]).glob("*.template.json")
    }
    print(cost_table(templates))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
