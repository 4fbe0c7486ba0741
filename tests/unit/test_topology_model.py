"""The new-form model and the topology the engine reads, on federation.mesh.example.yaml."""

from __future__ import annotations

import ipaddress
from datetime import date

import pytest
import yaml

from fedkeeper.config import (
    CalicoInstallConfig,
    CustomerGatewayConfig,
    NodeGroupConfig,
    OnPremConfig,
    VpcConfig,
    VpnConfig,
)
from fedkeeper.topology import (
    MAX_PROPAGATED_ROUTES_PER_ROUTE_TABLE,
    MAX_ROUTES_PER_VPN,
    MAX_VPNS_PER_VGW,
    EksCluster,
    MeshConfig,
    OnPremCluster,
    SiteVpnConfig,
    VpnConnection,
    load_mesh,
    mesh_warnings,
    parse_mesh,
    render_mesh,
)
from fedkeeper.topology.model import MeshAwsConfig, NetworkConfig
from tests.unit.topology_meshes import MESH_EXAMPLE, mesh_example

net = ipaddress.ip_network


@pytest.fixture(scope="module")
def mesh() -> MeshConfig:
    return load_mesh(MESH_EXAMPLE)


def test_the_mesh_example_has_two_eks_clusters_and_two_sites(mesh: MeshConfig) -> None:
    assert [c.name for c in mesh.eks_clusters()] == ["eks-a", "eks-b"]
    assert [c.name for c in mesh.sites()] == ["dc1", "dc2"]
    assert mesh.names() == ["eks-a", "eks-b", "dc1", "dc2"]


def test_the_clusters_reuse_todays_sub_models(mesh: MeshConfig) -> None:
    eks, site = mesh.cluster("eks-a"), mesh.cluster("dc1")
    assert isinstance(eks, EksCluster) and isinstance(site, OnPremCluster)
    assert isinstance(eks.network, VpcConfig) and isinstance(site, OnPremConfig)
    assert isinstance(eks.node_group, NodeGroupConfig)
    assert isinstance(eks.calico, CalicoInstallConfig)
    assert isinstance(site.customer_gateway, CustomerGatewayConfig)


def test_a_field_of_todays_sub_models_is_a_field_of_the_new_ones() -> None:
    # Given the sub-models other work extends in config.py
    # Then every field of theirs is a field here, so an addition there carries over.
    assert set(VpcConfig.model_fields) <= set(NetworkConfig.model_fields)
    assert set(OnPremConfig.model_fields) <= set(OnPremCluster.model_fields)
    from fedkeeper.config import AwsConfig, EksConfig

    assert set(EksConfig.model_fields) <= set(EksCluster.model_fields)
    # aws.vpc and aws.vpn move to the clusters; every other aws key stays in aws.
    assert set(AwsConfig.model_fields) - {"vpc", "vpn"} <= set(MeshAwsConfig.model_fields)
    # aws.vpn's VGW ASN goes to the network, its router to the site, the rest to the VPN.
    vpn_rest = set(VpnConfig.model_fields) - {"vgw_asn", "customer_gateway"}
    assert vpn_rest <= set(SiteVpnConfig.model_fields)
    assert {"vgw_asn"} <= set(NetworkConfig.model_fields)


def test_an_eks_cluster_name_defaults_to_its_mesh_name() -> None:
    data = mesh_example()
    del data["clusters"][0]["cluster_name"]
    assert parse_mesh(data).cluster("eks-a").cluster_name == "eks-a"


def test_an_unknown_cluster_is_a_key_error(mesh: MeshConfig) -> None:
    with pytest.raises(KeyError):
        mesh.cluster("dc9")


def test_the_full_mesh_pairs_every_cluster_with_every_other_both_ways(mesh: MeshConfig) -> None:
    names = mesh.names()
    expected = sorted((a, b) for a in names for b in names if a != b)
    assert mesh.pairs() == expected
    assert len(mesh.pairs()) == 12


def test_peers_are_whom_a_cluster_holds_rccs_for(mesh: MeshConfig) -> None:
    assert mesh.peers("dc1") == ["dc2", "eks-a", "eks-b"]
    assert mesh.peers("eks-b") == ["dc1", "dc2", "eks-a"]


def test_explicit_pairs_minus_exclusions_choose_the_pairs() -> None:
    # Given pairs listed by hand, one of them excluded again
    data = mesh_example()
    data["topology"] = {
        "pairs": [["dc1", "eks-a"], ["eks-b", "eks-a"], ["dc2", "eks-b"]],
        "exclude": [["eks-a", "eks-b"]],
    }
    cfg = parse_mesh(data)
    # Then only the remaining ones federate, in both directions, sorted
    assert cfg.pairs() == [("dc1", "eks-a"), ("dc2", "eks-b"), ("eks-a", "dc1"), ("eks-b", "dc2")]
    assert cfg.peers("eks-a") == ["dc1"]
    assert not cfg.topology.full_mesh


