"""The new form written out as commented YAML: ``fedkeeper config migrate`` and the example.

Every key gets a comment the first time it appears: from the table below, or else from its
field's description (so a field added to a shared sub-model is still explained).

This module is pure: it imports neither boto3, kubernetes nor Powertools.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel

from fedkeeper.schema import load_yaml
from fedkeeper.topology.load import parse_mesh
from fedkeeper.topology.model import MeshConfig, TopologyConfig

# Keys are paths with each list item as [kind] (a cluster) or [] (anything else).
COMMENTS: dict[str, str] = {
    "name": "Naming prefix for every AWS resource fedkeeper creates or discovers (tag "
    "fedkeeper:federation=<name>). Lower-case letters, digits and '-', at most 32 characters.",
    "mode": "apply: repair drift. plan: only report what would change (the kill switch; the "
    "FEDKEEPER_MODE environment variable overrides it).",
    "aws": "The one AWS account and region of every network (one of each for now).",
    "aws.region": "Region of every VPC, VPN and EKS cluster.",
    "aws.account": 'Optional 12-digit account id, quoted ("123456789012"). A network may name '
    "its own, which must be this one for now.",
    "aws.cloudtrail": "CloudTrail: EventBridge delivers API-call events (route and add-on "
    "changes) only while a trail with logging covers the region. create: deploy a write-only "
    "management-events trail (free as the account's first copy of management events; S3 "
    "storage only). existing: an organization or account trail already covers the region (a "
    "second copy of management events is billed).",
    "clusters": "The federated clusters. Each name is a DNS label, and the name of the "
    "RemoteClusterConfiguration (RCC) that points at that cluster on each of its peers.",
    "clusters[eks].name": "DNS label; the RCC name on every peer of this cluster.",
    "clusters[eks].kind": "eks: an EKS cluster (AWS VPC CNI, Calico policy-only) in its own VPC.",
    "clusters[eks].cluster_name": "The EKS cluster's own name (default: name).",
    "clusters[eks].kubernetes_version": "Kubernetes version (quoted): the newest in EKS "
    "standard support that fedkeeper's kubectl layer supports. `fedkeeper validate` warns "
    "once a version leaves standard support (extended support is billed per cluster hour).",
    "clusters[eks].node_group": "Managed node group in the private subnets.",
    "clusters[eks].node_group.name": "Node group name.",
    "clusters[eks].node_group.instance_types": "EC2 instance types of the nodes.",
    "clusters[eks].node_group.min_size": "Fewest nodes.",
    "clusters[eks].node_group.desired_size": "Nodes at creation.",
    "clusters[eks].node_group.max_size": "Most nodes.",
    "clusters[eks].calico": "Calico Enterprise in policy-only mode via the tigera-operator "
    "Helm chart.",
    "clusters[eks].calico.chart_repository": "Tigera's Helm repository (or your mirror).",
    "clusters[eks].calico.chart_version": "A chart version Tigera publishes.",
    "clusters[eks].calico.chart_file": "Air-gapped: the tigera-operator-<version>.tgz from "
    "`helm pull`, relative to this file; shipped as an S3 asset instead of pulling from "
    "chart_repository.",
    "clusters[eks].calico.values": "Extra chart values merged over fedkeeper's (not the "
    "Installation's provider, CNI, network or variant, which policy-only mode fixes).",
    "clusters[eks].calico.registry": "Image registry (with trailing slash).",
    "clusters[eks].calico.pull_secret_name": "The image pull Secret in tigera-operator.",
    "clusters[eks].calico.license_secret_name": "Secrets Manager secret holding the Calico "
    "Enterprise LicenseKey manifest.",
    "clusters[eks].network": "The cluster's VPC, with its virtual private gateway (VGW).",
    "clusters[eks].network.cidr": "Primary VPC CIDR. Must overlap no other range of the "
    "federation (VPC, host, pod or service CIDR).",
    "clusters[eks].network.az_count": "Availability zones; each gets one public and one "
    "private subnet (at least 2).",
    "clusters[eks].network.public_subnet_prefix": "Mask length of each public subnet (NAT "
    "gateways, load balancers).",
    "clusters[eks].network.private_subnet_prefix": "Mask length of each private subnet (nodes "
    "and pods: the VPC CNI gives pods VPC IPs).",
    "clusters[eks].network.nat_gateways": "NAT gateways (1 to az_count). With external SNAT, "
    "pods reach the internet via NAT.",
    "clusters[eks].network.vgw_asn": "Amazon-side ASN of the VGW (64512-65534 or "
    "4200000000-4294967294); must differ from each site's customer-gateway ASN.",
    "clusters[eks].network.region": 'Region of the VPC: "" or aws.region for now.',
    "clusters[eks].network.account": 'Account of the VPC: "" or aws.account for now.',
    "clusters[onprem].name": "DNS label; the RCC name on every peer of this site.",
    "clusters[onprem].kind": "onprem: an on-prem Calico cluster (a site) with VPNs to the VPCs "
    "it reaches.",
    "clusters[onprem].cluster_name": "The cluster's own name in the kubeconfigs fedkeeper "
    "writes for its peers (default: name).",
    "clusters[onprem].api_endpoint": "The site's API server, reached over its VPN from the "
    "Lambdas' private subnets.",
    "clusters[onprem].credentials_secret": "Secrets Manager secret holding the site's "
    "kubeconfig (a service-account token; see `fedkeeper onprem-bootstrap`).",
    "clusters[onprem].host_cidrs": "Node ranges; advertised over each VPN.",
    "clusters[onprem].pod_cidrs": "Pod ranges; advertised over each VPN.",
    "clusters[onprem].service_cidrs": "Service ranges: disjoint from every other range, "
    "except other clusters' service ranges (service IPs never leave their cluster).",
    "clusters[onprem].customer_gateway": "The site's VPN router.",
    "clusters[onprem].customer_gateway.ip": "Public IP address of the VPN router.",
    "clusters[onprem].customer_gateway.bgp_asn": "BGP ASN of the VPN router; differs from "
    "each VGW's ASN and from every site sharing a VGW with this one (VPN CloudHub).",
    "clusters[onprem].vpns": "The site's VPN connections, one per VPC it reaches (at most 10 "
    "per VGW).",
    "clusters[onprem].vpns[].to": "The EKS cluster whose VPC (VGW) this VPN reaches.",
    "clusters[onprem].vpns[].ike_versions": "IKE versions the tunnels accept. Add ikev1 only "
    "for a router that lacks IKEv2.",
    "links": "Links besides the sites' VPNs.",
    "links.peerings": "VPC peerings between EKS clusters, each [a, b]. Peering is not "
    "transitive: two EKS clusters federate only over a peering of their own.",
    "links.site_routes": "Site pairs your own network routes between, each [a, b]. Two sites "
    "with a VPN to one VGW need none (VPN CloudHub).",
    "topology": "Which clusters federate: each chosen pair holds one RCC on each side.",
    "topology.pairs": "all: every pair (a full mesh); or a list of [a, b] pairs.",
    "topology.exclude": "[a, b] pairs left out of the chosen ones.",
    "departed": "Clusters removed from clusters: fedkeeper deletes the objects it made for "
    "them on every reachable cluster.",
    "federation": "Settings shared by every cluster of the federation.",
    "federation.calico_api": "API group/version of Calico resources (served by the "
    "Calico/Tigera API server).",
    "federation.calico_api.group": "API group.",
    "federation.calico_api.version": "API version.",
    "federation.access_secret_namespace": "Namespace of each RCC's access Secret (Typha is "
    "granted read access there).",
    "federation.remote_service_account": "The ServiceAccount each cluster exposes to its "
    "peers' Typha.",
    "federation.remote_service_account.name": "Its name.",
    "federation.remote_service_account.namespace": "Its namespace.",
    "federation.disabled_pool_policy": "Disabled IP pools for every peer's CIDRs on a site: "
    "auto (when an enabled pool of the site does outgoing NAT), always, or never.",
    "reconcile": "The repair Lambda's schedule.",
    "reconcile.schedule": "How often it runs a full reconcile (EventBridge schedule expression).",
}
_FIRST_KEYS = ("name", "kind")
_WIDTH = 96


def _flow(value: Any) -> str:
    """A value as one line of YAML (flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31, sort_keys=False).strip()
    return text.removesuffix("\n...").strip()


