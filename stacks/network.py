"""The AWS side of the federation's network (Tigera's guide, AWS part).

A VPC over ``az_count`` zones, each with a public subnet (NAT gateway) and a private subnet
(nodes and pods); the internet gateway; a virtual private gateway with the configured ASN, the
customer gateway and a BGP Site-to-Site VPN; VGW route propagation into every private route
table; a worker security group that admits the on-prem host and pod ranges; VPC flow logs.
fedkeeper finds these resources by the tag ``fedkeeper:federation=<name>`` (added app-wide).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from fedkeeper.config import FederationConfig

PRIVATE = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)


class NetworkStack(cdk.Stack):
    """VPC, subnets, NAT, IGW, VGW, CGW, VPN, propagation, worker SG, flow logs."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: FederationConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        vpc_config = config.aws.vpc
        vpn_config = config.aws.vpn

        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(str(vpc_config.cidr)),
            # The stack is account-agnostic, so zones are resolved at deploy time; listing
            # them explicitly lets az_count go beyond the 2 zones CDK assumes then.
            availability_zones=[
                cdk.Fn.select(i, cdk.Fn.get_azs()) for i in range(vpc_config.az_count)
            ],
            nat_gateways=vpc_config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=vpc_config.public_subnet_prefix,
                    map_public_ip_on_launch=False,
                ),
                ec2.SubnetConfiguration(
                    name="private",
                    subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                    cidr_mask=vpc_config.private_subnet_prefix,
                ),
            ],
            vpn_gateway=True,
            vpn_gateway_asn=vpn_config.vgw_asn,
            # Routes learned over BGP reach the nodes and pods (invariant 1, "routes").
            vpn_route_propagation=[PRIVATE],
        )
        self.vpn_gateway_id: str = self.vpc.vpn_gateway_id or ""

        customer_gateway = vpn_config.customer_gateway
        # No static routes: the VPN uses BGP (StaticRoutesOnly false).
        self.vpn_connection = self.vpc.add_vpn_connection(
            "Onprem", ip=str(customer_gateway.ip), asn=customer_gateway.bgp_asn
        )

        flow_log_group = logs.LogGroup(
            self,
            "FlowLogGroup",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

        # Pods get VPC addresses (AWS VPC CNI) and use the node's security groups, so this
        # group admits on-prem nodes and pods reaching federated endpoints over the VPN.
        self.worker_security_group = ec2.SecurityGroup(
            self,
            "WorkerSecurityGroup",
            vpc=self.vpc,
            description="EKS workers and pods: traffic from the on-prem host and pod CIDRs",
            allow_all_outbound=True,
        )
        onprem = config.onprem
        for kind, cidrs in (("host", onprem.host_cidrs), ("pod", onprem.pod_cidrs)):
            for cidr in cidrs:
                self.worker_security_group.add_ingress_rule(
                    ec2.Peer.ipv4(str(cidr)),
                    ec2.Port.all_traffic(),
                    f"on-prem {kind} CIDR {cidr} over the VPN",
                )

        cdk.CfnOutput(self, "VpcId", value=self.vpc.vpc_id)
        cdk.CfnOutput(self, "VpnGatewayId", value=self.vpn_gateway_id)
        cdk.CfnOutput(self, "VpnConnectionId", value=self.vpn_connection.vpn_id)
