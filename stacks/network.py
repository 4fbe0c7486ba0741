"""The AWS side of the federation's network (Tigera's guide, AWS part).

A VPC over ``az_count`` zones, each with a public subnet (NAT gateway) and a private subnet
(nodes and pods); the internet gateway; a virtual private gateway with the configured ASN, the
customer gateway and a BGP Site-to-Site VPN; VGW route propagation into every private route
table; a worker security group that admits the on-prem host and pod ranges; VPC flow logs.
The VPN's tunnel options are explicit (:func:`tunnel_options`): IKE versions from the config,
strong phase 1/2 algorithms, and tunnel and BGP logs to CloudWatch Logs with retention.
fedkeeper finds these resources by the tag ``fedkeeper:federation=<name>`` (added app-wide).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from fedkeeper.config import FederationConfig
from fedkeeper.events import FederationNetwork

PRIVATE = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
# Every log group the stacks create keeps logs this long.
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
# Site-to-Site VPN tunnel algorithms (AWS "Tunnel options for your Site-to-Site VPN
# connection"): AES and SHA-2 only, Diffie-Hellman groups of at least 2048-bit MODP / ECP.
PHASE1_ENCRYPTION = ("AES256", "AES256-GCM-16")
PHASE2_ENCRYPTION = ("AES256", "AES256-GCM-16")
INTEGRITY = ("SHA2-256", "SHA2-384", "SHA2-512")
DH_GROUPS = (14, 19, 20, 21)
# The AWS APIs fedkeeper's functions call (the boto3 clients of fedkeeper/adapters and the
# calico installer), reached through interface endpoints with aws.vpc.interface_endpoints.
# DynamoDB goes through a (free) gateway endpoint instead.
INTERFACE_ENDPOINT_SERVICES = ("ec2", "eks", "secretsmanager", "sns", "ssm", "sts", "cloudtrail")


class NetworkStack(cdk.Stack):
    """VPC, subnets, NAT, IGW, VGW, CGW, VPN, propagation, worker SG, flow logs."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: FederationConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        vpc_config = config.sole_eks().network
        site = config.sole_site()

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
            vpn_gateway_asn=vpc_config.vgw_asn,
            # Routes learned over BGP reach the nodes and pods (invariant 1, "routes").
            vpn_route_propagation=[PRIVATE],
        )
        self.vpn_gateway_id: str = self.vpc.vpn_gateway_id or ""
        self._retain_restrict_default_sg_logs()

        customer_gateway = site.customer_gateway
        # No static routes: the VPN uses BGP (StaticRoutesOnly false).
        self.vpn_connection = self.vpc.add_vpn_connection(
            "Onprem", ip=str(customer_gateway.ip), asn=customer_gateway.bgp_asn
        )
        self.tunnel_log_group = logs.LogGroup(
            self,
            "VpnTunnelLogs",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        cfn_vpn = self.vpn_connection.node.default_child
        assert isinstance(cfn_vpn, ec2.CfnVPNConnection)
        cfn_vpn.vpn_tunnel_options_specifications = [
            tunnel_options(self, config, self.tunnel_log_group) for _ in range(2)
        ]

        flow_log_group = logs.LogGroup(
            self,
            "FlowLogGroup",
            retention=LOG_RETENTION,
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
        onprem = config.sole_site()
        for kind, cidrs in (("host", onprem.host_cidrs), ("pod", onprem.pod_cidrs)):
            for cidr in cidrs:
                self.worker_security_group.add_ingress_rule(
                    ec2.Peer.ipv4(str(cidr)),
                    ec2.Port.all_traffic(),
                    f"on-prem {kind} CIDR {cidr} over the VPN",
                )

        if vpc_config.interface_endpoints:
            self._api_endpoints(str(vpc_config.cidr))

        subnets = [*self.vpc.public_subnets, *self.vpc.private_subnets]
        self.federation_network = FederationNetwork(
            vpc=self.vpc.vpc_id,
            vgw=self.vpn_gateway_id,
            vpn=self.vpn_connection.vpn_id,
            route_tables=list(dict.fromkeys(s.route_table.route_table_id for s in subnets)),
            subnets=[s.subnet_id for s in subnets],
        )

        cdk.CfnOutput(self, "VpcId", value=self.vpc.vpc_id)
        cdk.CfnOutput(self, "VpnTunnelLogGroup", value=self.tunnel_log_group.log_group_name)
        cdk.CfnOutput(self, "VpnGatewayId", value=self.vpn_gateway_id)
        cdk.CfnOutput(self, "VpnConnectionId", value=self.vpn_connection.vpn_id)

    def _api_endpoints(self, vpc_cidr: str) -> None:
        """Interface endpoints for the AWS APIs the Lambdas call, and DynamoDB's gateway.

        With them the functions reach AWS without the NAT gateways, so an AZ whose NAT
        gateway is down (or all of them) stops no repair. Private DNS on: the SDK's usual
        endpoints resolve to them. Each interface endpoint is billed per AZ and hour.
        """
        # One group for every endpoint: HTTPS from the VPC's primary CIDR (a literal, so
        # cdk-nag can read the rule; CDK's default would reference the VPC's CIDR attribute).
        endpoint_sg = ec2.SecurityGroup(
            self,
            "ApiEndpointSecurityGroup",
            vpc=self.vpc,
            description="AWS API interface endpoints: HTTPS from the federation VPC",
            allow_all_outbound=False,
        )
        endpoint_sg.add_ingress_rule(
            ec2.Peer.ipv4(vpc_cidr), ec2.Port.tcp(443), "HTTPS from the VPC"
        )
        for name in INTERFACE_ENDPOINT_SERVICES:
            self.vpc.add_interface_endpoint(
                f"{name.capitalize()}Endpoint",
                service=ec2.InterfaceVpcEndpointAwsService(name),
                subnets=PRIVATE,
                private_dns_enabled=True,
                security_groups=[endpoint_sg],
                open=False,
            )
        self.vpc.add_gateway_endpoint(
            "DynamodbEndpoint",
            service=ec2.GatewayVpcEndpointAwsService.DYNAMODB,
            subnets=[PRIVATE],
        )

    def _retain_restrict_default_sg_logs(self) -> None:
        """Give the VPC's restrict-default-SG provider function a log group with retention.

        aws-cdk-lib's provider function (``@aws-cdk/aws-ec2:restrictDefaultSecurityGroup``)
        has no log group of its own; Lambda would create one that keeps logs forever.
        """
        provider = self.node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        if provider is None:
            return
        handler = provider.node.find_child("Handler")
        assert isinstance(handler, cdk.CfnResource)
        log_group = logs.LogGroup(
            self,
            "RestrictDefaultSgLogs",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        handler.add_property_override("LoggingConfig", {"LogGroup": log_group.log_group_name})


def tunnel_options(
    stack: cdk.Stack, config: FederationConfig, log_group: logs.ILogGroup
) -> ec2.CfnVPNConnection.VpnTunnelOptionsSpecificationProperty:
    """One tunnel's options: nothing left to AWS defaults that matters to the on-prem side.

    AWS defaults allow IKEv1 and IKEv2, SHA-1 and DH group 2; here only the configured IKE
    versions and the algorithms above are offered, so the on-prem router must propose one of
    them. Tunnel (IKE/IPsec) and BGP logs go to ``log_group`` as JSON.
    """
    V = ec2.CfnVPNConnection  # noqa: N806 (the property classes live on the L1 class)
    log_group_arn = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=log_group.log_group_name,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
    return V.VpnTunnelOptionsSpecificationProperty(
        ike_versions=[
            V.IKEVersionsRequestListValueProperty(value=v)
            for v in config.sole_site().vpns[0].ike_versions
        ],
        phase1_encryption_algorithms=[
            V.Phase1EncryptionAlgorithmsRequestListValueProperty(value=a) for a in PHASE1_ENCRYPTION
        ],
        phase2_encryption_algorithms=[
            V.Phase2EncryptionAlgorithmsRequestListValueProperty(value=a) for a in PHASE2_ENCRYPTION
        ],
        phase1_integrity_algorithms=[
            V.Phase1IntegrityAlgorithmsRequestListValueProperty(value=a) for a in INTEGRITY
        ],
        phase2_integrity_algorithms=[
            V.Phase2IntegrityAlgorithmsRequestListValueProperty(value=a) for a in INTEGRITY
        ],
        phase1_dh_group_numbers=[
            V.Phase1DHGroupNumbersRequestListValueProperty(value=g) for g in DH_GROUPS
        ],
        phase2_dh_group_numbers=[
            V.Phase2DHGroupNumbersRequestListValueProperty(value=g) for g in DH_GROUPS
        ],
        # The VGW restarts IKE when dead-peer detection times out (default: clear).
        dpd_timeout_action="restart",
        log_options=V.VpnTunnelLogOptionsSpecificationProperty(
            cloudwatch_log_options=V.CloudwatchLogOptionsSpecificationProperty(
                log_enabled=True,
                log_group_arn=log_group_arn,
                log_output_format="json",
                bgp_log_enabled=True,
                bgp_log_group_arn=log_group_arn,
                bgp_log_output_format="json",
            )
        ),
    )


# What Lambda does with a function's role to attach it to the VPC (the actions of AWS's
# AWSLambdaVPCAccessExecutionRole). The Describe calls support no resource-level
# permissions; the others are scoped to the federation's VPC (Service Authorization
# Reference, Amazon EC2: CreateNetworkInterface takes the subnet, security-group and
# network-interface resources, each with the ec2:Vpc condition key; Delete/Assign/
# UnassignPrivateIpAddresses take the network-interface resource with ec2:Vpc).
LAMBDA_VPC_DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")
LAMBDA_VPC_ENI_ACTIONS = (
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


def lambda_vpc_statements(
    stack: cdk.Stack, vpc_id: str, subnet_ids: list[str], security_group_ids: list[str]
) -> list[iam.PolicyStatement]:
    """What a VPC Lambda's role needs for its network interfaces, scoped to ``vpc_id``."""
    vpc_arn = stack.format_arn(service="ec2", resource="vpc", resource_name=vpc_id)
    in_vpc = {"ArnEquals": {"ec2:Vpc": vpc_arn}}
    eni_arn = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
    return [
        iam.PolicyStatement(
            sid="DescribeLambdaNetwork",
            actions=list(LAMBDA_VPC_DESCRIBE_ACTIONS),
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="CreateLambdaEnisInTheFederationSubnets",
            actions=["ec2:CreateNetworkInterface"],
            resources=[
                eni_arn,
                *(
                    stack.format_arn(service="ec2", resource="subnet", resource_name=s)
                    for s in subnet_ids
                ),
                *(
                    stack.format_arn(service="ec2", resource="security-group", resource_name=g)
                    for g in security_group_ids
                ),
            ],
            conditions=in_vpc,
        ),
        iam.PolicyStatement(
            sid="ManageLambdaEnisInTheFederationVpc",
            actions=list(LAMBDA_VPC_ENI_ACTIONS),
            resources=[eni_arn],
            conditions=in_vpc,
        ),
    ]
