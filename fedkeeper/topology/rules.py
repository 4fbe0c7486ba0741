"""The rules that span clusters: overlaps, AWS limits, links, pairs.

Each problem is one ``field.path: problem; fix`` line that names the clusters involved. The
rules read :class:`MeshFacts`, so they run on a whole valid model and on the parsable parts of
a broken file alike. ``where`` turns a new-form path into the path the user sees (a legacy
two-cluster file names its own fields).

AWS limits (Site-to-Site VPN quotas, docs.aws.amazon.com/vpn/latest/s2svpn/vpn-limits.html;
Amazon VPC quotas, docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html):

* "Dynamic routes advertised from a customer gateway device to a Site-to-Site VPN
  connection": 100, cannot be increased;
* "BGP advertised routes per route table (propagated routes)": 100, not adjustable;
* "Site-to-Site VPN connections per virtual private gateway": 10;
* VPN CloudHub: "You must use a unique BGP ASN for each customer gateway"
  (docs.aws.amazon.com/vpn/latest/s2svpn/VPN_CloudHub.html).

This module is pure: it imports neither boto3, kubernetes nor Powertools.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence

from fedkeeper.topology.facts import CidrFact, ClusterFact, Kind, MeshFacts, PairFact

IPv4Net = ipaddress.IPv4Network
PathNamer = Callable[[str], str]

MAX_VPNS_PER_VGW = 10
MAX_ROUTES_PER_VPN = 100
MAX_PROPAGATED_ROUTES_PER_ROUTE_TABLE = 100

ONE_REGION = (
    "fedkeeper runs a federation in one region for now (another region needs its own "
    "event rules and functions, and inter-region peering routes, which are not built yet)"
)
ONE_ACCOUNT = (
    "fedkeeper runs a federation in one account for now (another account needs "
    "cross-account roles for the functions and cross-account peering acceptance, which are "
    "not built yet)"
)


def same_path(path: str) -> str:
    """The identity path namer (a new-form file names its own paths)."""
    return path


def overlapping(nets: Sequence[IPv4Net]) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of the networks that share an address, sorted.

    Two CIDR blocks either nest or are disjoint. Sorted by first address (the larger block
    first), each block overlaps exactly the blocks still open when it starts: a chain of
    blocks each containing the next.
    """
    order = sorted(range(len(nets)), key=lambda i: (nets[i].network_address, nets[i].prefixlen))
    still_open: list[int] = []
    found: list[tuple[int, int]] = []
    for i in order:
        while still_open and nets[still_open[-1]].broadcast_address < nets[i].network_address:
            still_open.pop()
        found += [(min(i, j), max(i, j)) for j in still_open]
        still_open.append(i)
    return sorted(found)


def may_overlap(a: CidrFact, b: CidrFact) -> bool:
    """Whether two CIDRs may share addresses: only two different clusters' service ranges.

    A peer never sends to another cluster's service IPs. A RemoteClusterConfiguration makes
    Typha read the remote cluster's workload endpoints, host endpoints and profiles, never its
    Services (docs.tigera.io, RemoteClusterConfiguration reference), and a federated Service's
    endpoints are the backing pods' IPs (docs.tigera.io, "Configure federated services").
    Each cluster resolves its own service IPs on its own nodes, and fedkeeper expects no
    service prefix over a VPN. So two sites may keep the common 10.96.0.0/12. Everything
    else in the federation must be disjoint, service ranges included, because a site's
    service range would capture traffic to a peer's pods, hosts or VPC.
    """
    return a.role == "service" and b.role == "service" and a.cluster != b.cluster


def federation_problems(facts: MeshFacts, where: PathNamer = same_path) -> list[str]:
    """Every problem across the federation's clusters, in a stable order."""
    return list(
        dict.fromkeys(
            [
                *_name_problems(facts, where),
                *_placement_problems(facts, where),
                *_cidr_problems(facts, where),
                *_vpn_problems(facts, where),
                *_asn_problems(facts, where),
                *_route_limit_problems(facts, where),
                *_link_problems(facts.peerings, "eks", facts, where),
                *_link_problems(facts.site_routes, "onprem", facts, where),
                *_peering_overlap_problems(facts, where),
                *_topology_problems(facts, where),
                *_departed_problems(facts, where),
            ]
        )
    )


