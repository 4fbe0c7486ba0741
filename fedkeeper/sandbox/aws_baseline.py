"""The AWS side of a federation as ``cdk deploy`` would build it, laid into the sandbox.

Everything goes through boto3 (a sandbox session, so the gap fills answer what moto cannot:
VGW route propagation, the vpc-cni add-on); only what the outside world decides — the
routes the VGW learns over BGP and the tunnel states — is set on :class:`SandboxAws`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from fedkeeper.config import CloudTrailMode, FederationConfig
from fedkeeper.sandbox.aws import SandboxAws
from fedkeeper.schema import CustomerGatewayConfig, VpcConfig
from fedkeeper.topology.model import EksCluster, OnPremCluster

__all__ = [
    "EXTERNAL_SNAT_ENV",
    "AwsBaseline",
    "MeshBaseline",
    "carve_subnets",
    "deploy_aws_baseline",
    "deploy_mesh_baseline",
]

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


@dataclass(frozen=True)
class VpcIds:
    """Ids of one VPC as the network stack builds it (before its VGW)."""

    vpc_id: str
    public_subnet_ids: tuple[str, ...]
    private_subnet_ids: tuple[str, ...]
    public_route_table_id: str
    private_route_table_ids: tuple[str, ...]
    nat_gateway_ids: tuple[str, ...]
    igw_id: str


def _deploy_vpc(ec2: Any, config: FederationConfig, vpc_cfg: VpcConfig, name: str) -> VpcIds:
    """The VPC with, per AZ, a public and a private subnet, the IGW, NAT gateways and the
    route tables; every resource named ``<name>-...``."""
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

    return VpcIds(
        vpc_id=vpc_id,
        public_subnet_ids=tuple(public_subnets),
        private_subnet_ids=tuple(private_subnets),
        public_route_table_id=public_rt,
        private_route_table_ids=tuple(private_rts),
        nat_gateway_ids=tuple(nat_ids),
        igw_id=igw_id,
    )


def _deploy_vgw(ec2: Any, config: FederationConfig, asn: int, vpc_id: str, name: str) -> str:
    """The VPC's virtual private gateway (its Amazon-side ASN), attached."""
    vgw_id = str(
        ec2.create_vpn_gateway(
            Type="ipsec.1",
            AmazonSideAsn=asn,
            TagSpecifications=_tags("vpn-gateway", config, f"{name}-vgw"),
        )["VpnGateway"]["VpnGatewayId"]
    )
    ec2.attach_vpn_gateway(VpcId=vpc_id, VpnGatewayId=vgw_id)
    return vgw_id


def _deploy_cgw(
    ec2: Any, config: FederationConfig, cgw_cfg: CustomerGatewayConfig, name: str
) -> str:
    """A site's customer gateway (its router's public IP and BGP ASN)."""
    return str(
        ec2.create_customer_gateway(
            Type="ipsec.1",
            PublicIp=str(cgw_cfg.ip),
            BgpAsn=cgw_cfg.bgp_asn,
            TagSpecifications=_tags("customer-gateway", config, f"{name}-cgw"),
        )["CustomerGateway"]["CustomerGatewayId"]
    )


def _deploy_vpn(ec2: Any, config: FederationConfig, cgw_id: str, vgw_id: str, name: str) -> str:
    """A dynamic-routing (BGP) Site-to-Site VPN connection from a CGW to a VGW."""
    return str(
        ec2.create_vpn_connection(
            Type="ipsec.1",
            CustomerGatewayId=cgw_id,
            VpnGatewayId=vgw_id,
            Options={"StaticRoutesOnly": False},
            TagSpecifications=_tags("vpn-connection", config, name),
        )["VpnConnection"]["VpnConnectionId"]
    )


def _tunnels_up(sandbox: SandboxAws, vpn_id: str) -> tuple[str, str]:
    """Both tunnels of a new VPN UP (the customer gateway answers); their outside IPs."""
    telemetry = sandbox.tunnels(vpn_id)
    for tunnel in telemetry:
        sandbox.set_tunnel(vpn_id, tunnel["OutsideIpAddress"], up=True)
    return (telemetry[0]["OutsideIpAddress"], telemetry[1]["OutsideIpAddress"])


