"""One on-prem site's side of AWS: its customer gateway and a VPN to each VPC it reaches.

A mesh's site stack (a two-cluster federation keeps its one VPN in the network stack). Each
VPN connection uses BGP (no static routes), offers the IKE versions the site configures for
it, and has the tunnel options of :func:`stacks.network.tunnel_options`; the tunnel and BGP
logs of all the site's VPNs go to one log group with retention. The VPCs' VGWs come from
their network stacks, so a site stack is deployed after them and deleted before them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from fedkeeper.topology import OnPremCluster
from stacks.network import LOG_RETENTION, NetworkStack, tunnel_options


def construct_name(cluster_name: str) -> str:
    """A cluster's name as part of a construct id: ``eks-a`` → ``EksA``."""
    return "".join(part.capitalize() for part in cluster_name.split("-"))


class SiteStack(cdk.Stack):
    """The site's customer gateway, its VPN connections (one per VPC) and their logs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        site: OnPremCluster,
        networks: Mapping[str, NetworkStack],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.site = site
        gateway = site.customer_gateway
        self.customer_gateway = ec2.CfnCustomerGateway(
            self,
            "CustomerGateway",
            bgp_asn=gateway.bgp_asn,
            ip_address=str(gateway.ip),
            type="ipsec.1",
        )
        self.tunnel_log_group = logs.LogGroup(
            self,
            "VpnTunnelLogs",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # EKS cluster name → this site's VPN connection to that cluster's VPC.
        self.vpn_connections: dict[str, ec2.CfnVPNConnection] = {}
        for vpn in site.vpns:
            network = networks[vpn.to]
            connection = ec2.CfnVPNConnection(
                self,
                f"To{construct_name(vpn.to)}",
                type="ipsec.1",
                customer_gateway_id=self.customer_gateway.ref,
                vpn_gateway_id=network.vpn_gateway_id,
                # BGP: the site advertises its host and pod CIDRs, the VGW the VPC's.
                static_routes_only=False,
                vpn_tunnel_options_specifications=[
                    tunnel_options(self, vpn.ike_versions, self.tunnel_log_group) for _ in range(2)
                ],
            )
            self.vpn_connections[vpn.to] = connection
            cdk.CfnOutput(self, f"VpnConnectionTo{construct_name(vpn.to)}Id", value=connection.ref)
        cdk.CfnOutput(self, "CustomerGatewayId", value=self.customer_gateway.ref)
        cdk.CfnOutput(self, "VpnTunnelLogGroup", value=self.tunnel_log_group.log_group_name)
