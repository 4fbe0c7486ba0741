"""The CDK app of fedkeeper: the stacks of one federation, built from one federation.yaml.

Per EKS cluster: ``network`` (its VPC, VGW, propagation) ← ``cluster`` (EKS, add-ons, nodes,
RBAC) ← ``calico`` (the tigera-operator release, RBAC in its namespaces). Per on-prem site
in a mesh: ``site`` (its customer gateway and one VPN per VPC it reaches) after the networks;
``peerings`` (the VPC peerings and their routes) after the networks; and one ``automation``
(Lambdas, rules, alarms, trail) in the home network, after all of them. References flow one
way only; a failed Helm release rolls back only a ``calico`` stack.

The home EKS cluster (the first) keeps the stack names a two-cluster federation always had
(``<name>-network``, ``<name>-cluster``, ``<name>-calico``); every other EKS cluster's are
``<name>-<cluster>-network`` etc. A two-cluster federation (one EKS cluster, one site) keeps
its VPN in the network stack, so its templates are the ones it always had.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from fedkeeper.config import IPv4Net
from fedkeeper.topology import MeshConfig
from stacks.automation import RUNTIME as LAMBDA_RUNTIME
from stacks.automation import AutomationStack, WatchedVpn
from stacks.bundling import SKIP_DEPS_CONTEXT, LambdaBundle, skip_deps_requested
from stacks.calico import CalicoStack
from stacks.cluster import ClusterStack
from stacks.cluster_view import cluster_view
from stacks.compliance import add_compliance_checks
from stacks.network import NetworkStack, SiteLink
from stacks.peering import PeeringStack
from stacks.site import SiteStack

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class FederationStacks:
    """The stacks of one federation; each mapping by cluster name, in file order."""

    home: str
    networks: dict[str, NetworkStack]
    clusters: dict[str, ClusterStack]
    calicos: dict[str, CalicoStack]
    sites: dict[str, SiteStack]
    peerings: PeeringStack | None
    automation: AutomationStack

    @property
    def network(self) -> NetworkStack:
        """The home network's stack."""
        return self.networks[self.home]

    @property
    def cluster(self) -> ClusterStack:
        """The home EKS cluster's stack."""
        return self.clusters[self.home]

    @property
    def calico(self) -> CalicoStack:
        """The home EKS cluster's calico stack."""
        return self.calicos[self.home]

    def all(self) -> list[cdk.Stack]:
        """Every stack, in an order ``cdk deploy`` may follow (each after what it uses)."""
        return [
            *self.networks.values(),
            *self.sites.values(),
            *([self.peerings] if self.peerings else []),
            *self.clusters.values(),
            *self.calicos.values(),
            self.automation,
        ]


def two_cluster_layout(config: MeshConfig) -> bool:
    """One EKS cluster and one site: the VPN stays in the network stack, as it always was."""
    return len(config.eks_clusters()) == 1 and len(config.sites()) == 1


def home_network(config: MeshConfig) -> str:
    """The EKS cluster whose VPC holds the automation: the first one."""
    return config.eks_clusters()[0].name


def stack_prefix(config: MeshConfig, eks: str) -> str:
    """The prefix of an EKS cluster's stack names: the federation's name for the home
    cluster (the names a two-cluster federation always had), ``<name>-<cluster>`` else."""
    return config.name if eks == home_network(config) else f"{config.name}-{eks}"


