"""What breaks in a federation of N clusters: the mesh scenarios' world mutations.

Each breaker changes the sandbox's world (or its config) exactly as its name says and nothing
else, as another actor would: an operator growing or shrinking the federation, someone
deleting an RCC, a VPN going down, a cluster re-issuing a token, a route removed. None runs
fedkeeper; the demo runs them, then the engine heals (the healing checks belong with the
engine for N clusters). Each returns a :class:`MeshBreak` saying what it touched.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedkeeper.invariants.rcc import CONSUMER_LABEL
from fedkeeper.sandbox.mesh_configs import departed, joined

if TYPE_CHECKING:
    from fedkeeper.sandbox.world import Sandbox


@dataclass(frozen=True)
class MeshBreak:
    """What one breaker did: its scenario, a sentence, and what it touched (``cluster/...``
    for Kubernetes objects, ``aws/...`` for AWS resources, a bare name for a cluster)."""

    scenario: str
    what: str
    touched: tuple[str, ...]


@dataclass(frozen=True)
class MeshScenario:
    """A mesh scenario: its name, what breaks, and what healing means (for the demo)."""

    name: str
    breaks: str
    heals: str


# In the demo's order: the joining cluster is the one that then leaves.
MESH_SCENARIOS = (
    MeshScenario(
        "pair-broken",
        "one directed pair breaks: its RCC deleted, or its access Secret's token corrupted",
        "that pair alone is repaired",
    ),
    MeshScenario(
        "token-rotated",
        "one cluster re-issues the token Secret it holds for one consumer",
        "only that consumer's access Secret is updated, once",
    ),
    MeshScenario(
        "site-vpn-down",
        "every tunnel of one site's VPNs goes DOWN (its API server cut off)",
        "only that site's pairs are deferred",
    ),
    MeshScenario(
        "peering-route-removed",
        "the route to a peer VPC through their peering is deleted from one route table",
        "that route alone is created again",
    ),
    MeshScenario(
        "cluster-joins",
        "an EKS cluster joins: the config grows by one cluster, peered with every EKS "
        "cluster, every site given a VPN to it",
        "exactly the new cluster's objects and its peers' RCCs and pools are written",
    ),
    MeshScenario(
        "cluster-leaves-unreachable",
        "a cluster leaves while its API server is down: removed from clusters, listed "
        "under departed",
        "its RCCs, tokens and pools go from every reachable cluster; nothing else is touched",
    ),
)


def join(sb: Sandbox) -> MeshBreak:
    """An EKS cluster joins (see :func:`fedkeeper.sandbox.mesh_configs.joined`)."""
    bigger, name = joined(sb.config)
    sb.grow(bigger)
    return MeshBreak("cluster-joins", f"{name} joined the federation", (name,))


def leave_unreachable(sb: Sandbox, name: str) -> MeshBreak:
    """``name`` leaves while unreachable: its API server stops answering, then the config
    drops it and lists it under ``departed``. Its objects on the others stay for fedkeeper
    to remove."""
    smaller = departed(sb.config, name)  # refused before anything changes
    sb.server(name).set_unreachable(True)
    sb.replace_config(smaller)
    return MeshBreak(
        "cluster-leaves-unreachable", f"{name} is unreachable and listed under departed", (name,)
    )


def _calico(sb: Sandbox) -> str:
    cal = sb.config.federation.calico_api
    return f"{cal.group}/{cal.version}"


def _rcc(sb: Sandbox, left: str, right: str) -> dict[str, Any]:
    rcc = sb.server(left).get_object(_calico(sb), "RemoteClusterConfiguration", right)
    if rcc is None:
        raise LookupError(
            f"{left} holds no RemoteClusterConfiguration {right}: the pair {left}→{right} is "
            "not set up (converge the sandbox first)"
        )
    return rcc


def break_pair(sb: Sandbox, left: str, right: str, *, how: str = "delete-rcc") -> MeshBreak:
    """The directed pair ``left``→``right`` breaks on ``left``: ``how`` is ``delete-rcc``
    (the RCC named ``right`` deleted) or ``corrupt-secret`` (its access Secret's token
    replaced by garbage)."""
    rcc = _rcc(sb, left, right)
    if how == "delete-rcc":
        sb.server(left).delete_object(_calico(sb), "RemoteClusterConfiguration", right)
        target = f"{left}/RemoteClusterConfiguration/{right}"
        return MeshBreak("pair-broken", f"deleted {target}", (target,))
    if how != "corrupt-secret":
        raise ValueError(f"how={how!r}: write delete-rcc or corrupt-secret")
    ref = rcc["spec"]["clusterAccessSecret"]
    namespace = ref.get("namespace") or sb.config.federation.access_secret_namespace

    def corrupt(secret: dict[str, Any]) -> None:
        secret.setdefault("data", {})["token"] = base64.b64encode(b"not-a-token").decode()

    sb.server(left).mutate("v1", "Secret", ref["name"], namespace, corrupt)
    target = f"{left}/Secret/{namespace}/{ref['name']}"
    return MeshBreak("pair-broken", f"corrupted the token in {target}", (target,))


def vpn_down(sb: Sandbox, site: str) -> MeshBreak:
    """Every tunnel of every VPN of ``site`` goes DOWN; its API server, reached over them, no
    longer answers. The other sites' VPNs (on the same VGWs too) stay UP."""
    vpns = sb.mesh_baseline.vpns_of(site)
    if not vpns:
        raise LookupError(f"{site} has no VPN in the sandbox (is it a site of the federation?)")
    for vpn in vpns:
        for ip in vpn.tunnel_outside_ips:
            sb.aws.set_tunnel(vpn.vpn_connection_id, ip, up=False)
    sb.server(site).set_unreachable(True)
    touched = tuple(f"aws/VpnConnection/{v.vpn_connection_id}" for v in vpns)
    return MeshBreak("site-vpn-down", f"every tunnel of {site}'s VPNs is DOWN", (*touched, site))