def _name_problems(facts: MeshFacts, where: PathNamer) -> Iterator[str]:
    first: dict[str, ClusterFact] = {}
    for c in facts.clusters:
        if c.name is None:
            continue
        if c.name in first:
            yield (
                f"{where(c.path + '.name')}: {c.name!r} is also "
                f"{where(first[c.name].path + '.name')}; give each cluster its own name (it "
                "names the RCC that points at the cluster on every peer)"
            )
        first.setdefault(c.name, c)
    if len(facts.clusters) == 1 and facts.clusters[0].name is not None:
        yield (
            f"clusters: lists only {facts.clusters[0].name}; a federation joins at least two "
            "clusters: add the clusters it federates with"
        )


def _placement_problems(facts: MeshFacts, where: PathNamer) -> Iterator[str]:
    """One region and one account: a network that names its own must name the federation's."""
    account, named_by = facts.account, "aws.account"
    for c in facts.clusters:
        if c.kind != "eks":
            continue
        if c.region and facts.region and c.region != facts.region:
            yield (
                f"{where(c.path + '.network.region')}: the network of {c.label()} is in "
                f"{c.region} but aws.region is {facts.region}; write {facts.region} or leave "
                f"it out: {ONE_REGION}"
            )
        if c.account and account and c.account != account:
            yield (
                f"{where(c.path + '.network.account')}: the network of {c.label()} is in "
                f"account {c.account} but {named_by} is {account}; write {account} or leave "
                f"it out: {ONE_ACCOUNT}"
            )
        elif c.account and not account:
            account, named_by = c.account, where(c.path + ".network.account")


def _cidr_problems(facts: MeshFacts, where: PathNamer) -> Iterator[str]:
    cidrs = [cidr for c in facts.clusters for cidr in c.cidrs]
    for i, j in overlapping([c.net for c in cidrs]):
        a, b = cidrs[i], cidrs[j]
        if may_overlap(a, b):
            continue
        if a.cluster == b.cluster:
            yield (
                f"{where(b.path)}: {b.net} overlaps {where(a.path)} {a.net}; the host, pod "
                f"and service CIDRs of {a.cluster} must be disjoint"
            )
        else:
            yield (
                f"{where(b.path)}: the {b.role} CIDR {b.net} of {b.cluster} overlaps the "
                f"{a.role} CIDR {a.net} of {a.cluster} ({where(a.path)}); pod IPs cross the "
                "federation without NAT, so no two clusters' ranges may overlap: choose "
                "ranges that overlap no other cluster's"
            )


def _vpn_problems(facts: MeshFacts, where: PathNamer) -> Iterator[str]:
    kinds = facts.kinds()
    vpcs = [name for name, kind in kinds.items() if kind == "eks"]
    seen: set[tuple[str, str]] = set()
    for v in facts.vpns:
        if kinds.get(v.to) != "eks":
            what = "is an on-prem cluster" if v.to in kinds else "names no cluster"
            yield (
                f"{where(v.path + '.to')}: {v.to!r} {what}; a VPN from {v.site} reaches the "
                f"VPC of an EKS cluster: name one of {', '.join(vpcs) or '(none configured)'}"
            )
        elif (v.site, v.to) in seen:
            yield (
                f"{where(v.path + '.to')}: {v.site} lists its VPN to {v.to} twice; list each "
                "VPC once"
            )
        seen.add((v.site, v.to))
    by_name = facts.by_name()
    for vpc in vpcs:
        sites = facts.sites_of(vpc)
        if len(sites) > MAX_VPNS_PER_VGW:
            yield (
                f"{where(by_name[vpc].path + '.network')}: {len(sites)} sites have a VPN to "
                f"the VGW of {vpc} ({', '.join(sites)}); a virtual private gateway takes "
                f"{MAX_VPNS_PER_VGW} Site-to-Site VPN connections: move some of these sites' "
                "VPNs to another EKS cluster's VPC"
            )


def _asn_problems(facts: MeshFacts, where: PathNamer) -> Iterator[str]:
    """eBGP needs different ASNs on each side; VPN CloudHub a unique ASN per site."""
    by_name = facts.by_name()
    shared: dict[tuple[str, str], list[str]] = defaultdict(list)
    for vpc in (n for n, k in facts.kinds().items() if k == "eks"):
        vgw = by_name[vpc]
        sites = [by_name[s] for s in facts.sites_of(vpc) if s in by_name]
        for i, site in enumerate(sites):
            if site.cgw_asn is not None and site.cgw_asn == vgw.vgw_asn:
                yield (
                    f"{where(site.path + '.customer_gateway.bgp_asn')}: the ASN {site.cgw_asn} "
                    f"of {site.label()} equals the ASN of the VGW of {vpc} "
                    f"({where(vgw.path + '.network.vgw_asn')}); eBGP over the VPN needs a "
                    "different ASN on each side: change one"
                )
            for other in sites[:i]:
                if site.cgw_asn is not None and site.cgw_asn == other.cgw_asn:
                    shared[(other.label(), site.label())].append(vpc)
    for (first, second), vpcs in shared.items():
        site = by_name[second]
        yield (
            f"{where(site.path + '.customer_gateway.bgp_asn')}: {second} has the ASN "
            f"{site.cgw_asn} of {first}, and both have a VPN to the VGW of {', '.join(vpcs)}; "
            f"VPN CloudHub needs a unique BGP ASN for each customer gateway: give {second} "
            "its own"
        )


