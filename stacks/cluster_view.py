"""One EKS cluster of the federation as the two-cluster federation its per-cluster code reads.

The RBAC manifests (:mod:`fedkeeper.rbac`), the Calico installer's RBAC
(:mod:`fedkeeper.calico_install`) and the EventBridge rules (:mod:`fedkeeper.events`) still
read a federation of one EKS cluster and one site (``sole_eks``/``sole_site``). The stacks hand
them, per EKS cluster, the view of that cluster with the first site it federates with. A
two-cluster federation is its own view, so its templates stay what they were.

This is the one place that narrows the mesh: once the per-cluster code reads every peer, this
module goes.
"""

from __future__ import annotations

from fedkeeper.config import FederationConfig
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
    """The federation of the EKS cluster ``eks`` and :func:`view_site`'s site alone."""
    cluster = config.cluster(eks)
    if not isinstance(cluster, EksCluster):
        raise ValueError(f"clusters: {eks} is not an EKS cluster (kind: eks)")
    site = view_site(config, eks)
    if len(config.clusters) == 2:
        return config  # a two-cluster federation is its own view
    vpns = [v for v in site.vpns if v.to == eks] or site.vpns[:1]
    return FederationConfig.model_validate(
        {
            **config.model_dump(mode="json", exclude={"clusters", "links", "topology", "departed"}),
            "clusters": [
                cluster.model_dump(mode="json"),
                {**site.model_dump(mode="json"), "vpns": [v.model_dump(mode="json") for v in vpns]},
            ],
        }
    )
