"""Builders of new-form federation mappings for the topology tests."""

from __future__ import annotations

import copy
from itertools import combinations
from typing import Any

import yaml

from tests.conftest import ROOT

MESH_EXAMPLE = ROOT / "federation.mesh.example.yaml"


def mesh_example() -> dict[str, Any]:
    """federation.mesh.example.yaml as a fresh mapping (eks-a, eks-b, dc1, dc2)."""
    data: dict[str, Any] = yaml.safe_load(MESH_EXAMPLE.read_text())
    return copy.deepcopy(data)


def eks(index: int) -> dict[str, Any]:
    """EKS cluster eks-<index>: VPC 10.<index>.0.0/16, VGW ASN 64512+index."""
    return {
        "name": f"eks-{index}",
        "kind": "eks",
        "network": {"cidr": f"10.{index}.0.0/16", "vgw_asn": 64512 + index},
    }


def site(index: int, vpns: list[str]) -> dict[str, Any]:
    """Site dc-<index>: hosts 192.168.<index>.0/24, pods 10.<64+index>.0.0/16, services
    10.<128+index>.0.0/16, its own customer-gateway ASN 65000+index."""
    return {
        "name": f"dc-{index}",
        "kind": "onprem",
        "api_endpoint": f"https://192.168.{index}.10:6443",
        "credentials_secret": f"mesh/dc-{index}",
        "host_cidrs": [f"192.168.{index}.0/24"],
        "pod_cidrs": [f"10.{64 + index}.0.0/16"],
        "service_cidrs": [f"10.{128 + index}.0.0/16"],
        "customer_gateway": {"ip": f"203.0.113.{index + 1}", "bgp_asn": 65000 + index},
        "vpns": [{"to": name} for name in vpns],
    }


def full_mesh(eks_count: int, site_count: int) -> dict[str, Any]:
    """A routable full mesh: every site has a VPN to every VPC, every two VPCs are peered."""
    vpcs = [eks(i) for i in range(eks_count)]
    names = [v["name"] for v in vpcs]
    return {
        "name": "mesh",
        "aws": {"region": "eu-west-1"},
        "clusters": [*vpcs, *(site(j, names) for j in range(site_count))],
        "links": {"peerings": [list(p) for p in combinations(names, 2)]},
    }
