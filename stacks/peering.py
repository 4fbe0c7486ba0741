"""The VPC peerings between EKS clusters' VPCs, with their routes, in one stack.

Each peering (``links.peerings``: same account and region, so it is active once created)
gets a route to the peer VPC's CIDR in every private route table of both VPCs, where the
nodes and pods are; peering is not transitive, so each pair of EKS clusters that federates
has a peering of its own. One stack after every network stack: it only reads their VPC and
route-table ids, so a peering is added or removed by updating this stack alone, and it is
deleted before any network it joins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from fedkeeper.config import IPv4Net
from stacks.network import NetworkStack
from stacks.site import construct_name


class PeeringStack(cdk.Stack):
    """VPC peering connections and the routes through them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        peerings: Sequence[tuple[str, str]],
        networks: Mapping[str, NetworkStack],
        cidrs: Mapping[str, Sequence[IPv4Net]],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # (a, b) → the peering connection between their VPCs.
        self.peerings: dict[tuple[str, str], ec2.CfnVPCPeeringConnection] = {}
        for a, b in peerings:
            pair = f"{construct_name(a)}{construct_name(b)}"
            peering = ec2.CfnVPCPeeringConnection(
                self,
                f"{pair}Peering",
                vpc_id=networks[a].vpc.vpc_id,
                peer_vpc_id=networks[b].vpc.vpc_id,
            )
            self.peerings[(a, b)] = peering
            for here, there in ((a, b), (b, a)):
                tables = [s.route_table.route_table_id for s in networks[here].vpc.private_subnets]
                for index, table in enumerate(tables):
                    for cidr_index, cidr in enumerate(cidrs[there]):
                        ec2.CfnRoute(
                            self,
                            f"{pair}{construct_name(here)}Private{index + 1}To"
                            f"{construct_name(there)}{cidr_index + 1}",
                            route_table_id=table,
                            destination_cidr_block=str(cidr),
                            vpc_peering_connection_id=peering.ref,
                        )
            cdk.CfnOutput(self, f"{pair}PeeringId", value=peering.ref)