def feature_flags(project_root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The context of cdk.json, so ``python app.py`` synthesizes what ``cdk synth`` does."""
    path = project_root / "cdk.json"
    if not path.is_file():
        return {}
    context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    return dict(context)


def build_stacks(
    app: cdk.App,
    config: MeshConfig,
    config_file: Path,
    project_root: Path = PROJECT_ROOT,
) -> FederationStacks:
    """Add every stack of ``config`` to ``app``."""
    # Account-agnostic unless the CDK CLI knows the account; the region is the config's.
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=config.aws.region)
    skip_deps = skip_deps_requested(app.node.try_get_context(SKIP_DEPS_CONTEXT))
    # One code asset for every function (the automation's and the calico installers).
    code_bundle = LambdaBundle(
        project_root=project_root,
        config_file=config_file,
        python_version=LAMBDA_RUNTIME.name.removeprefix("python"),
        skip_deps=skip_deps,
    )
    home = home_network(config)
    two_cluster = two_cluster_layout(config)
    names = [c.name for c in config.eks_clusters()]

    networks: dict[str, NetworkStack] = {}
    for eks in config.eks_clusters():
        prefix = stack_prefix(config, eks.name)
        site_link = None
        if two_cluster:
            (site,) = config.sites()
            site_link = SiteLink(site.customer_gateway, site.vpns[0].ike_versions)
        networks[eks.name] = NetworkStack(
            app,
            f"{prefix}-network",
            network=eks.network,
            admitted=admitted_cidrs(config, eks.name),
            vpn=site_link,
            env=env,
            description=f"fedkeeper {prefix}: VPC, Site-to-Site VPN (BGP), route propagation"
            if site_link
            else f"fedkeeper {prefix}: VPC, VGW (ASN {eks.network.vgw_asn}), route propagation",
        )
    sites: dict[str, SiteStack] = {}
    if not two_cluster:
        for site in config.sites():
            sites[site.name] = SiteStack(
                app,
                f"{config.name}-{site.name}-site",
                site=site,
                networks=networks,
                env=env,
                description=f"fedkeeper {config.name}: site {site.name}, its customer gateway "
                "and Site-to-Site VPNs (BGP)",
            )
    peerings = None
    if config.peerings():
        peerings = PeeringStack(
            app,
            f"{config.name}-peerings",
            peerings=config.peerings(),
            networks=networks,
            cidrs={name: config.cidrs_of(name) for name in names},
            env=env,
            description=f"fedkeeper {config.name}: VPC peerings and their routes",
        )

    clusters: dict[str, ClusterStack] = {}
    calicos: dict[str, CalicoStack] = {}
    for eks in config.eks_clusters():
        prefix = stack_prefix(config, eks.name)
        view = cluster_view(config, eks.name)
        clusters[eks.name] = ClusterStack(
            app,
            f"{prefix}-cluster",
            config=view,
            network=networks[eks.name],
            # The automation's one role, made by the home cluster stack, has an access
            # entry on every cluster.
            reconciler_role=None if eks.name == home else clusters[home].reconciler_role,
            env=env,
            description=f"fedkeeper {prefix}: EKS with external SNAT and Calico policy-only",
        )
        calicos[eks.name] = CalicoStack(
            app,
            f"{prefix}-calico",
            config=view,
            config_dir=config_file.parent,
            cluster=clusters[eks.name],
            code_bundle=code_bundle,
            env=env,
            description=f"fedkeeper {prefix}: Calico Enterprise (tigera-operator) policy-only",
        )

    # Every VPN, the first site's VPN to the home network first (the Lambdas' own).
    if two_cluster:
        vpn_ids = {home: [(networks[home].vpn_connection_id(), "")]}
    else:
        vpn_ids = {
            name: [
                (sites[s.name].vpn_connections[name].ref, f"{s.name}-{name}")
                for s in config.sites_of(name)
            ]
            for name in names
        }
    watched = [
        WatchedVpn(vpn_id, label) for name in names for vpn_id, label in vpn_ids.get(name, [])
    ]
    automation = AutomationStack(
        app,
        f"{config.name}-automation",
        config=cluster_view(config, home),
        config_file=config_file,
        project_root=project_root,
        networks=list(networks.values()),
        clusters=list(clusters.values()),
        sites=config.sites(),
        vpns=watched,
        rule_networks=[
            networks[name].federation_network(vpn_id)
            for name in names
            for vpn_id in [v for v, _ in vpn_ids.get(name, [])] or [""]
        ],
        skip_deps=skip_deps,
        env=env,
        description=f"fedkeeper {config.name}: drift detection and repair",
    )
    for cluster in clusters.values():
        # The functions act on every cluster: each access entry exists before they run.
        automation.add_stack_dependency(cluster)
    stacks = FederationStacks(home, networks, clusters, calicos, sites, peerings, automation)
    tag_key, tag_value = automation.config.federation_tag
    for stack in stacks.all():
        # fedkeeper finds the VPCs, VGWs, VPNs and route tables by this tag.
        cdk.Tags.of(stack).add(tag_key, tag_value)
    return stacks


def admitted_cidrs(config: MeshConfig, eks: str) -> list[tuple[IPv4Net, str]]:
    """What the worker security group of ``eks``'s VPC admits: the host and pod CIDRs of each
    site with a VPN to it, and the CIDRs of the peered VPCs."""
    admitted = [
        (cidr, f"on-prem {kind} CIDR {cidr} over the VPN")
        for site in config.sites_of(eks)
        for kind, cidrs in (("host", site.host_cidrs), ("pod", site.pod_cidrs))
        for cidr in cidrs
    ]
    admitted += [
        (cidr, f"VPC CIDR {cidr} of {peer} over the peering")
        for peer, cidr in config.peering_routes(eks)
    ]
    return admitted


__all__ = [
    "FederationStacks",
    "add_compliance_checks",
    "admitted_cidrs",
    "build_stacks",
    "feature_flags",
    "home_network",
    "stack_prefix",
    "two_cluster_layout",
]
