"""federation.yaml in its new form: one federation of N clusters, and its topology.

A cluster is an EKS cluster in its own VPC (kind ``eks``) or an on-prem site (kind
``onprem``) with VPNs to the VPCs it reaches. Each cluster's ``name`` is the name of the
RemoteClusterConfiguration (RCC) that points at it on every peer. ``links`` declares VPC
peerings between EKS clusters and routes between sites outside AWS; ``topology`` chooses the
pairs (full mesh by default). The sections are today's sub-models, subclassed or imported from
fedkeeper.schema, so a field added there carries over here. ``fedkeeper.config.FederationConfig``
is this module's :class:`MeshConfig`.

This module is pure: it imports neither boto3, kubernetes nor Powertools.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from fedkeeper.errors import ConfigError
from fedkeeper.schema import (
    _DNS_LABEL,
    AwsConfig,
    CloudTrailMode,
    CustomerGatewayConfig,
    EksConfig,
    FederationSettings,
    IkeVersion,
    Mode,
    OnPremConfig,
    ReconcileConfig,
    TwoClusterConfig,
    VpcConfig,
    VpnConfig,
    _ikev2_only,
    _Model,
)
from fedkeeper.topology.facts import DEFAULT_VGW_ASN, MeshFacts, read_facts
from fedkeeper.topology.rules import PathNamer, advertised_prefixes, federation_problems, same_path

IPv4Net = ipaddress.IPv4Network
ClusterPair = tuple[str, str]
T = TypeVar("T")
_ACCOUNT_ID = re.compile(r"\d{12}")
# The validation context key through which a legacy file's paths reach the model's rules.
PATH_NAMER = "fedkeeper.path_namer"


def _reused(check: Callable[[T], T]) -> Callable[[T], T]:
    """One of config.py's validators as a plain function of the value. (Given the bound
    classmethod itself, pydantic would call it with the value and a ValidationInfo.)"""

    def validate(value: T) -> T:
        return check(value)

    return validate


DnsLabel = Annotated[str, AfterValidator(_reused(OnPremConfig._name))]


def _account(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            f'write the account id in quotes, e.g. "{value:012d}" (YAML reads an unquoted '
            "number as an integer and drops leading zeros)"
        )
    if isinstance(value, str) and value.strip() and not _ACCOUNT_ID.fullmatch(value.strip()):
        raise ValueError(f"{value!r} is not a 12-digit AWS account id")
    return value


def _optional_region(value: str) -> str:
    return AwsConfig._region(value) if value else value


class MeshAwsConfig(_Model):
    """The ``aws`` section: the one region and account every network is in."""

    region: str = Field(description="AWS region of every network, e.g. eu-west-1")
    account: str = Field("", description="12-digit AWS account id (optional)")
    cloudtrail: CloudTrailMode = Field(
        CloudTrailMode.CREATE,
        description="create: deploy a write-only management-events trail; existing: rely "
        "on a trail that already covers the region",
    )

    _region_check = field_validator("region")(_reused(AwsConfig._region))
    _account_check = field_validator("account", mode="before")(_account)


class NetworkConfig(VpcConfig):
    """An EKS cluster's VPC (today's aws.vpc) with its VGW's ASN and, optionally, where it is."""

    vgw_asn: int = Field(
        DEFAULT_VGW_ASN, description="Amazon-side ASN of the VPC's virtual private gateway"
    )
    region: str = Field("", description="Region of the VPC; must equal aws.region for now")
    account: str = Field("", description="Account of the VPC; must equal aws.account for now")

    _vgw_asn_check = field_validator("vgw_asn")(_reused(VpnConfig._vgw_asn))
    _region_check = field_validator("region")(_optional_region)
    _account_check = field_validator("account", mode="before")(_account)


class SiteVpnConfig(_Model):
    """One VPN connection from a site to an EKS cluster's VPC (its VGW)."""

    to: str = Field(description="Name of the EKS cluster whose VPC this VPN reaches")
    ike_versions: list[IkeVersion] = Field(
        default_factory=_ikev2_only,
        description="IKE versions the VPN tunnels accept (ikev2; add ikev1 only for a router "
        "that lacks IKEv2)",
    )

    _ike_check = field_validator("ike_versions")(_reused(VpnConfig._ike))


class _Member(_Model):
    """What every cluster of the federation has: a name that is a DNS label."""

    name: str = Field(description="DNS label; the name of the RCC pointing at this cluster")

    _name_check = field_validator("name")(_reused(OnPremConfig._name))

    @model_validator(mode="before")
    @classmethod
    def _cluster_name_defaults_to_name(cls, data: Any) -> Any:
        # Only a valid name is copied, so a bad name is reported once, under `name`.
        name = data.get("name") if isinstance(data, dict) else None
        if isinstance(name, str) and "cluster_name" not in data:
            name = name.strip()
            if _DNS_LABEL.fullmatch(name) and len(name) <= 63:
                return {**data, "cluster_name": name}
        return data


