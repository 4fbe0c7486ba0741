"""The rules across the federation: each problem is refused with a line that names the field,
the clusters involved and the fix; every problem is listed at once."""

from __future__ import annotations

import ipaddress
from datetime import date
from typing import Any

import pytest
import yaml

from fedkeeper.config import config_warnings, parse_config
from fedkeeper.errors import ConfigError
from fedkeeper.topology import mesh_warnings, parse_mesh
from fedkeeper.topology.legacy import legacy_path_namer
from tests.conftest import EXAMPLE
from tests.unit.topology_meshes import eks, full_mesh, mesh_example, site


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_mesh(data)
    return exc.value.errors


def the_error(data: Any, path: str) -> str:
    """The one error line at ``path``."""
    found = [e for e in errors_of(data) if e.startswith(f"{path}: ")]
    assert len(found) == 1, errors_of(data)
    return found[0]


def cluster(data: dict[str, Any], name: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(c for c in data["clusters"] if c["name"] == name)
    return entry


def test_a_site_pod_range_inside_another_clusters_vpc_names_both_clusters() -> None:
    data = mesh_example()
    cluster(data, "dc2")["pod_cidrs"] = ["10.101.128.0/17"]
    line = the_error(data, "clusters[3].pod_cidrs[0]")
    assert "eks-b" in line and "dc2" in line and "clusters[1].network.cidr" in line
    assert "choose ranges that overlap no other cluster's" in line


def test_two_sites_with_the_same_host_range_are_refused() -> None:
    data = mesh_example()
    cluster(data, "dc2")["host_cidrs"] = ["192.168.0.0/16"]
    line = the_error(data, "clusters[3].host_cidrs[0]")
    assert "dc1" in line and "dc2" in line


def test_ranges_within_one_site_must_be_disjoint() -> None:
    data = mesh_example()
    cluster(data, "dc1")["service_cidrs"] = ["10.244.0.0/20"]
    line = the_error(data, "clusters[2].service_cidrs[0]")
    assert "clusters[2].pod_cidrs[0]" in line and "of dc1 must be disjoint" in line


def test_two_sites_may_share_a_service_range() -> None:
    # Given both sites on kubeadm's default service range
    data = mesh_example()
    for name in ("dc1", "dc2"):
        cluster(data, name)["service_cidrs"] = ["10.96.0.0/16"]
    # Then the federation is valid: service IPs never leave their cluster
    assert parse_mesh(data).cluster("dc2").service_cidrs == [ipaddress.ip_network("10.96.0.0/16")]


def test_a_service_range_may_not_cover_another_clusters_pods() -> None:
    data = mesh_example()
    cluster(data, "dc1")["service_cidrs"] = ["10.245.0.0/16"]
    line = the_error(data, "clusters[3].pod_cidrs[0]")
    assert "service CIDR 10.245.0.0/16 of dc1" in line


def test_two_vpcs_that_overlap_cannot_be_peered() -> None:
    data = mesh_example()
    cluster(data, "eks-b")["network"]["cidr"] = "10.100.0.0/16"
    line = the_error(data, "links.peerings[0]")
    assert "eks-a (10.100.0.0/16) and eks-b (10.100.0.0/16) overlap" in line
    assert any(e.startswith("clusters[1].network.cidr: ") for e in errors_of(data))


def test_a_peering_joins_two_eks_clusters_only() -> None:
    data = mesh_example()
    data["links"]["peerings"].append(["eks-a", "dc1"])
    line = the_error(data, "links.peerings[1]")
    assert "dc1 is an on-prem cluster" in line and "vpns of dc1" in line


@pytest.mark.parametrize(
    ("peering", "problem"),
    [
        (["eks-a", "eks-c"], "'eks-c' names no cluster"),
        (["eks-a", "eks-a"], "pairs eks-a with itself"),
        (["eks-b", "eks-a"], "repeats links.peerings[0] (eks-b ↔ eks-a)"),
    ],
)
def test_a_bad_peering_is_named(peering: list[str], problem: str) -> None:
    data = mesh_example()
    data["links"]["peerings"].append(peering)
    assert problem in the_error(data, "links.peerings[1]")


def test_site_routes_join_two_sites_only() -> None:
    data = mesh_example()
    data["links"]["site_routes"] = [["dc1", "eks-a"]]
    assert "eks-a is an EKS cluster" in the_error(data, "links.site_routes[0]")


def test_eks_clusters_without_a_peering_cannot_pair() -> None:
    # Given the two EKS clusters' peering removed, and the full mesh still asked for
    data = mesh_example()
    data["links"]["peerings"] = []
    line = the_error(data, "topology.pairs")
    # Then the error names both clusters, the missing link, and the way out
    assert "eks-a and eks-b are paired" in line
    assert "add [eks-a, eks-b] to links.peerings" in line
    assert "topology.exclude: [[eks-a, eks-b]]" in line


def test_excluding_the_unroutable_pair_makes_the_mesh_valid() -> None:
    data = mesh_example()
    data["links"]["peerings"] = []
    data["topology"]["exclude"] = [["eks-b", "eks-a"]]
    assert ("eks-a", "eks-b") not in parse_mesh(data).pairs()


def test_a_site_without_a_vpn_to_a_vpc_cannot_pair_with_its_cluster() -> None:
    data = mesh_example()
    cluster(data, "dc2")["vpns"] = [{"to": "eks-a"}]
    line = the_error(data, "topology.pairs")
    assert "dc2 has no VPN to the VPC of eks-b" in line and "{to: eks-b}" in line


def test_two_sites_on_different_vgws_need_a_route_of_their_own() -> None:
    # Given dc1 only on eks-a's VGW and dc2 only on eks-b's: no VPN CloudHub between them
    data = mesh_example()
    data["topology"]["pairs"] = [["dc1", "dc2"]]
    cluster(data, "dc1")["vpns"] = [{"to": "eks-a"}]
    cluster(data, "dc2")["vpns"] = [{"to": "eks-b"}]
    line = the_error(data, "topology.pairs[0]")
    assert "dc1 and dc2 have no VPN to a common VPC" in line
    # When the operator's own network routes between them
    data["links"]["site_routes"] = [["dc2", "dc1"]]
    # Then the pair is routable
    assert parse_mesh(data).pairs() == [("dc1", "dc2"), ("dc2", "dc1")]


def test_a_vpn_must_reach_an_eks_clusters_vpc() -> None:
    data = mesh_example()
    cluster(data, "dc1")["vpns"].append({"to": "dc2"})
    cluster(data, "dc2")["vpns"].append({"to": "eks-c"})
    assert "'dc2' is an on-prem cluster" in the_error(data, "clusters[2].vpns[2].to")
    line = the_error(data, "clusters[3].vpns[2].to")
    assert "'eks-c' names no cluster" in line and "eks-a, eks-b" in line


def test_a_site_lists_each_vpn_once() -> None:
    data = mesh_example()
    cluster(data, "dc1")["vpns"].append({"to": "eks-a"})
    assert "dc1 lists its VPN to eks-a twice" in the_error(data, "clusters[2].vpns[2].to")


def test_a_site_needs_a_vpn() -> None:
    data = mesh_example()
    cluster(data, "dc1")["vpns"] = []
    assert "at least one EKS cluster's VPC" in the_error(data, "clusters[2].vpns")


def test_a_vgw_takes_at_most_ten_vpns() -> None:
    # Given eleven sites, each with a VPN to the one VPC
    data = full_mesh(1, 11)
    line = the_error(data, "clusters[0].network")
    assert "11 sites have a VPN to the VGW of eks-0" in line and "dc-10" in line
    assert "takes 10 Site-to-Site VPN connections" in line


def test_ten_vpns_on_one_vgw_are_fine() -> None:
    assert len(parse_mesh(full_mesh(1, 10)).sites_of("eks-0")) == 10


def test_sites_sharing_a_vgw_need_distinct_asns() -> None:
    data = mesh_example()
    cluster(data, "dc2")["customer_gateway"]["bgp_asn"] = 65010
    line = the_error(data, "clusters[3].customer_gateway.bgp_asn")
    assert "dc2 has the ASN 65010 of dc1" in line and "VGW of eks-a, eks-b" in line
    assert "unique BGP ASN for each customer gateway" in line


def test_sites_on_different_vgws_may_share_an_asn() -> None:
    data = mesh_example()
    data["topology"]["exclude"] = [["dc1", "dc2"]]
    cluster(data, "dc1")["vpns"] = [{"to": "eks-a"}]
    cluster(data, "dc2")["vpns"] = [{"to": "eks-b"}]
    data["topology"]["pairs"] = [["dc1", "eks-a"], ["dc2", "eks-b"], ["eks-a", "eks-b"]]
    cluster(data, "dc2")["customer_gateway"]["bgp_asn"] = 65010
    assert parse_mesh(data).peers("dc2") == ["eks-b"]


def test_a_site_asn_equal_to_a_vgw_asn_is_refused() -> None:
    data = mesh_example()
    cluster(data, "dc1")["customer_gateway"]["bgp_asn"] = 64513
    line = the_error(data, "clusters[2].customer_gateway.bgp_asn")
    assert "equals the ASN of the VGW of eks-b (clusters[1].network.vgw_asn)" in line


def test_a_vpn_carries_at_most_100_prefixes_from_its_site() -> None:
    # Given a site with 101 host and pod prefixes
    data = mesh_example()
    cluster(data, "dc1")["host_cidrs"] = [f"192.168.{i}.0/24" for i in range(100)]
    line = the_error(data, "clusters[2]")
    assert "dc1 would advertise 101 prefixes" in line and "accepts 100 routes" in line


def test_a_route_table_takes_at_most_100_propagated_routes() -> None:
    # Given two sites on one VGW with 60 prefixes each: each VPN is within its 100
    data = mesh_example()
    cluster(data, "dc1")["host_cidrs"] = [f"192.168.{i}.0/24" for i in range(59)]
    cluster(data, "dc2")["host_cidrs"] = [f"172.16.{i}.0/24" for i in range(59)]
    errors = errors_of(data)
    line = next(e for e in errors if e.startswith("clusters[0].network: "))
    assert "eks-a would receive 120 propagated routes" in line
    assert "dc1: 60, dc2: 60" in line
    assert not any("would advertise" in e for e in errors)


def test_cluster_names_are_unique() -> None:
    data = mesh_example()
    cluster(data, "dc2")["name"] = "eks-a"
    line = the_error(data, "clusters[3].name")
    assert "'eks-a' is also clusters[0].name" in line


def test_a_federation_of_one_is_refused() -> None:
    data = {"name": "solo", "aws": {"region": "eu-west-1"}, "clusters": [eks(0)]}
    assert "lists only eks-0; a federation joins at least two" in the_error(data, "clusters")


def test_a_topology_that_chooses_no_pair_is_refused() -> None:
    data = full_mesh(2, 0)
    data["topology"] = {"exclude": [["eks-0", "eks-1"]]}
    assert "chooses no pair of clusters" in the_error(data, "topology")


@pytest.mark.parametrize("field", ["pairs", "exclude"])
def test_pairs_and_exclusions_name_known_clusters(field: str) -> None:
    data = mesh_example()
    data["topology"][field] = [["dc1", "dc3"]]
    assert "'dc3' names no cluster" in the_error(data, f"topology.{field}[0]")


def test_pairs_is_all_or_a_list() -> None:
    data = mesh_example()
    data["topology"]["pairs"] = "mesh"
    assert "write all (a full mesh) or a list" in the_error(data, "topology.pairs")


def test_a_network_in_another_region_says_what_is_missing() -> None:
    data = mesh_example()
    cluster(data, "eks-b")["network"]["region"] = "us-east-1"
    line = the_error(data, "clusters[1].network.region")
    assert "eks-b is in us-east-1 but aws.region is eu-west-1" in line
    assert "one region for now" in line and "inter-region peering" in line


def test_a_network_naming_the_federations_region_and_account_is_fine() -> None:
    data = mesh_example()
    data["aws"]["account"] = "111122223333"
    cluster(data, "eks-b")["network"].update(region="eu-west-1", account="111122223333")
    assert parse_mesh(data).cluster("eks-b").network.account == "111122223333"  # type: ignore[union-attr]


def test_networks_in_two_accounts_say_what_is_missing() -> None:
    # Given no aws.account, and the two networks naming different accounts
    data = mesh_example()
    cluster(data, "eks-a")["network"]["account"] = "111122223333"
    cluster(data, "eks-b")["network"]["account"] = "444455556666"
    line = the_error(data, "clusters[1].network.account")
    assert "account 444455556666 but clusters[0].network.account is 111122223333" in line
    assert "one account for now" in line and "cross-account roles" in line


def test_an_unquoted_account_id_asks_for_quotes() -> None:
    data = mesh_example()
    data["aws"]["account"] = 11122223333
    assert '"011122223333"' in the_error(data, "aws.account")


def test_a_departed_cluster_is_no_longer_configured() -> None:
    data = mesh_example()
    data["departed"] = ["dc3", "dc2"]
    assert parse_mesh({**data, "departed": ["dc3"]}).departed == ["dc3"]
    assert "dc2 is still configured (clusters[3])" in the_error(data, "departed[1]")


def test_cluster_kind_is_required_and_named() -> None:
    data = mesh_example()
    del cluster(data, "dc1")["kind"]
    cluster(data, "dc2")["kind"] = "gke"
    assert (
        the_error(data, "clusters[2].kind") == "clusters[2].kind: is required; write eks or onprem"
    )
    assert "is 'gke'" in the_error(data, "clusters[3].kind")


def test_field_errors_name_the_cluster_entry_without_its_kind() -> None:
    data = mesh_example()
    cluster(data, "eks-b")["network"]["az_count"] = 1
    cluster(data, "dc1")["customer_gateway"]["ip"] = "not-an-ip"
    assert "at least 2 availability zones" in the_error(data, "clusters[1].network.az_count")
    assert "IPv4 address" in the_error(data, "clusters[2].customer_gateway.ip")


def test_rcc_names_belong_to_the_two_cluster_form() -> None:
    data = mesh_example()
    data["federation"]["eks_rcc_name"] = "dc1"
    assert "set that cluster's name instead" in the_error(data, "federation.eks_rcc_name")


def test_rules_across_clusters_run_beside_errors_elsewhere() -> None:
    # Given a bad schedule, a bad node group and two overlapping sites
    data = mesh_example()
    data["reconcile"]["schedule"] = "every 5 minutes"
    cluster(data, "eks-a")["node_group"]["min_size"] = 9
    cluster(data, "dc2")["pod_cidrs"] = ["10.244.0.0/16"]
    errors = errors_of(data)
    # Then every problem is listed at once
    assert any(e.startswith("reconcile.schedule: ") for e in errors)
    assert any(e.startswith("clusters[0].node_group: ") for e in errors)
    assert any(e.startswith("clusters[3].pod_cidrs[0]: ") and "dc1" in e for e in errors)


def test_every_problem_is_one_line_naming_its_field() -> None:
    data = full_mesh(2, 2)
    data["links"]["peerings"] = []
    data["clusters"][3]["customer_gateway"]["bgp_asn"] = 65000
    data["clusters"][2]["pod_cidrs"] = ["10.0.0.0/8"]
    for line in errors_of(data):
        assert "\n" not in line
        assert line.split(": ", 1)[0].startswith(("clusters", "links", "topology"))


def test_a_site_built_for_the_tests_is_valid() -> None:
    # The builders' own contract: a two-cluster mesh of them loads.
    data = {"name": "two", "aws": {"region": "eu-west-1"}, "clusters": [eks(0), site(0, ["eks-0"])]}
    assert parse_mesh(data).pairs() == [("dc-0", "eks-0"), ("eks-0", "dc-0")]


def test_more_vpcs_than_the_default_quota_warn_rather_than_refuse() -> None:
    # Given six EKS clusters: one more VPC and VGW than the default regional quotas
    mesh = parse_mesh(full_mesh(6, 0))
    # Then the federation loads, and the warning says which quota to raise
    warnings = mesh_warnings(mesh, date(2026, 7, 1))
    assert [w for w in warnings if w.startswith("clusters: 6 EKS clusters need 6 VPCs")]
    assert "request increases in Service Quotas" in warnings[0]


def test_version_warnings_name_each_eks_cluster_and_a_legacy_files_own_field() -> None:
    # Given a two-cluster file on an old Kubernetes version
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    data["eks"]["kubernetes_version"] = "1.30"
    day = date(2026, 7, 1)
    # Then the mesh warns as config.py does, on the file's own field
    warnings = mesh_warnings(parse_mesh(data), day, legacy_path_namer(data))
    assert warnings and warnings == config_warnings(parse_config(data), day, data)
    assert warnings[0].startswith("eks.kubernetes_version: ")
    # ... and in the new form, on the cluster's
    mesh = mesh_example()
    cluster(mesh, "eks-b")["kubernetes_version"] = "1.30"
    assert [w.split(":")[0] for w in mesh_warnings(parse_mesh(mesh), day)] == [
        "clusters[1].kubernetes_version"
    ] * len(warnings)