def advertised_prefixes(cluster: ClusterFact) -> list[IPv4Net]:
    """What a site's customer gateway advertises over each of its VPNs: host and pod CIDRs."""
    return list(dict.fromkeys(c.net for c in cluster.cidrs if c.role in ("host", "pod")))


def _route_limit_problems(facts: MeshFacts, where: PathNamer) -> Iterator[str]:
    by_name = facts.by_name()
    for name, kind in facts.kinds().items():
        cluster = by_name[name]
        if kind == "onprem" and facts.vpcs_of(name):
            count = len(advertised_prefixes(cluster))
            if count > MAX_ROUTES_PER_VPN:
                yield (
                    f"{where(cluster.path)}: {name} would advertise {count} prefixes (its "
                    f"host and pod CIDRs) over each of its VPNs; a VPN connection accepts "
                    f"{MAX_ROUTES_PER_VPN} routes from the customer gateway (a hard AWS "
                    "limit): summarise them into fewer, larger CIDRs"
                )
        if kind == "eks":
            counts = {
                s: len(advertised_prefixes(by_name[s]))
                for s in facts.sites_of(name)
                if s in by_name
            }
            total = sum(counts.values())
            if total > MAX_PROPAGATED_ROUTES_PER_ROUTE_TABLE:
                detail = ", ".join(f"{s}: {n}" for s, n in counts.items())
                yield (
                    f"{where(cluster.path + '.network')}: the route tables of {name} would "
                    f"receive {total} propagated routes from its VGW ({detail}); a route "
                    f"table takes {MAX_PROPAGATED_ROUTES_PER_ROUTE_TABLE} propagated routes (a "
                    "hard AWS limit): summarise the sites' CIDRs, or move a site's VPN to "
                    "another EKS cluster's VPC"
                )


def _pair_problem(p: PairFact, kinds: dict[str, Kind], what: str) -> str | None:
    """Why a ``[a, b]`` entry is malformed, or None."""
    for name in (p.a, p.b):
        if name not in kinds:
            return f"{name!r} names no cluster; name two of {', '.join(kinds) or '(none)'}"
    if p.a == p.b:
        return f"pairs {p.a} with itself; {what} joins two different clusters"
    return None


def _link_problems(
    links: tuple[PairFact, ...], kind: Kind, facts: MeshFacts, where: PathNamer
) -> Iterator[str]:
    """links.peerings join two EKS clusters; links.site_routes two sites."""
    kinds = facts.kinds()
    what = "a VPC peering" if kind == "eks" else "a site route"
    first: dict[frozenset[str], PairFact] = {}
    for p in links:
        problem = _pair_problem(p, kinds, what)
        if problem is None:
            wrong = [n for n in (p.a, p.b) if kinds[n] != kind]
            if wrong and kind == "eks":
                problem = (
                    f"{wrong[0]} is an on-prem cluster; a VPC peering joins the VPCs of two "
                    f"EKS clusters (a site reaches a VPC over a VPN: the vpns of {wrong[0]})"
                )
            elif wrong:
                problem = (
                    f"{wrong[0]} is an EKS cluster; links.site_routes lists two sites your "
                    "own network routes between (an EKS cluster reaches a site over the "
                    "site's VPN, another EKS cluster over links.peerings)"
                )
            elif p.key() in first:
                problem = f"repeats {first[p.key()].path} ({p.a} ↔ {p.b}); list each pair once"
        if problem is not None:
            yield f"{where(p.path)}: {problem}"
        first.setdefault(p.key(), p)


def _peering_overlap_problems(facts: MeshFacts, where: PathNamer) -> Iterator[str]:
    """AWS refuses to peer VPCs whose CIDRs overlap."""
    by_name = facts.by_name()
    for p in facts.peerings:
        a, b = by_name.get(p.a), by_name.get(p.b)
        if a is None or b is None or a is b or a.kind != "eks" or b.kind != "eks":
            continue
        for ca in a.cidrs:
            for cb in b.cidrs:
                if ca.net.overlaps(cb.net):
                    yield (
                        f"{where(p.path)}: the VPCs of {p.a} ({ca.net}) and {p.b} ({cb.net}) "
                        "overlap, and AWS peers only VPCs whose CIDRs do not overlap: give "
                        "one of them another CIDR"
                    )


