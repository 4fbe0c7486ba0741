"""The sandbox world for N clusters: one fake API server per cluster, one VPC per EKS cluster,
the sites' VPNs and the peerings, the reconciler's identity on every cluster (never admin).

Built from federation.mesh.example.yaml (2 EKS clusters, 2 sites, one peering) without a
converging run: the engine for N clusters is wired elsewhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fedkeeper.adapters.auth import eks_token
from fedkeeper.config import load_config
from fedkeeper.sandbox.world import Sandbox

ROOT = Path(__file__).resolve().parents[2]
CALICO = "projectcalico.org/v3"


@pytest.fixture(scope="module")
def mesh() -> Iterator[Sandbox]:
    with Sandbox.start(load_config(ROOT / "federation.mesh.example.yaml"), converge=False) as sb:
        yield sb


def _routes(sb: Sandbox, table: str) -> list[dict[str, Any]]:
    ec2 = sb.aws_session().client("ec2")
    return list(ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"])


def test_each_cluster_has_its_own_api_server_and_ca(mesh: Sandbox) -> None:
    endpoints = mesh.endpoints()

    assert list(endpoints) == ["eks-a", "eks-b", "dc1", "dc2"]
    assert len({e.url for e in endpoints.values()}) == 4
    assert len({e.ca_data for e in endpoints.values()}) == 4


def test_describe_cluster_points_each_eks_cluster_at_its_own_server(mesh: Sandbox) -> None:
    eks = mesh.aws_session().client("eks")

    for name in ("eks-a", "eks-b"):
        endpoint = mesh.endpoints()[name]
        cluster = eks.describe_cluster(name=str(endpoint.eks_cluster_name))["cluster"]
        assert cluster["endpoint"] == endpoint.url
        assert cluster["certificateAuthority"]["data"] == endpoint.ca_data


def test_an_eks_token_of_the_reconciler_role_is_a_non_admin_identity_on_every_eks_cluster(
    mesh: Sandbox,
) -> None:
    for name in ("eks-a", "eks-b"):
        token = eks_token(mesh.reconciler_session(), f"fed-{name}")
        who = mesh.server(name).authenticate(token)
        assert who is not None and "fedkeeper-reconciler" in who.groups
        assert not who.privileged


def test_each_site_secret_holds_a_service_account_kubeconfig_for_that_site_only(
    mesh: Sandbox,
) -> None:
    secrets = mesh.aws_session().client("secretsmanager")

    for site, other in (("dc1", "dc2"), ("dc2", "dc1")):
        secret_id = str(mesh.endpoints()[site].credentials_secret)
        kubeconfig = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
        assert kubeconfig["clusters"][0]["cluster"]["server"] == mesh.server(site).url
        token = kubeconfig["users"][0]["user"]["token"]
        who = mesh.server(site).authenticate(token)
        assert who is not None and who.user == "system:serviceaccount:fedkeeper:fedkeeper"
        assert not who.privileged
        assert mesh.server(other).authenticate(token) is None


def test_eks_clusters_are_seeded_policy_only_and_sites_with_their_pool_and_bgp(
    mesh: Sandbox,
) -> None:
    for name in ("eks-a", "eks-b"):
        assert mesh.server(name).get_object("apps/v1", "DaemonSet", "aws-node", "kube-system")
        assert mesh.server(name).list_objects(CALICO, "IPPool") == []
    for site in mesh.config.sites():
        pools = mesh.server(site.name).list_objects(CALICO, "IPPool")
        assert [p["spec"]["cidr"] for p in pools] == [str(site.pod_cidrs[0])]
        bgp = mesh.server(site.name).get_object(CALICO, "BGPConfiguration", "default")
        assert bgp is not None and bgp["spec"]["asNumber"] == site.customer_gateway.bgp_asn


def test_each_eks_cluster_has_its_own_vpc_and_vgw_with_its_asn(mesh: Sandbox) -> None:
    ec2 = mesh.aws_session().client("ec2")

    for eks in mesh.config.eks_clusters():
        net = mesh.mesh_baseline.networks[eks.name]
        vpc = ec2.describe_vpcs(VpcIds=[net.vpc.vpc_id])["Vpcs"][0]
        vgw = ec2.describe_vpn_gateways(VpnGatewayIds=[net.vgw_id])["VpnGateways"][0]
        assert vpc["CidrBlock"] == str(eks.network.cidr)
        assert vgw["AmazonSideAsn"] == eks.network.vgw_asn
        assert vgw["VpcAttachments"] == [{"State": "attached", "VpcId": net.vpc.vpc_id}]


def test_every_configured_vpn_exists_from_its_sites_gateway_with_both_tunnels_up(
    mesh: Sandbox,
) -> None:
    ec2 = mesh.aws_session().client("ec2")
    base = mesh.mesh_baseline

    assert sorted(base.vpns) == sorted((v.site, v.eks) for v in mesh.config.vpns())
    for (site, eks), vpn in base.vpns.items():
        conn = ec2.describe_vpn_connections(VpnConnectionIds=[vpn.vpn_connection_id])
        found = conn["VpnConnections"][0]
        assert found["CustomerGatewayId"] == base.sites[site].cgw_id
        assert found["VpnGatewayId"] == base.networks[eks].vgw_id
        assert [t["Status"] for t in found["VgwTelemetry"]] == ["UP", "UP"]
        assert {t["AcceptedRouteCount"] for t in found["VgwTelemetry"]} == {2}


def test_each_vgw_propagates_every_site_with_a_vpn_to_it(mesh: Sandbox) -> None:
    for eks in mesh.config.eks_clusters():
        net = mesh.mesh_baseline.networks[eks.name]
        wanted = {
            str(c) for s in mesh.config.sites_of(eks.name) for c in mesh.config.cidrs_of(s.name)
        }
        for table in net.vpc.private_route_table_ids:
            propagated = {
                r["DestinationCidrBlock"]: r["State"]
                for r in _routes(mesh, table)
                if r.get("Origin") == "EnableVgwRoutePropagation"
            }
            assert propagated == dict.fromkeys(wanted, "active")


def test_peered_vpcs_are_active_and_routed_to_each_other_in_every_private_table(
    mesh: Sandbox,
) -> None:
    ec2 = mesh.aws_session().client("ec2")
    pcx = mesh.mesh_baseline.peerings[("eks-a", "eks-b")]

    found = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])
    assert found["VpcPeeringConnections"][0]["Status"]["Code"] == "active"
    for here, there in (("eks-a", "eks-b"), ("eks-b", "eks-a")):
        cidr = str(mesh.config.cidrs_of(there)[0])
        for table in mesh.mesh_baseline.networks[here].vpc.private_route_table_ids:
            via = [r for r in _routes(mesh, table) if r.get("DestinationCidrBlock") == cidr]
            assert [r.get("VpcPeeringConnectionId") for r in via] == [pcx]


def test_one_sites_tunnels_down_blackholes_only_that_sites_routes(mesh: Sandbox) -> None:
    vpn = mesh.mesh_baseline.vpns[("dc1", "eks-a")]
    table = mesh.mesh_baseline.networks["eks-a"].vpc.private_route_table_ids[0]
    try:
        for ip in vpn.tunnel_outside_ips:
            mesh.aws.set_tunnel(vpn.vpn_connection_id, ip, up=False)

        states = {
            r["DestinationCidrBlock"]: r["State"]
            for r in _routes(mesh, table)
            if r.get("Origin") == "EnableVgwRoutePropagation"
        }
        assert states == {
            "192.168.0.0/16": "blackhole",
            "10.244.0.0/16": "blackhole",
            "172.16.0.0/16": "active",
            "10.245.0.0/16": "active",
        }
    finally:
        for ip in vpn.tunnel_outside_ips:
            mesh.aws.set_tunnel(vpn.vpn_connection_id, ip, up=True)