def _deploy_eks_cluster(
    session: boto3.Session,
    config: FederationConfig,
    eks_cfg: EksCluster,
    private_subnets: tuple[str, ...],
    name: str,
) -> str:
    """The cluster role, the EKS cluster (authentication mode API) in the private subnets
    and its vpc-cni add-on set to external SNAT; the cluster's ARN."""
    fed_key, fed_value = config.federation_tag
    iam = session.client("iam")
    role_arn = iam.create_role(
        RoleName=f"{name}-eks-cluster-role"[:64],
        AssumeRolePolicyDocument=json.dumps(_EKS_TRUST_POLICY),
        Tags=[{"Key": fed_key, "Value": fed_value}],
    )["Role"]["Arn"]
    eks = session.client("eks")
    cluster = eks.create_cluster(
        name=eks_cfg.cluster_name,
        version=eks_cfg.kubernetes_version,
        roleArn=role_arn,
        resourcesVpcConfig={
            "subnetIds": list(private_subnets),
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
        clusterName=eks_cfg.cluster_name,
        addonName="vpc-cni",
        configurationValues=json.dumps({"env": {EXTERNAL_SNAT_ENV: "true"}}),
        resolveConflicts="OVERWRITE",
        tags={fed_key: fed_value},
    )
    return str(cluster["arn"])


def _deploy_trail(session: boto3.Session, config: FederationConfig) -> None:
    """With ``aws.cloudtrail: create``, the automation stack's write-only management-events
    trail (logging from creation)."""
    if config.aws.cloudtrail is not CloudTrailMode.CREATE:
        return
    fed_key, fed_value = config.federation_tag
    name = config.name
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


def _store_site_kubeconfig(
    session: boto3.Session, config: FederationConfig, site: OnPremCluster, kubeconfig: str
) -> str:
    """The Secrets Manager secret holding a site's kubeconfig; its ARN."""
    fed_key, fed_value = config.federation_tag
    return str(
        session.client("secretsmanager").create_secret(
            Name=_secret_name(site.credentials_secret),
            Description=f"kubeconfig of the on-prem cluster {site.cluster_name} (fedkeeper)",
            SecretString=kubeconfig,
            Tags=[{"Key": fed_key, "Value": fed_value}],
        )["ARN"]
    )


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
    eks_cfg, onprem = config.sole_eks(), config.sole_site()
    net = _deploy_vpc(ec2, config, eks_cfg.network, name)

    cgw_cfg = onprem.customer_gateway
    vgw_id = _deploy_vgw(ec2, config, eks_cfg.network.vgw_asn, net.vpc_id, name)
    cgw_id = _deploy_cgw(ec2, config, cgw_cfg, name)
    vpn_id = _deploy_vpn(ec2, config, cgw_id, vgw_id, f"{name}-vpn")
    for rt in net.private_route_table_ids:
        ec2.enable_vgw_route_propagation(RouteTableId=rt, GatewayId=vgw_id)

    # What BGP over the VPN brings: the on-prem router announces host and pod CIDRs.
    sandbox.set_learned_routes(vgw_id, [str(c) for c in [*onprem.host_cidrs, *onprem.pod_cidrs]])
    tunnel_ips = _tunnels_up(sandbox, vpn_id)

    cluster_arn = _deploy_eks_cluster(session, config, eks_cfg, net.private_subnet_ids, name)
    _deploy_trail(session, config)
    secret_arn = _store_site_kubeconfig(session, config, onprem, onprem_kubeconfig)

    return AwsBaseline(
        vpc_id=net.vpc_id,
        vgw_id=vgw_id,
        cgw_id=cgw_id,
        vpn_connection_id=vpn_id,
        public_subnet_ids=net.public_subnet_ids,
        private_subnet_ids=net.private_subnet_ids,
        public_route_table_id=net.public_route_table_id,
        private_route_table_ids=net.private_route_table_ids,
        nat_gateway_ids=net.nat_gateway_ids,
        igw_id=net.igw_id,
        cluster_name=eks_cfg.cluster_name,
        cluster_arn=cluster_arn,
        onprem_secret_arn=secret_arn,
        tunnel_outside_ips=tunnel_ips,
    )


# --- a federation of N clusters ------------------------------------------------------------


@dataclass(frozen=True)
class NetworkBaseline:
    """One EKS cluster's share of the AWS side: its VPC, VGW and the EKS cluster itself."""

    cluster: str  # the cluster's mesh name
    vpc: VpcIds
    vgw_id: str
    cluster_name: str  # the EKS cluster's own name (describe_cluster)
    cluster_arn: str


@dataclass(frozen=True)
class SiteBaseline:
    """One site's share: its customer gateway and the secret holding its kubeconfig."""

    cluster: str
    cgw_id: str
    secret_arn: str


@dataclass(frozen=True)
class VpnBaseline:
    """One Site-to-Site VPN connection, from ``site`` to the VPC (VGW) of ``eks``."""

    site: str
    eks: str
    vpn_connection_id: str
    tunnel_outside_ips: tuple[str, str]


@dataclass
class MeshBaseline:
    """Ids of the AWS side of a federation of N clusters, by cluster name.

    ``vpns`` by (site, eks); ``peerings`` by (a, b) with a < b: the peering connection id.
    """

    networks: dict[str, NetworkBaseline] = field(default_factory=dict)
    sites: dict[str, SiteBaseline] = field(default_factory=dict)
    vpns: dict[tuple[str, str], VpnBaseline] = field(default_factory=dict)
    peerings: dict[tuple[str, str], str] = field(default_factory=dict)

    def vpns_of(self, site: str) -> list[VpnBaseline]:
        """The VPN connections of ``site``."""
        return [v for (s, _), v in self.vpns.items() if s == site]


def mesh_prefix(config: FederationConfig, cluster: str) -> str:
    """The name prefix of one cluster's AWS resources: ``<federation>-<cluster>``."""
    return f"{config.name}-{cluster}"


def deploy_mesh_baseline(
    session: boto3.Session,
    sandbox: SandboxAws,
    config: FederationConfig,
    baseline: MeshBaseline,
    site_kubeconfig: Callable[[str], str],
) -> MeshBaseline:
    """Build, into ``baseline``, every part of ``config``'s AWS side it does not hold yet.

    Per EKS cluster: its VPC (as :func:`deploy_aws_baseline` builds it), its VGW (the
    network's ``vgw_asn``) propagating into every private route table, the EKS cluster and
    its vpc-cni add-on. Per site: its customer gateway and the secret holding
    ``site_kubeconfig(name)``. Per VPN: a BGP connection, both tunnels UP, the VGW having
    learned the site's host and pod CIDRs over it. Per peering: the connection, accepted
    (``active``), and in every private route table of each side a route to the other VPC's
    CIDR through it. The trail once. Called again with a grown config, it adds what is new
    (a cluster joining) and changes nothing else.
    """
    ec2 = session.client("ec2")
    if not baseline.networks and not baseline.sites:
        _deploy_trail(session, config)
    for eks_cfg in config.eks_clusters():
        if eks_cfg.name in baseline.networks:
            continue
        prefix = mesh_prefix(config, eks_cfg.name)
        vpc = _deploy_vpc(ec2, config, eks_cfg.network, prefix)
        vgw_id = _deploy_vgw(ec2, config, eks_cfg.network.vgw_asn, vpc.vpc_id, prefix)
        for rt in vpc.private_route_table_ids:
            ec2.enable_vgw_route_propagation(RouteTableId=rt, GatewayId=vgw_id)
        arn = _deploy_eks_cluster(session, config, eks_cfg, vpc.private_subnet_ids, prefix)
        baseline.networks[eks_cfg.name] = NetworkBaseline(
            eks_cfg.name, vpc, vgw_id, eks_cfg.cluster_name, arn
        )
    for site in config.sites():
        if site.name not in baseline.sites:
            prefix = mesh_prefix(config, site.name)
            cgw_id = _deploy_cgw(ec2, config, site.customer_gateway, prefix)
            secret = _store_site_kubeconfig(session, config, site, site_kubeconfig(site.name))
            baseline.sites[site.name] = SiteBaseline(site.name, cgw_id, secret)
        for vpn in site.vpns:
            if (site.name, vpn.to) in baseline.vpns:
                continue
            network = baseline.networks[vpn.to]
            vpn_id = _deploy_vpn(
                ec2,
                config,
                baseline.sites[site.name].cgw_id,
                network.vgw_id,
                f"{mesh_prefix(config, site.name)}-{vpn.to}-vpn",
            )
            # What BGP over this VPN brings: the site's router announces its host and pod
            # CIDRs (with several sites on one VGW, each over its own connection).
            sandbox.set_vpn_routes(vpn_id, [str(c) for c in [*site.host_cidrs, *site.pod_cidrs]])
            baseline.vpns[(site.name, vpn.to)] = VpnBaseline(
                site.name, vpn.to, vpn_id, _tunnels_up(sandbox, vpn_id)
            )
    for a, b in config.peerings():
        if (a, b) not in baseline.peerings:
            baseline.peerings[(a, b)] = _deploy_peering(
                ec2, config, baseline.networks[a], baseline.networks[b]
            )
    return baseline


def _deploy_peering(
    ec2: Any, config: FederationConfig, a: NetworkBaseline, b: NetworkBaseline
) -> str:
    """The peering stack's work for one pair: the connection (``a`` requests, ``b``
    accepts: one account, one region), then in every private route table of each VPC a
    route to the other VPC's primary CIDR through it."""
    pcx = str(
        ec2.create_vpc_peering_connection(
            VpcId=a.vpc.vpc_id,
            PeerVpcId=b.vpc.vpc_id,
            TagSpecifications=_tags(
                "vpc-peering-connection", config, f"{config.name}-{a.cluster}-{b.cluster}"
            ),
        )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    )
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    for here, there in ((a, b), (b, a)):
        for cidr in config.cidrs_of(there.cluster):
            for rt in here.vpc.private_route_table_ids:
                ec2.create_route(
                    RouteTableId=rt, DestinationCidrBlock=str(cidr), VpcPeeringConnectionId=pcx
                )
    return pcx
