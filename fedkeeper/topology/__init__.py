"""One federation of N clusters: the config's new form, its validation and its topology.

``load_mesh``/``parse_mesh`` read federation.yaml in either form (today's two-cluster file is
converted) into a :class:`MeshConfig`, whose methods answer what the engine asks of the
topology: the clusters, the directed pairs, each cluster's peers, the links and the CIDRs and
prefixes each side must carry. ``render_mesh``/``migrate`` write the new form back as
commented YAML.

This package is pure: it imports neither boto3, kubernetes nor Powertools.
"""

from fedkeeper.topology.legacy import is_legacy, legacy_names, legacy_to_mesh
from fedkeeper.topology.load import load_mesh, mesh_warnings, parse_mesh
from fedkeeper.topology.migrate import migrate, render_mesh
from fedkeeper.topology.model import (
    ClusterConfig,
    EksCluster,
    LinksConfig,
    MeshAwsConfig,
    MeshConfig,
    MeshFederationSettings,
    NetworkConfig,
    OnPremCluster,
    SiteVpnConfig,
    TopologyConfig,
    VpnConnection,
)
from fedkeeper.topology.rules import (
    MAX_PROPAGATED_ROUTES_PER_ROUTE_TABLE,
    MAX_ROUTES_PER_VPN,
    MAX_VPNS_PER_VGW,
)

__all__ = [
    "MAX_PROPAGATED_ROUTES_PER_ROUTE_TABLE",
    "MAX_ROUTES_PER_VPN",
    "MAX_VPNS_PER_VGW",
    "ClusterConfig",
    "EksCluster",
    "LinksConfig",
    "MeshAwsConfig",
    "MeshConfig",
    "MeshFederationSettings",
    "NetworkConfig",
    "OnPremCluster",
    "SiteVpnConfig",
    "TopologyConfig",
    "VpnConnection",
    "is_legacy",
    "legacy_names",
    "legacy_to_mesh",
    "load_mesh",
    "mesh_warnings",
    "migrate",
    "parse_mesh",
    "render_mesh",
]
