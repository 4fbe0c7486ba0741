"""The federation's shape as plain facts: names, kinds, CIDRs, ASNs and links.

The facts are read tolerantly from a mapping, either a file's raw data or a validated model's
dump. Tolerance lets the rules across clusters run on a file whose other parts have errors.
Both the rules and the topology API read pairs and links through these facts, so the two
cannot disagree.

This module is pure: it imports neither boto3, kubernetes nor Powertools.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

from fedkeeper.schema import VpnConfig, _cidr

IPv4Net = ipaddress.IPv4Network
Kind = Literal["eks", "onprem"]
CidrRole = Literal["VPC", "host", "pod", "service"]

# The VGW's ASN when a network leaves it out: the same default as today's aws.vpn.vgw_asn.
DEFAULT_VGW_ASN: int = VpnConfig.model_fields["vgw_asn"].default
SITE_CIDR_FIELDS: tuple[tuple[str, CidrRole], ...] = (
    ("host_cidrs", "host"),
    ("pod_cidrs", "pod"),
    ("service_cidrs", "service"),
)


@dataclass(frozen=True)
class CidrFact:
    """One CIDR of one cluster, with the field path that declares it."""

    path: str
    net: IPv4Net
    cluster: str
    role: CidrRole


@dataclass(frozen=True)
class ClusterFact:
    """What the rules need of one entry of ``clusters``; None where it does not parse."""

    path: str
    name: str | None
    kind: Kind | None
    cidrs: tuple[CidrFact, ...]
    vgw_asn: int | None = None
    cgw_asn: int | None = None
    region: str = ""
    account: str = ""

    def label(self) -> str:
        """The cluster's name for messages (its path when it has no usable name)."""
        return self.name or self.path


@dataclass(frozen=True)
class VpnFact:
    """A VPN declared on a site: ``site`` has a VPN to the VPC of the EKS cluster ``to``."""

    path: str
    site: str
    to: str


@dataclass(frozen=True)
class PairFact:
    """A ``[a, b]`` entry of a list of cluster pairs (peerings, site routes, pairs, exclude)."""

    path: str
    a: str
    b: str

    def key(self) -> frozenset[str]:
        """The unordered pair."""
        return frozenset((self.a, self.b))


@dataclass(frozen=True)
class MeshFacts:
    """Everything the rules across clusters and the topology API read."""

    clusters: tuple[ClusterFact, ...]
    vpns: tuple[VpnFact, ...]
    peerings: tuple[PairFact, ...]
    site_routes: tuple[PairFact, ...]
    chosen: tuple[PairFact, ...] | None  # None: every pair (full mesh)
    exclude: tuple[PairFact, ...]
    departed: tuple[tuple[str, str], ...]  # (path, name)
    region: str | None
    account: str

    def kinds(self) -> dict[str, Kind]:
        """Each named cluster's kind, in file order (the first of a duplicated name wins)."""
        out: dict[str, Kind] = {}
        for c in self.clusters:
            if c.name is not None and c.kind is not None:
                out.setdefault(c.name, c.kind)
        return out

    def by_name(self) -> dict[str, ClusterFact]:
        """Each named cluster (the first of a duplicated name)."""
        out: dict[str, ClusterFact] = {}
        for c in self.clusters:
            if c.name is not None:
                out.setdefault(c.name, c)
        return out

    def sites_of(self, eks: str) -> list[str]:
        """The sites with a VPN to ``eks``'s VPC, in file order, each once."""
        return list(dict.fromkeys(v.site for v in self.vpns if v.to == eks))

    def vpcs_of(self, site: str) -> list[str]:
        """The EKS clusters whose VPCs ``site`` has a VPN to, in file order, each once."""
        kinds = self.kinds()
        return list(
            dict.fromkeys(v.to for v in self.vpns if v.site == site and kinds.get(v.to) == "eks")
        )

    def unordered_pairs(self) -> list[tuple[str, str]]:
        """The chosen pairs of distinct configured clusters, each as (a, b) with a < b, sorted."""
        kinds = self.kinds()
        if self.chosen is None:
            candidates = {frozenset(p) for p in combinations(kinds, 2)}
        else:
            candidates = {p.key() for p in self.chosen}
        excluded = {p.key() for p in self.exclude}
        pairs = [
            sorted(p) for p in candidates - excluded if len(p) == 2 and all(n in kinds for n in p)
        ]
        return sorted((a, b) for a, b in pairs)

    def route_between(self, a: str, b: str) -> str | None:
        """How pod IPs travel between ``a`` and ``b``, or None when nothing routes them.

        Site ↔ EKS needs the site's VPN to that cluster's VPC; EKS ↔ EKS a peering of their
        VPCs (peering is not transitive); site ↔ site two VPNs to one VGW (VPN CloudHub) or
        the operator's own route (``links.site_routes``).
        """
        kinds = self.kinds()
        ka, kb = kinds.get(a), kinds.get(b)
        if ka is None or kb is None or a == b:
            return None
        if ka == "eks" and kb == "eks":
            pair = frozenset((a, b))
            if any(p.key() == pair for p in self.peerings):
                return f"the VPC peering {a} ↔ {b}"
            return None
        if ka == "onprem" and kb == "onprem":
            if any(p.key() == frozenset((a, b)) for p in self.site_routes):
                return f"the site route {a} ↔ {b} (links.site_routes)"
            shared = [vpc for vpc in self.vpcs_of(a) if vpc in self.vpcs_of(b)]
            if shared:
                return f"VPN CloudHub on the VGW of {shared[0]}"
            return None
        site, eks = (a, b) if ka == "onprem" else (b, a)
        if eks in self.vpcs_of(site):
            return f"the VPN from {site} to the VPC of {eks}"
        return None

    def missing_route(self, a: str, b: str) -> str:
        """What would make ``a`` and ``b`` routable, for an error message."""
        kinds = self.kinds()
        ka, kb = kinds.get(a), kinds.get(b)
        if ka == "eks" and kb == "eks":
            return (
                f"no VPC peering joins {a} and {b} (add [{a}, {b}] to links.peerings; peering "
                "is not transitive)"
            )
        if ka == "onprem" and kb == "onprem":
            return (
                f"{a} and {b} have no VPN to a common VPC (VPN CloudHub) and links.site_routes "
                f"does not list [{a}, {b}] (add a VPN from both to one EKS cluster's VPC, or "
                "list the pair in links.site_routes if your own network routes between them)"
            )
        site, eks = (a, b) if ka == "onprem" else (b, a)
        return f"{site} has no VPN to the VPC of {eks} (add {{to: {eks}}} to the vpns of {site})"


