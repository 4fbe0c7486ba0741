"""The AWS side of a federation as ``cdk deploy`` would build it, laid into the sandbox.

Everything goes through boto3 (a sandbox session, so the gap fills answer what moto cannot:
VGW route propagation, the vpc-cni add-on); only what the outside world decides — the
routes the VGW learns over BGP and the tunnel states — is set on :class:`SandboxAws`.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

import boto3

from fedkeeper.config import CloudTrailMode, FederationConfig
from fedkeeper.sandbox.aws import SandboxAws

__all__ = ["EXTERNAL_SNAT_ENV", "AwsBaseline", "carve_subnets", "deploy_aws_baseline"]

EXTERNAL_SNAT_ENV = "AWS_VPC_K8S_CNI_EXTERNALSNAT"

_EKS_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    ],
}


@dataclass(frozen=True)
class AwsBaseline:
    """Ids of what the baseline built."""

    vpc_id: str
    vgw_id: str
    cgw_id: str
    vpn_connection_id: str
    public_subnet_ids: tuple[str, ...]
    private_subnet_ids: tuple[str, ...]
    public_route_table_id: str
    private_route_table_ids: tuple[str, ...]
    nat_gateway_ids: tuple[str, ...]
    igw_id: str
    cluster_name: str
    cluster_arn: str
    onprem_secret_arn: str
    tunnel_outside_ips: tuple[str, str]


def carve_subnets(
    vpc: ipaddress.IPv4Network, az_count: int, public_prefix: int, private_prefix: int
) -> tuple[list[ipaddress.IPv4Network], list[ipaddress.IPv4Network]]:
    """(public, private) subnet CIDRs, one of each per AZ, disjoint, inside ``vpc``.

    Larger blocks are placed first, each aligned on its own size, so nothing is wasted and
    whatever the config validator accepted fits.
    """
    wanted = [("private", i, private_prefix) for i in range(az_count)]
    wanted += [("public", i, public_prefix) for i in range(az_count)]
    wanted.sort(key=lambda w: (w[2], w[0] != "private", w[1]))
    cursor = int(vpc.network_address)
    out: dict[tuple[str, int], ipaddress.IPv4Network] = {}
    for kind, index, prefix in wanted:
        size = 2 ** (32 - prefix)
        cursor = -(-cursor // size) * size  # align up
        net = ipaddress.IPv4Network((cursor, prefix))
        if not net.subnet_of(vpc):
            raise ValueError(f"{az_count} public and private subnets do not fit in {vpc}")
        out[(kind, index)] = net
        cursor += size
    public = [out[("public", i)] for i in range(az_count)]
    private = [out[("private", i)] for i in range(az_count)]
    return public, private


def _tags(resource_type: str, config: FederationConfig, name: str, **extra: str) -> list[Any]:
    key, value = config.federation_tag
    tags = {"Name": name, key: value, **extra}
    return [
        {"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
    ]


def _secret_name(name_or_arn: str) -> str:
    """A Secrets Manager secret name from a name or an ARN (``...:secret:NAME-AbCdEf``)."""
    if not name_or_arn.startswith("arn:"):
        return name_or_arn
    name = name_or_arn.split(":secret:", 1)[-1]
    head, _, suffix = name.rpartition("-")
    return head if head and len(suffix) == 6 else name


def deploy_aws_baseline(
    session: boto3.Session,
    sandbox: SandboxAws,
    config: FederationConfig,
    *,
    onprem_kubeconfig: str,
) -> AwsBaseline:
    """Build the federation's AWS side into the mocked account and return its ids.

    ``session`` must come from ``sandbox`` (the gap fills answer route propagation and the
    add-on). Builds: the VPC (config CIDR) with, per AZ, a public and a private subnet; an
    internet gateway and the public route table (0.0.0.0/0 → IGW); ``nat_gateways`` NAT
    gateways in the first public subnets and one private route table per AZ (0.0.0.0/0 →
    its AZ's NAT gateway, else the first); the VGW (``vgw_asn``) attached to the VPC,
    propagating into every private route table; the CGW and a BGP Site-to-Site VPN with
    both tunnels UP, the VGW having learned the on-prem host and pod CIDRs; the EKS cluster
    in the private subnets (authentication mode API) with the ``vpc-cni`` add-on set to
    external SNAT; the Secrets Manager secret holding the on-prem kubeconfig. Every
    resource carries ``Name`` and the federation tag.
    """
    ec2 = session.client("ec2")
    name = config.name
    vpc_cfg = config.sole_eks().network
    fed_key, fed_value = config.federation_tag

    zones = sorted(
        z["ZoneName"]
        for z in ec2.describe_availability_zones(
            Filters=[{"Name": "state", "Values": ["available"]}]
        )["AvailabilityZones"]
    )
    if len(zones) < vpc_cfg.az_count:
        raise ValueError(
            f"aws.vpc.az_count is {vpc_cfg.az_count} but {config.aws.region} offers "
            f"{len(zones)} availability zones here"
        )
    zones = zones[: vpc_cfg.az_count]

    vpc_id = ec2.create_vpc(
        CidrBlock=str(vpc_cfg.cidr), TagSpecifications=_tags("vpc", config, f"{name}-vpc")
    )["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})

    public_cidrs, private_cidrs = carve_subnets(
        vpc_cfg.cidr, vpc_cfg.az_count, vpc_cfg.public_subnet_prefix, vpc_cfg.private_subnet_prefix
    )
    public_subnets: list[str] = []
    private_subnets: list[str] = []
    for i, zone in enumerate(zones):
        public_subnets.append(
            ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=str(public_cidrs[i]),
                AvailabilityZone=zone,
                TagSpecifications=_tags(
                    "subnet",
                    config,
                    f"{name}-public-{zone}",
                    **{"aws-cdk:subnet-type": "Public", "kubernetes.io/role/elb": "1"},
                ),
            )["Subnet"]["SubnetId"]
        )
        private_subnets.append(
            ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=str(private_cidrs[i]),
                AvailabilityZone=zone,
                TagSpecifications=_tags(
                    "subnet",
                    config,
                    f"{name}-private-{zone}",
                    **{"aws-cdk:subnet-type": "Private", "kubernetes.io/role/internal-elb": "1"},
                ),
            )["Subnet"]["SubnetId"]
        )
    for subnet_id in public_subnets:
        ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})

    igw_id = ec2.create_internet_gateway(
        TagSpecifications=_tags("internet-gateway", config, f"{name}-igw")
    )["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)

    public_rt = ec2.create_route_table(
        VpcId=vpc_id, TagSpecifications=_tags("route-table", config, f"{name}-public")
    )["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw_id)
    for subnet_id in public_subnets:
        ec2.associate_route_table(RouteTableId=public_rt, SubnetId=subnet_id)

    nat_ids: list[str] = []
    for i in range(vpc_cfg.nat_gateways):
        allocation = ec2.allocate_address(
            Domain="vpc", TagSpecifications=_tags("elastic-ip", config, f"{name}-nat-{zones[i]}")
        )["AllocationId"]
        nat_ids.append(
            ec2.create_nat_gateway(
                SubnetId=public_subnets[i],
                AllocationId=allocation,
                TagSpecifications=_tags("natgateway", config, f"{name}-nat-{zones[i]}"),
            )["NatGateway"]["NatGatewayId"]
        )

    private_rts: list[str] = []
    for i, zone in enumerate(zones):
        rt = ec2.create_route_table(
            VpcId=vpc_id, TagSpecifications=_tags("route-table", config, f"{name}-private-{zone}")
        )["RouteTable"]["RouteTableId"]
        nat = nat_ids[i] if i < len(nat_ids) else nat_ids[0]
        ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        ec2.associate_route_table(RouteTableId=rt, SubnetId=private_subnets[i])
        private_rts.append(rt)

    cgw_cfg = config.sole_site().customer_gateway
    vgw_id = ec2.create_vpn_gateway(
        Type="ipsec.1",
        AmazonSideAsn=config.sole_eks().network.vgw_asn,
        TagSpecifications=_tags("vpn-gateway", config, f"{name}-vgw"),
    )["VpnGateway"]["VpnGatewayId"]
    ec2.attach_vpn_gateway(VpcId=vpc_id, VpnGatewayId=vgw_id)
    cgw_id = ec2.create_customer_gateway(
        Type="ipsec.1",
        PublicIp=str(cgw_cfg.ip),
        BgpAsn=cgw_cfg.bgp_asn,
        TagSpecifications=_tags("customer-gateway", config, f"{name}-cgw"),
    )["CustomerGateway"]["CustomerGatewayId"]
    vpn_id = ec2.create_vpn_connection(
        Type="ipsec.1",
        CustomerGatewayId=cgw_id,
        VpnGatewayId=vgw_id,
        Options={"StaticRoutesOnly": False},
        TagSpecifications=_tags("vpn-connection", config, f"{name}-vpn"),
    )["VpnConnection"]["VpnConnectionId"]
    for rt in private_rts:
        ec2.enable_vgw_route_propagation(RouteTableId=rt, GatewayId=vgw_id)

    # What BGP over the VPN brings: the on-prem router announces host and pod CIDRs.
    onprem = config.sole_site()
    sandbox.set_learned_routes(vgw_id, [str(c) for c in [*onprem.host_cidrs, *onprem.pod_cidrs]])
    telemetry = sandbox.tunnels(vpn_id)
    for tunnel in telemetry:
        sandbox.set_tunnel(vpn_id, tunnel["OutsideIpAddress"], up=True)
    tunnel_ips = (telemetry[0]["OutsideIpAddress"], telemetry[1]["OutsideIpAddress"])

    iam = session.client("iam")
    role_arn = iam.create_role(
        RoleName=f"{name}-eks-cluster-role",
        AssumeRolePolicyDocument=json.dumps(_EKS_TRUST_POLICY),
        Tags=[{"Key": fed_key, "Value": fed_value}],
    )["Role"]["Arn"]

    eks = session.client("eks")
    cluster = eks.create_cluster(
        name=config.sole_eks().cluster_name,
        version=config.sole_eks().kubernetes_version,
        roleArn=role_arn,
        resourcesVpcConfig={
            "subnetIds": private_subnets,
            "endpointPublicAccess": True,
            "endpointPrivateAccess": True,
        },
        accessConfig={
            "authenticationMode": "API",
            "bootstrapClusterCreatorAdminPermissions": True,
        },
        tags={fed_key: fed_value},
    )["cluster"]
    eks.create_addon(
        clusterName=config.sole_eks().cluster_name,
        addonName="vpc-cni",
        configurationValues=json.dumps({"env": {EXTERNAL_SNAT_ENV: "true"}}),
        resolveConflicts="OVERWRITE",
        tags={fed_key: fed_value},
    )

    if config.aws.cloudtrail is CloudTrailMode.CREATE:
        # The automation stack's write-only management-events trail (logging from creation).
        bucket = f"{name}-trail-{session.region_name}"
        s3 = session.client("s3")
        s3.create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": session.region_name},
        )
        trail = session.client("cloudtrail")
        trail.create_trail(
            Name=f"{name}-api-calls",
            S3BucketName=bucket,
            IsMultiRegionTrail=False,
            IncludeGlobalServiceEvents=False,
            EnableLogFileValidation=True,
            TagsList=[{"Key": fed_key, "Value": fed_value}],
        )
        trail.start_logging(Name=f"{name}-api-calls")

    secret_arn = session.client("secretsmanager").create_secret(
        Name=_secret_name(onprem.credentials_secret),
        Description=f"kubeconfig of the on-prem cluster {onprem.cluster_name} (fedkeeper)",
        SecretString=onprem_kubeconfig,
        Tags=[{"Key": fed_key, "Value": fed_value}],
    )["ARN"]

    return AwsBaseline(
        vpc_id=vpc_id,
        vgw_id=vgw_id,
        cgw_id=cgw_id,
        vpn_connection_id=vpn_id,
        public_subnet_ids=tuple(public_subnets),
        private_subnet_ids=tuple(private_subnets),
        public_route_table_id=public_rt,
        private_route_table_ids=tuple(private_rts),
        nat_gateway_ids=tuple(nat_ids),
        igw_id=igw_id,
        cluster_name=config.sole_eks().cluster_name,
        cluster_arn=cluster["arn"],
        onprem_secret_arn=secret_arn,
        tunnel_outside_ips=tunnel_ips,
    )