def _topology_problems(facts: MeshFacts, where: PathNamer) -> Iterator[str]:
    kinds = facts.kinds()
    for entries in (facts.chosen or (), facts.exclude):
        first: dict[frozenset[str], PairFact] = {}
        for p in entries:
            problem = _pair_problem(p, kinds, "a pair")
            if problem is None and p.key() in first:
                problem = f"repeats {first[p.key()].path} ({p.a} ↔ {p.b}); list each pair once"
            if problem is not None:
                yield f"{where(p.path)}: {problem}"
            first.setdefault(p.key(), p)
    pairs = facts.unordered_pairs()
    if not pairs and len(kinds) > 1:
        yield (
            "topology: chooses no pair of clusters; a federation needs at least one: check "
            "topology.pairs and topology.exclude"
        )
    chosen = {p.key(): p.path for p in facts.chosen or ()}
    for a, b in pairs:
        if facts.route_between(a, b) is None:
            path = chosen.get(frozenset((a, b)), "topology.pairs")
            yield (
                f"{where(path)}: {a} and {b} are paired but pod IPs cannot travel between "
                f"them: {facts.missing_route(a, b)}; or leave the pair out with "
                f"topology.exclude: [[{a}, {b}]]"
            )


def _departed_problems(facts: MeshFacts, where: PathNamer) -> Iterator[str]:
    configured = {c.name: c.path for c in facts.clusters if c.name is not None}
    seen: set[str] = set()
    for path, name in facts.departed:
        if name in configured:
            yield (
                f"{where(path)}: {name} is still configured ({where(configured[name])}); a "
                "departed cluster is one removed from clusters: remove it from one of the two"
            )
        elif name in seen:
            yield f"{where(path)}: lists {name} twice; list each departed cluster once"
        seen.add(name)


# Adjustable quotas, at their defaults (the two guides above): crossing one is a warning, so
# an account whose quotas were raised still deploys.
DEFAULT_VPCS_PER_REGION = 5
DEFAULT_VGWS_PER_REGION = 5
DEFAULT_VPNS_PER_REGION = 50
DEFAULT_CGWS_PER_REGION = 50
DEFAULT_PEERINGS_PER_VPC = 50


def quota_warnings(facts: MeshFacts, where: PathNamer = same_path) -> list[str]:
    """Where the federation needs more than an adjustable AWS quota's default."""
    kinds = facts.kinds()
    vpcs = [n for n, k in kinds.items() if k == "eks"]
    sites = [n for n, k in kinds.items() if k == "onprem"]
    warnings: list[str] = []
    if len(vpcs) > min(DEFAULT_VPCS_PER_REGION, DEFAULT_VGWS_PER_REGION):
        warnings.append(
            f"clusters: {len(vpcs)} EKS clusters need {len(vpcs)} VPCs and virtual private "
            f"gateways in one region; the default quotas are {DEFAULT_VPCS_PER_REGION} VPCs "
            f"and {DEFAULT_VGWS_PER_REGION} virtual private gateways per region (the default "
            "VPC counts too): request increases in Service Quotas before deploying"
        )
    if len(facts.vpns) > DEFAULT_VPNS_PER_REGION:
        warnings.append(
            f"clusters: the sites declare {len(facts.vpns)} VPN connections; the default "
            f"quota is {DEFAULT_VPNS_PER_REGION} Site-to-Site VPN connections per region: "
            "request an increase in Service Quotas before deploying"
        )
    if len(sites) > DEFAULT_CGWS_PER_REGION:
        warnings.append(
            f"clusters: {len(sites)} sites need {len(sites)} customer gateways; the default "
            f"quota is {DEFAULT_CGWS_PER_REGION} per region: request an increase in Service "
            "Quotas before deploying"
        )
    by_name = facts.by_name()
    for vpc in vpcs:
        peers = {p.b if p.a == vpc else p.a for p in facts.peerings if vpc in (p.a, p.b)}
        if len(peers) > DEFAULT_PEERINGS_PER_VPC:
            warnings.append(
                f"{where(by_name[vpc].path + '.network')}: the VPC of {vpc} has {len(peers)} "
                f"peerings; the default quota is {DEFAULT_PEERINGS_PER_VPC} active peerings per "
                "VPC (up to 125, with more routes per route table): request an increase"
            )
    return warnings