def _get(data: Any, *keys: str) -> Any:
    cur = data
    for key in keys:
        cur = cur.get(key) if isinstance(cur, Mapping) else None
    return cur


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _net(value: Any) -> IPv4Net | None:
    try:
        return _cidr(value)
    except ValueError:
        return None


def _pairs(value: Any, path: str) -> tuple[PairFact, ...]:
    """The well-formed ``[a, b]`` entries of a list (the models report the malformed)."""
    if not isinstance(value, list | tuple):
        return ()
    out: list[PairFact] = []
    for i, entry in enumerate(value):
        if isinstance(entry, list | tuple) and len(entry) == 2:
            a, b = entry
            if isinstance(a, str) and isinstance(b, str):
                out.append(PairFact(f"{path}[{i}]", a.strip(), b.strip()))
    return tuple(out)


def _cluster(entry: Any, path: str) -> tuple[ClusterFact, list[VpnFact]]:
    name = _text(_get(entry, "name"))
    name = name.strip() if name is not None else None
    kind_value = _get(entry, "kind")
    kind: Kind | None = kind_value if kind_value in ("eks", "onprem") else None
    label = name or path
    cidrs: list[CidrFact] = []
    vpns: list[VpnFact] = []
    if kind == "eks":
        vpc = _net(_get(entry, "network", "cidr"))
        if vpc is not None:
            cidrs.append(CidrFact(f"{path}.network.cidr", vpc, label, "VPC"))
        asn = _get(entry, "network", "vgw_asn")
        return (
            ClusterFact(
                path,
                name,
                kind,
                tuple(cidrs),
                vgw_asn=DEFAULT_VGW_ASN if asn is None else _whole(asn),
                region=_text(_get(entry, "network", "region")) or "",
                account=_text(_get(entry, "network", "account")) or "",
            ),
            vpns,
        )
    if kind == "onprem":
        for field, role in SITE_CIDR_FIELDS:
            values = _get(entry, field)
            for i, value in enumerate(values if isinstance(values, list | tuple) else []):
                net = _net(value)
                if net is not None:
                    cidrs.append(CidrFact(f"{path}.{field}[{i}]", net, label, role))
        declared = _get(entry, "vpns")
        for i, vpn in enumerate(declared if isinstance(declared, list | tuple) else []):
            to = _text(_get(vpn, "to"))
            if name is not None and to is not None:
                vpns.append(VpnFact(f"{path}.vpns[{i}]", name, to.strip()))
        asn = _whole(_get(entry, "customer_gateway", "bgp_asn"))
        return ClusterFact(path, name, kind, tuple(cidrs), cgw_asn=asn), vpns
    return ClusterFact(path, name, None, ()), vpns


def read_facts(data: Mapping[str, Any]) -> MeshFacts:
    """The facts of a new-form mapping, using whatever parts of it parse."""
    clusters: list[ClusterFact] = []
    vpns: list[VpnFact] = []
    entries = data.get("clusters")
    for i, entry in enumerate(entries if isinstance(entries, list | tuple) else []):
        cluster, declared = _cluster(entry, f"clusters[{i}]")
        clusters.append(cluster)
        vpns += declared
    pairs = _get(data, "topology", "pairs")
    departed = data.get("departed")
    return MeshFacts(
        clusters=tuple(clusters),
        vpns=tuple(vpns),
        peerings=_pairs(_get(data, "links", "peerings"), "links.peerings"),
        site_routes=_pairs(_get(data, "links", "site_routes"), "links.site_routes"),
        chosen=_pairs(pairs, "topology.pairs") if isinstance(pairs, list | tuple) else None,
        exclude=_pairs(_get(data, "topology", "exclude"), "topology.exclude"),
        departed=tuple(
            (f"departed[{i}]", name.strip())
            for i, name in enumerate(departed if isinstance(departed, list | tuple) else [])
            if isinstance(name, str)
        ),
        region=_text(_get(data, "aws", "region")),
        account=_text(_get(data, "aws", "account")) or "",
    )