def vpn_up(sb: Sandbox, site: str) -> None:
    """Undo :func:`vpn_down`: the tunnels UP, the site's API server answering again."""
    for vpn in sb.mesh_baseline.vpns_of(site):
        for ip in vpn.tunnel_outside_ips:
            sb.aws.set_tunnel(vpn.vpn_connection_id, ip, up=True)
    sb.server(site).set_unreachable(False)


def token_secret_for(sb: Sandbox, cluster: str, consumer: str) -> tuple[str, str]:
    """(namespace, name) of the token Secret ``cluster`` issued for ``consumer``: the one
    labelled for that consumer, else a two-cluster deployment's single token Secret (named
    after the remote service account) when ``consumer`` is ``cluster``'s only peer."""
    sa = sb.config.federation.remote_service_account
    secrets = sb.server(cluster).list_objects("v1", "Secret", sa.namespace)
    for secret in secrets:
        if (secret["metadata"].get("labels") or {}).get(CONSUMER_LABEL) == consumer:
            return sa.namespace, str(secret["metadata"]["name"])
    if sb.config.peers(cluster) == [consumer] and any(
        s["metadata"]["name"] == sa.name for s in secrets
    ):
        return sa.namespace, sa.name
    raise LookupError(
        f"{cluster} holds no token Secret for {consumer} in {sa.namespace} (converge first)"
    )


def rotate_token(sb: Sandbox, cluster: str, consumer: str) -> MeshBreak:
    """``cluster`` re-issues the token it holds for ``consumer`` (the token controller
    writes a new one into the same Secret; the old one no longer authenticates)."""
    namespace, name = token_secret_for(sb, cluster, consumer)
    sb.server(cluster).rotate_token(namespace, name)
    target = f"{cluster}/Secret/{namespace}/{name}"
    return MeshBreak("token-rotated", f"re-issued {target} for {consumer}", (target,))


def remove_peering_route(sb: Sandbox, here: str, peer: str) -> MeshBreak:
    """The route to ``peer``'s VPC CIDR through their peering is deleted from the first
    private route table of ``here``'s VPC (the other tables, and ``peer``'s, keep theirs)."""
    key = (min(here, peer), max(here, peer))
    if key not in sb.mesh_baseline.peerings:
        raise LookupError(f"no peering between {here} and {peer} in the sandbox")
    table = sb.mesh_baseline.networks[here].vpc.private_route_table_ids[0]
    cidr = str(sb.config.cidrs_of(peer)[0])
    sb.aws_session().client("ec2").delete_route(RouteTableId=table, DestinationCidrBlock=cidr)
    target = f"aws/RouteTable/{table}/{cidr}"
    return MeshBreak("peering-route-removed", f"deleted the route {cidr} from {table}", (target,))