class _Renderer:
    """Writes a model as block YAML, commenting each key path once."""

    def __init__(self) -> None:
        self.commented: set[str] = set()

    def comment(self, pattern: str, model: type[BaseModel], key: str, pad: str) -> list[str]:
        if pattern in self.commented:
            return []
        self.commented.add(pattern)
        text = COMMENTS.get(pattern) or model.model_fields[key].description
        if not text:
            return []
        return textwrap.wrap(
            text, _WIDTH - len(pad), initial_indent=f"{pad}# ", subsequent_indent=f"{pad}# "
        )

    @staticmethod
    def keys(model: BaseModel) -> list[str]:
        """The keys to write, name and kind first (the dump leaves excluded fields out)."""
        dumped = model.model_dump()
        return [k for k in _FIRST_KEYS if k in dumped] + [k for k in dumped if k not in _FIRST_KEYS]

    def key(self, model: BaseModel, key: str, pattern: str, indent: int) -> list[str]:
        """One key of a model, commented, with its value."""
        pad = " " * indent
        path = f"{pattern}.{key}" if pattern else key
        lines = self.comment(path, type(model), key, pad)
        value = getattr(model, key)
        if isinstance(model, TopologyConfig) and key == "pairs" and value is None:
            return [*lines, f"{pad}{key}: all"]
        if isinstance(value, BaseModel):
            return [*lines, f"{pad}{key}:", *self.model(value, path, indent + 2)]
        if isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
            items = [line for item in value for line in self.item(item, path, indent + 2)]
            return [*lines, f"{pad}{key}:", *items]
        return [*lines, f"{pad}{key}: {_flow(model.model_dump(mode='json', include={key})[key])}"]

    def model(self, model: BaseModel, pattern: str, indent: int) -> list[str]:
        """Every key of a model."""
        return [line for key in self.keys(model) for line in self.key(model, key, pattern, indent)]

    def item(self, item: BaseModel, pattern: str, indent: int) -> list[str]:
        """A list item: its keys two deeper, the first one behind the dash."""
        kind = getattr(item, "kind", "")
        lines = self.model(item, f"{pattern}[{kind}]", indent + 2)
        first = next(i for i, line in enumerate(lines) if not line.lstrip().startswith("#"))
        dash = [" " * indent + line.lstrip() for line in lines[:first]]
        return [*dash, " " * indent + "- " + lines[first].lstrip(), *lines[first + 1 :]]


def render_mesh(config: MeshConfig, header: str = "") -> str:
    """The config as commented new-form YAML (``header`` lines become the opening comment)."""
    renderer = _Renderer()
    opening = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    sections = ["\n".join(renderer.key(config, key, "", 0)) for key in renderer.keys(config)]
    return opening + ("\n" if opening else "") + "\n\n".join(sections) + "\n"


def migrate(data: Mapping[str, Any], source: str = "federation.yaml") -> str:
    """A federation.yaml (either form) as commented new-form YAML that loads back to the same
    MeshConfig; ConfigError (with the file's own paths) when the input is invalid."""
    config = parse_mesh(data, source)
    text = render_mesh(
        config,
        f"{source} in the clusters: form, written by `fedkeeper config migrate`.\n"
        "Every name is kept (each cluster's name is the RCC name its peers already hold), so\n"
        "fedkeeper changes nothing when it first runs with this file.",
    )
    if parse_mesh(load_yaml(text), "the migrated file") != config:
        raise RuntimeError("the migrated file does not load back to the same federation")
    return text