class EksCluster(_Member, EksConfig):
    """An EKS cluster in its own VPC (today's eks section plus aws.vpc and the VGW's ASN)."""

    kind: Literal["eks"]
    cluster_name: str = Field("", description="The EKS cluster's own name (default: name)")
    network: NetworkConfig


class OnPremCluster(_Member, OnPremConfig):
    """An on-prem cluster, a site, with its customer gateway and VPNs to the VPCs it reaches."""

    kind: Literal["onprem"]
    cluster_name: str = Field(
        "", description="The cluster's own name in the kubeconfigs fedkeeper writes (default: name)"
    )
    customer_gateway: CustomerGatewayConfig
    vpns: list[SiteVpnConfig]

    @field_validator("vpns")
    @classmethod
    def _reaches_aws(cls, v: list[SiteVpnConfig]) -> list[SiteVpnConfig]:
        if not v:
            raise ValueError(
                "is empty; list the VPN to at least one EKS cluster's VPC (fedkeeper reaches a "
                "site's API server, and the site reaches AWS, over a VPN)"
            )
        return v


ClusterConfig = Annotated[EksCluster | OnPremCluster, Field(discriminator="kind")]


class LinksConfig(_Model):
    """Links besides the sites' VPNs."""

    peerings: list[ClusterPair] = Field(
        default_factory=list, description="VPC peerings, each [eks-a, eks-b]"
    )
    site_routes: list[ClusterPair] = Field(
        default_factory=list,
        description="Site pairs your own network routes between, each [site-a, site-b]",
    )


class TopologyConfig(_Model):
    """Which pairs of clusters federate."""

    pairs: list[ClusterPair] | None = Field(
        None, description="all (None): every pair, a full mesh; or a list of [a, b] pairs"
    )
    exclude: list[ClusterPair] = Field(
        default_factory=list, description="[a, b] pairs left out of the chosen ones"
    )

    @field_validator("pairs", mode="before")
    @classmethod
    def _all_or_list(cls, v: Any) -> Any:
        if v == "all":
            return None
        if not isinstance(v, list):
            raise ValueError(
                f"is {v!r}; write all (a full mesh) or a list of [a, b] pairs of cluster names"
            )
        return v

    @property
    def full_mesh(self) -> bool:
        """Whether every pair of clusters federates (``pairs: all``)."""
        return self.pairs is None


