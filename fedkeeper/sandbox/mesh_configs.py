"""Federations of N clusters in a full mesh, written for the sandbox and its benchmark.

``full_mesh(n)`` is a valid new-form config of ``n`` clusters that every rule of the
federation accepts: the sites (at most 10: a VGW takes 10 VPN connections, and in a full mesh
every site needs a VPN to every EKS cluster's VPC) and the EKS clusters alternate while both
last, the EKS clusters' VPCs are all peered with each other (peering is not transitive), the
sites reach each other by VPN CloudHub (distinct customer-gateway ASNs), and every CIDR of the
federation is distinct. ``joined(config)`` is the same federation with one cluster more.
"""

from __future__ import annotations

import ipaddress
from itertools import combinations
from typing import Any

from fedkeeper.config import FederationConfig
from fedkeeper.topology.load import parse_mesh

MAX_SITES = 10  # VPN connections per VGW (AWS quota); in a full mesh each site has one per VGW


def _eks(i: int) -> dict[str, Any]:
    return {
        "name": f"eks-{i:02d}",
        "kind": "eks",
        "kubernetes_version": "1.35",
        "network": {"cidr": f"10.{100 + i}.0.0/16", "az_count": 2, "vgw_asn": 64512 + i},
    }


def _site(j: int, eks_names: list[str]) -> dict[str, Any]:
    return {
        "name": f"dc-{j:02d}",
        "kind": "onprem",
        "api_endpoint": f"https://172.{16 + j}.10.10:6443",
        "credentials_secret": f"fed-bench/dc-{j:02d}-kubeconfig",
        "host_cidrs": [f"172.{16 + j}.0.0/16"],
        "pod_cidrs": [f"10.{200 + j}.0.0/16"],
        "service_cidrs": [f"10.{60 + j}.0.0/16"],
        "customer_gateway": {"ip": f"203.0.113.{10 + j}", "bgp_asn": 65010 + j},
        "vpns": [{"to": name} for name in eks_names],
    }


def _kinds(n: int) -> tuple[int, int]:
    """(EKS clusters, sites) of a full mesh of ``n``: as many sites as EKS clusters, at most
    :data:`MAX_SITES`."""
    if n < 2:
        raise ValueError(f"a federation has at least 2 clusters, not {n}")
    sites = min(n // 2, MAX_SITES)
    eks = n - sites
    if eks > 155:  # 10.100/16 .. 10.254/16
        raise ValueError(f"{n} clusters: at most {155 + MAX_SITES} fit this CIDR plan")
    return eks, sites


def full_mesh_data(n: int, name: str = "fed-bench") -> dict[str, Any]:
    """The new-form mapping of a full mesh of ``n`` clusters (see the module docstring)."""
    eks_count, site_count = _kinds(n)
    eks = [_eks(i) for i in range(eks_count)]
    eks_names = [e["name"] for e in eks]
    sites = [_site(j, eks_names) for j in range(site_count)]
    clusters: list[dict[str, Any]] = []
    for i in range(max(eks_count, site_count)):  # alternate, so a prefix is a mesh too
        clusters += eks[i : i + 1] + sites[i : i + 1]
    return {
        "name": name,
        "aws": {"region": "eu-west-1", "cloudtrail": "create"},
        "clusters": clusters,
        "links": {"peerings": [list(p) for p in combinations(eks_names, 2)]},
        "topology": {"pairs": "all"},
    }


def full_mesh(n: int, name: str = "fed-bench") -> FederationConfig:
    """A validated full mesh of ``n`` clusters."""
    return parse_mesh(full_mesh_data(n, name), f"full mesh of {n}")


def _data(config: FederationConfig) -> dict[str, Any]:
    """``config`` as a new-form mapping that validates to it again."""
    data = config.model_dump(mode="json")
    if data["topology"]["pairs"] is None:
        data["topology"]["pairs"] = "all"
    return data


def joined(config: FederationConfig) -> tuple[FederationConfig, str]:
    """``config`` with one EKS cluster more (peered with every EKS cluster, every site
    given a VPN to it): the federation after a join, and the new cluster's name."""
    data = _data(config)
    taken = {c["name"] for c in data["clusters"]}
    i = next(i for i in range(len(taken) + 1) if f"eks-{i:02d}" not in taken)
    new = _eks(i)
    # A VPC CIDR and VGW ASN no cluster of ``config`` has (it may not follow this plan).
    used = [n for c in config.clusters for n in config.cidrs_of(c.name)]
    used += [n for site in config.sites() for n in site.service_cidrs]
    free = next(
        k
        for k in range(100, 255)
        if not any(ipaddress.ip_network(f"10.{k}.0.0/16").overlaps(n) for n in used)
    )
    asns = {e.network.vgw_asn for e in config.eks_clusters()}
    asns |= {s.customer_gateway.bgp_asn for s in config.sites()}
    new["network"]["cidr"] = f"10.{free}.0.0/16"
    new["network"]["vgw_asn"] = next(a for a in range(64512, 65535) if a not in asns)
    eks_names = [c["name"] for c in data["clusters"] if c["kind"] == "eks"]
    data["clusters"].append(new)
    for c in data["clusters"]:
        if c["kind"] == "onprem":
            c["vpns"].append({"to": new["name"]})
    data["links"]["peerings"] += [[other, new["name"]] for other in eks_names]
    return parse_mesh(data, f"{config.name} with {new['name']}"), str(new["name"])


def departed(config: FederationConfig, name: str) -> FederationConfig:
    """``config`` after ``name`` leaves: removed from ``clusters``, from every link and pair
    naming it, and listed under ``departed`` (a ConfigError when what is left is not a
    federation, e.g. a site whose only VPN was to it)."""
    data = _data(config)
    data["clusters"] = [c for c in data["clusters"] if c["name"] != name]
    for c in data["clusters"]:
        if c["kind"] == "onprem":
            c["vpns"] = [v for v in c["vpns"] if v["to"] != name]
    links, topology = data["links"], data["topology"]
    for key in ("peerings", "site_routes"):
        links[key] = [p for p in links[key] if name not in p]
    if topology["pairs"] != "all":
        topology["pairs"] = [p for p in topology["pairs"] if name not in p]
    topology["exclude"] = [p for p in topology["exclude"] if name not in p]
    data["departed"] = [*data["departed"], name]
    return parse_mesh(data, f"{config.name} without {name}")