def test_every_pair_of_the_example_is_routable_and_says_how(mesh: MeshConfig) -> None:
    for a, b in mesh.pairs():
        assert mesh.routable(a, b)
    assert mesh.facts.route_between("eks-a", "eks-b") == "the VPC peering eks-a ↔ eks-b"
    assert mesh.facts.route_between("dc1", "eks-b") == "the VPN from dc1 to the VPC of eks-b"
    assert mesh.facts.route_between("dc2", "dc1") == "VPN CloudHub on the VGW of eks-a"


def test_vpns_list_each_site_to_vpc_connection(mesh: MeshConfig) -> None:
    assert mesh.vpns() == [
        VpnConnection("dc1", "eks-a", ("ikev2",)),
        VpnConnection("dc1", "eks-b", ("ikev2",)),
        VpnConnection("dc2", "eks-a", ("ikev2",)),
        VpnConnection("dc2", "eks-b", ("ikev2",)),
    ]
    assert [s.name for s in mesh.sites_of("eks-b")] == ["dc1", "dc2"]


def test_peerings_are_normalised_and_give_each_vpc_its_peer_routes(mesh: MeshConfig) -> None:
    assert mesh.peerings() == [("eks-a", "eks-b")]
    assert mesh.peered_with("eks-b") == ["eks-a"]
    assert mesh.peering_routes("eks-a") == [("eks-b", net("10.101.0.0/16"))]


def test_cidrs_of_a_peer_are_its_vpc_or_its_host_and_pod_ranges(mesh: MeshConfig) -> None:
    assert mesh.cidrs_of("eks-a") == [net("10.100.0.0/16")]
    # Service ranges never leave their cluster, so no peer's pool covers them.
    assert mesh.cidrs_of("dc2") == [net("172.16.0.0/16"), net("10.245.0.0/16")]


def test_a_sites_pools_must_cover_every_cidr_of_every_peer(mesh: MeshConfig) -> None:
    assert mesh.peer_cidrs("dc1") == [
        net("172.16.0.0/16"),
        net("10.245.0.0/16"),
        net("10.100.0.0/16"),
        net("10.101.0.0/16"),
    ]


def test_each_vpn_carries_its_sites_host_and_pod_prefixes(mesh: MeshConfig) -> None:
    assert mesh.vpn_prefixes("dc1") == [net("192.168.0.0/16"), net("10.244.0.0/16")]
    assert mesh.propagated_prefixes("eks-a") == [
        net("192.168.0.0/16"),
        net("10.244.0.0/16"),
        net("172.16.0.0/16"),
        net("10.245.0.0/16"),
    ]


def test_the_example_stays_within_every_aws_limit(mesh: MeshConfig) -> None:
    for vpc in mesh.eks_clusters():
        assert len(mesh.sites_of(vpc.name)) <= MAX_VPNS_PER_VGW
        assert len(mesh.propagated_prefixes(vpc.name)) <= MAX_PROPAGATED_ROUTES_PER_ROUTE_TABLE
        sharing = [s.customer_gateway.bgp_asn for s in mesh.sites_of(vpc.name)]
        assert len(set(sharing)) == len(sharing)
        assert vpc.network.vgw_asn not in sharing
    for site in mesh.sites():
        assert len(mesh.vpn_prefixes(site.name)) <= MAX_ROUTES_PER_VPN
    # ... and needs no quota increase, nor a newer Kubernetes version, on the day it was written.
    assert mesh_warnings(mesh, date(2026, 7, 1)) == []


def test_the_example_file_is_the_model_rendered_with_every_key_commented(
    mesh: MeshConfig,
) -> None:
    text = MESH_EXAMPLE.read_text()
    body = render_mesh(mesh)
    # The file is a header comment, then exactly what render_mesh writes.
    header = text[: len(text) - len(body)]
    assert text.endswith(body)
    assert all(line.startswith("#") or not line for line in header.splitlines())
    # Every key is commented where it first appears.
    seen: set[str] = set()
    lines = body.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip().removeprefix("- ")
        if not stripped or stripped.startswith("#"):
            continue
        key = stripped.split(":", 1)[0]
        indent = len(line) - len(line.lstrip())
        if (indent, key) not in seen:
            assert lines[i - 1].strip().startswith("#"), f"uncommented key: {line!r}"
        seen.add((indent, key))


def test_rendering_loads_back_to_an_equal_model(mesh: MeshConfig) -> None:
    assert parse_mesh(yaml.safe_load(render_mesh(mesh))) == mesh


def test_a_copy_with_other_links_answers_from_its_own_links(mesh: MeshConfig) -> None:
    # Given the example's topology read once (it is cached)
    assert mesh.routable("eks-a", "eks-b")
    # When a copy drops the peering
    copy = mesh.model_copy(update={"links": mesh.links.model_copy(update={"peerings": []})})
    # Then the copy answers from its own links
    assert not copy.routable("eks-a", "eks-b")
    assert mesh.routable("eks-a", "eks-b")