class MeshFederationSettings(FederationSettings):
    """Today's federation settings; each RCC is named after its cluster's ``name`` instead."""

    eks_rcc_name: str = Field("", exclude=True)
    onprem_rcc_name: str = Field("", exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _no_rcc_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            named = [k for k in ("eks_rcc_name", "onprem_rcc_name") if k in data]
            if named:
                raise ValueError(
                    "\n".join(
                        f"federation.{k}: is not a key of the clusters: form, where each RCC "
                        "is named after the cluster it points at; remove it and set that "
                        "cluster's name instead"
                        for k in named
                    )
                )
        return data


@dataclass(frozen=True)
class VpnConnection:
    """One Site-to-Site VPN: from ``site`` to the VPC (VGW) of the EKS cluster ``eks``."""

    site: str
    eks: str
    ike_versions: tuple[IkeVersion, ...]


class MeshConfig(_Model):
    """The whole of federation.yaml in its new form, with the topology the engine reads."""

    name: str = Field(description="Naming prefix for every resource (account-agnostic)")
    mode: Mode = Mode.APPLY
    aws: MeshAwsConfig
    clusters: list[ClusterConfig]
    links: LinksConfig = Field(default_factory=LinksConfig)
    topology: TopologyConfig = Field(default_factory=TopologyConfig)
    departed: list[DnsLabel] = Field(
        default_factory=list,
        description="Clusters removed from clusters whose objects fedkeeper removes",
    )
    federation: MeshFederationSettings = Field(default_factory=MeshFederationSettings)
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)

    _name_check = field_validator("name")(_reused(TwoClusterConfig._name))

    @field_validator("clusters")
    @classmethod
    def _some(cls, v: list[ClusterConfig]) -> list[ClusterConfig]:
        if not v:
            raise ValueError("is empty; list the clusters of the federation (at least two)")
        return v

    @model_validator(mode="after")
    def _federation_rules(self, info: ValidationInfo) -> MeshConfig:
        where: PathNamer = (info.context or {}).get(PATH_NAMER, same_path)
        problems = federation_problems(self.facts, where)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @cached_property
    def facts(self) -> MeshFacts:
        """The topology as plain facts (read once; the model is immutable)."""
        return read_facts(self.model_dump())

    @property
    def federation_tag(self) -> tuple[str, str]:
        """The tag that marks AWS resources of this federation (for discovery)."""
        return ("fedkeeper:federation", self.name)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy, with its facts read again (pydantic copies the cached ones along)."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("facts", None)
        return copied

    # The topology the engine reads. Names are the clusters' `name`s.

    def cluster(self, name: str) -> EksCluster | OnPremCluster:
        """The cluster called ``name`` (KeyError if none is)."""
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(name)

    def names(self) -> list[str]:
        """Every cluster's name, in file order."""
        return [c.name for c in self.clusters]

    def eks_clusters(self) -> list[EksCluster]:
        """The EKS clusters, in file order."""
        return [c for c in self.clusters if isinstance(c, EksCluster)]

    def sites(self) -> list[OnPremCluster]:
        """The on-prem clusters, in file order."""
        return [c for c in self.clusters if isinstance(c, OnPremCluster)]

    def pairs(self) -> list[tuple[str, str]]:
        """The directed pairs (L, R), sorted: L holds one RCC, named R, that points at R."""
        return sorted(pair for a, b in self.facts.unordered_pairs() for pair in ((a, b), (b, a)))

    def peers(self, name: str) -> list[str]:
        """The clusters ``name`` federates with (holds an RCC for), sorted."""
        return [r for left, r in self.pairs() if left == name]

    def routable(self, a: str, b: str) -> bool:
        """Whether pod IPs can travel between ``a`` and ``b`` over the declared links."""
        return self.facts.route_between(a, b) is not None

    def vpns(self) -> list[VpnConnection]:
        """Every VPN connection, in file order (by site, then as the site lists them)."""
        return [
            VpnConnection(site.name, vpn.to, tuple(vpn.ike_versions))
            for site in self.sites()
            for vpn in site.vpns
        ]

    def sites_of(self, eks: str) -> list[OnPremCluster]:
        """The sites with a VPN to the VPC of the EKS cluster ``eks``, in file order."""
        return [s for s in self.sites() if any(v.to == eks for v in s.vpns)]

    def peerings(self) -> list[tuple[str, str]]:
        """The VPC peerings, each as (a, b) with a < b, sorted."""
        return sorted({(min(a, b), max(a, b)) for a, b in self.links.peerings})

    def peered_with(self, eks: str) -> list[str]:
        """The EKS clusters whose VPCs are peered with the VPC of ``eks``, sorted."""
        return sorted({b if a == eks else a for a, b in self.peerings() if eks in (a, b)})

    def cidrs_of(self, name: str) -> list[IPv4Net]:
        """What a peer's pools must cover for ``name``: its VPC CIDR, or a site's host and
        pod CIDRs (service IPs never leave their cluster)."""
        cluster = self.cluster(name)
        if isinstance(cluster, EksCluster):
            return [cluster.network.cidr]
        return [*cluster.host_cidrs, *cluster.pod_cidrs]

    def peer_cidrs(self, name: str) -> list[IPv4Net]:
        """Every CIDR of every peer of ``name``: what a NATing ``name``'s pools must cover."""
        return list(dict.fromkeys(c for peer in self.peers(name) for c in self.cidrs_of(peer)))

    def vpn_prefixes(self, site: str) -> list[IPv4Net]:
        """The prefixes each VPN of ``site`` carries from its customer gateway."""
        return advertised_prefixes(self.facts.by_name()[site])

    def propagated_prefixes(self, eks: str) -> list[IPv4Net]:
        """The routes the VGW of ``eks`` propagates into each of its VPC's route tables."""
        return list(
            dict.fromkeys(p for site in self.sites_of(eks) for p in self.vpn_prefixes(site.name))
        )

    def peering_routes(self, eks: str) -> list[tuple[str, IPv4Net]]:
        """The (peer, CIDR) routes each route table of ``eks``'s VPC needs via a peering."""
        return [(peer, cidr) for peer in self.peered_with(eks) for cidr in self.cidrs_of(peer)]

    # Today's engine federates one EKS cluster with one site: these name them, and refuse a
    # file with more (the per-cluster engine replaces them).

    def sole_eks(self) -> EksCluster:
        """The federation's one EKS cluster; ConfigError when it has more than one."""
        self.require_two_clusters()
        return self.eks_clusters()[0]

    def sole_site(self) -> OnPremCluster:
        """The federation's one on-prem site; ConfigError when it has more than one."""
        self.require_two_clusters()
        return self.sites()[0]

    def require_two_clusters(self) -> None:
        """ConfigError unless the federation is one EKS cluster and one site: what the
        engine (plan, apply, status, demo, watch, the Lambdas) runs for now."""
        eks, sites = self.eks_clusters(), self.sites()
        if len(eks) == 1 and len(sites) == 1:
            return
        raise ConfigError(
            [
                f"clusters: lists {_counted(eks, 'EKS cluster')} and {_counted(sites, 'site')}; "
                "fedkeeper's engine (plan, apply, status, demo, watch and the Lambdas) runs one "
                "EKS cluster with one on-prem site for now, and its N-cluster engine is not "
                "wired yet: `fedkeeper validate` and `fedkeeper config migrate` read this file; "
                "to run the engine, list one EKS cluster and one site"
            ]
        )


def _counted(clusters: list[EksCluster] | list[OnPremCluster], what: str) -> str:
    names = ", ".join(c.name for c in clusters)
    return f"{len(clusters)} {what}{'' if len(clusters) == 1 else 's'} ({names or 'none'})"
