"""One EKS cluster of the federation as the two-cluster config its per-cluster code reads.

The RBAC manifests (:mod:`fedkeeper.rbac`), the Calico installer's RBAC
(:mod:`fedkeeper.calico_install`) and the EventBridge rules (:mod:`fedkeeper.events`) take a
two-cluster :class:`~fedkeeper.config.FederationConfig`. The stacks read the federation as a
:class:`~fedkeeper.topology.MeshConfig` and hand those functions, per EKS cluster, the view
of that cluster with the first site it federates with. For a two-cluster federation the view
is the file's own two-cluster config, so its templates stay what they were.

This is the one place that converts: once the config is the mesh everywhere, the per-cluster
code reads the mesh itself and this module goes.
"""

from __future__ import annotations

from fedkeeper.config import (
    EksConfig,
    FederationConfig,
    OnPremConfig,
    VpcConfig,
)
from fedkeeper.topology import EksCluster, MeshConfig, OnPremCluster


def view_site(config: MeshConfig, eks: str) -> OnPremCluster:
    """The site whose two-cluster view of ``eks`` the per-cluster code reads: the first site
    ``eks`` federates with, else the first site with a VPN to its VPC, else the first site."""
    sites = config.sites()
    peers = set(config.peers(eks))
    for candidates in (
        [s for s in sites if s.name in peers],
        config.sites_of(eks),
        sites,
    ):
        if candidates:
            return candidates[0]
    raise ValueError(
        f"clusters: the federation {config.name} has no on-prem cluster; the stacks need at "
        "least one (kind: onprem)"
    )


def cluster_view(config: MeshConfig, eks: str) -> FederationConfig:
    """The two-cluster config of the EKS cluster ``eks`` and :func:`view_site`'s site."""
    cluster = config.cluster(eks)
    if not isinstance(cluster, EksCluster):
        raise ValueError(f"clusters: {eks} is not an EKS cluster (kind: eks)")
    site = view_site(config, eks)
    vpn = next((v for v in site.vpns if v.to == eks), site.vpns[0])
    network = cluster.network
    return FederationConfig.model_validate(
        {
            "name": config.name,
            "mode": config.mode.value,
            "aws": {
                "region": config.aws.region,
                "cloudtrail": config.aws.cloudtrail.value,
                "vpc": network.model_dump(mode="json", include=set(VpcConfig.model_fields)),
                "vpn": {
                    "vgw_asn": network.vgw_asn,
                    "customer_gateway": site.customer_gateway.model_dump(mode="json"),
                    "ike_versions": list(vpn.ike_versions),
                },
            },
            "eks": cluster.model_dump(mode="json", include=set(EksConfig.model_fields)),
            "onprem": site.model_dump(mode="json", include=set(OnPremConfig.model_fields)),
            "federation": {
                **config.federation.model_dump(
                    mode="json", exclude={"eks_rcc_name", "onprem_rcc_name"}
                ),
                # Each RCC is named after the cluster it points at (the mesh's names).
                "eks_rcc_name": site.name,
                "onprem_rcc_name": cluster.name,
            },
            "reconcile": config.reconcile.model_dump(mode="json"),
        }
    )
