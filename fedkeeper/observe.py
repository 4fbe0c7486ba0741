"""Observation: what each invariant reads, through the adapters, before its pure plan.

Each runner reads what its invariant manages afresh (level-triggered), hands the
observation to the pure module in :mod:`fedkeeper.invariants`, and returns the Plan. Reads
that several invariants share go through ``Run.cached`` so a full reconcile makes them once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fedkeeper.errors import FedkeeperError, PermanentError
from fedkeeper.invariants import Plan
from fedkeeper.invariants.checks import (
    ChecksObservation,
    ControllerState,
    federated_services_enabled,
    plan_checks,
)
from fedkeeper.invariants.ippools import IpPoolsObservation, plan_ippools
from fedkeeper.invariants.rcc import (
    ACCESS_SECRET_ROLE,
    CONSUMER_LABEL,
    ROLE_LABEL,
    TYPHA_ACCESS,
    ClusterSide,
    MeshRccObservation,
    MeshSide,
    RccNames,
    RccObservation,
    access_secret_name,
    access_secret_ref,
    plan_mesh_rcc,
    plan_rcc,
)
from fedkeeper.invariants.routes import RoutesObservation, plan_routes
from fedkeeper.invariants.snat import (
    ADDON_NAME,
    DAEMONSET,
    DAEMONSET_NAMESPACE,
    SnatObservation,
    plan_snat,
)
from fedkeeper.invariants.vpn import VpnObservation, VpnVerdict, assess_vpn
from fedkeeper.model import (
    FEDERATION_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    Backend,
    Finding,
    Invariant,
    Result,
    RouteTable,
    Severity,
    VpnConnection,
)
from fedkeeper.run import Run, Runner
from fedkeeper.topology.model import OnPremCluster

if TYPE_CHECKING:
    from fedkeeper.adapters.kube import KubeCluster


def _no_vpc(run: Run, check: str) -> Plan:
    tag = "=".join(run.config.federation_tag)
    return Plan(
        findings=[
            Finding(
                Severity.ERROR,
                check,
                f"no VPC found (tag {tag}, or FEDKEEPER_VPC_ID); deploy the network stack",
            )
        ]
    )


def route_tables(run: Run, vpc_id: str) -> list[RouteTable]:
    tables: list[RouteTable] = run.cached(
        "route_tables", lambda: run.conns.aws.route_tables(vpc_id)
    )
    return tables


def vpn_connections(run: Run, vgw_id: str) -> list[VpnConnection]:
    only = run.conns.targets.vpn_connection_id
    conns: list[VpnConnection] = run.cached(
        "vpn_connections", lambda: run.conns.aws.vpn_connections(vgw_id, only)
    )
    return conns


def observe_routes(run: Run) -> RoutesObservation | None:
    vpc = run.vpc()
    if vpc is None:
        return None
    vgw = run.vgw_id(vpc.id)
    onprem = run.config.sole_site()
    return RoutesObservation(
        vpc_id=vpc.id,
        vgw_id=vgw,
        route_tables=route_tables(run, vpc.id),
        onprem_cidrs=[str(c) for c in (*onprem.host_cidrs, *onprem.pod_cidrs)],
    )


def run_routes(run: Run) -> Plan:
    if not is_two_clusters(run):
        return _per_network(run, _routes_of)
    obs = observe_routes(run)
    return plan_routes(obs) if obs else _no_vpc(run, "routes.vpc")


def _per_network(run: Run, plan_one: Callable[[Run, str], Plan]) -> Plan:
    """``plan_one`` for each EKS cluster's VPC, as one plan: a VPC that cannot be read is
    reported on its own, and the others are planned all the same."""
    out = Plan()
    for eks in run.config.eks_clusters():
        try:
            _add_plan(out, plan_one(run, eks.name))
        except FedkeeperError as exc:
            run.fail(Invariant.ROUTES, exc)
    return out


def _no_vpc_of(eks: str, check: str, tag: tuple[str, str]) -> Plan:
    return Plan(
        findings=[
            Finding(
                Severity.ERROR,
                check,
                f"{eks}: no VPC tagged {'='.join(tag)} includes its network.cidr; deploy its "
                "network stack",
            )
        ]
    )


def _routes_of(run: Run, eks: str) -> Plan:
    """Invariant 1 on the VPC of ``eks``: every site with a VPN to it, each prefix by site."""
    cfg = run.config
    vpc = run.vpc_of(eks)
    if vpc is None:
        return _no_vpc_of(eks, "routes.vpc", cfg.federation_tag)
    tables: list[RouteTable] = run.cached(
        f"route_tables:{vpc.id}", lambda: run.conns.aws.route_tables(vpc.id)
    )
    return plan_routes(
        RoutesObservation(
            vpc_id=vpc.id,
            vgw_id=run.vgw_of(vpc.id),
            route_tables=tables,
            onprem_cidrs=[],
            site_prefixes=[
                (s.name, str(p)) for s in cfg.sites_of(eks) for p in cfg.vpn_prefixes(s.name)
            ],
        )
    )


def observe_vpn(run: Run) -> VpnVerdict | None:
    vpc = run.vpc()
    if vpc is None:
        return None
    vgw = run.vgw_id(vpc.id)
    conns = vpn_connections(run, vgw) if vgw else []
    return assess_vpn(VpnObservation(vgw_id=vgw, connections=conns))


def _mesh_vpn(run: Run) -> Plan:
    """Each site's VPN to the home network's VGW (home: the first EKS cluster, where the
    automation runs and reaches every site): a site none of whose tunnels there is UP is cut
    off this run, and only its own work waits. A site's VPN is told apart from the others on
    the same VGW by its customer gateway's IP."""
    cfg = run.config
    home = cfg.eks_clusters()[0].name
    vpc = run.vpc_of(home)
    if vpc is None:
        return _no_vpc_of(home, "vpn.vpc", cfg.federation_tag)
    vgw = run.vgw_of(vpc.id)
    if vgw is None:
        return assess_vpn(VpnObservation(vgw_id=None, connections=[])).plan
    conns: list[VpnConnection] = run.cached(
        f"vpn_connections:{vgw}", lambda: run.conns.aws.vpn_connections(vgw)
    )
    gateway_ips: dict[str, str] = run.cached(
        "customer_gateways", run.conns.aws.customer_gateway_ips
    )
    plan = Plan()
    up = 0
    for site in cfg.sites():
        ip = str(site.customer_gateway.ip)
        own = [c for c in conns if gateway_ips.get(c.customer_gateway_id) == ip]
        verdict = assess_vpn(VpnObservation(vgw_id=vgw, connections=own))
        plan.findings += [
            replace(f, message=f"{site.name}: {f.message}") for f in verdict.plan.findings
        ]
        up += verdict.tunnels_up
        if not verdict.onprem_reachable:
            run.cut_off(
                site.name,
                f"no tunnel of its VPN to {home} ({vgw}) is up: {site.name} is unreachable",
            )
    run.report.tunnels_up = up
    return plan


def run_vpn(run: Run) -> Plan:
    if not is_two_clusters(run):
        return _mesh_vpn(run)
    verdict = observe_vpn(run)
    if verdict is None:
        return _no_vpc(run, "vpn.vpc")
    run.report.tunnels_up = verdict.tunnels_up
    if not verdict.onprem_reachable:
        run.cut_off(run.conns.site_name, "no VPN tunnel up: the on-prem cluster is unreachable")
    return verdict.plan


def run_snat(run: Run) -> Plan:
    if not is_two_clusters(run):
        return _per_cluster(
            run, Invariant.SNAT, [c.name for c in run.config.eks_clusters()], _snat_of
        )
    return _snat_of(run, run.conns.eks_name)


def _snat_of(run: Run, name: str) -> Plan:
    """External SNAT on EKS cluster ``name``: its vpc-cni add-on, else its aws-node."""
    cluster = run.conns.eks_cluster_name(name)
    addon = run.conns.aws.describe_addon(cluster, ADDON_NAME)
    try:
        ds = run.cluster(name).get("DaemonSet", DAEMONSET, DAEMONSET_NAMESPACE)
    except FedkeeperError as exc:
        if addon is None:
            raise  # self-managed CNI: the DaemonSet is all there is
        run.fail(Invariant.SNAT, exc)  # the add-on is still kept; aws-node checked later
        ds = None
    # An add-on update this run already applied: the re-read checks what it did.
    updated = [
        str(o.change.payload.get("resolve_conflicts"))
        for o in run.report.changes
        if o.change.invariant is Invariant.SNAT
        and o.change.kind == "Addon"
        and o.change.name == f"{cluster}/{ADDON_NAME}"
        and o.result is Result.APPLIED
    ]
    return plan_snat(
        SnatObservation(
            cluster=cluster,
            addon=addon,
            daemonset=ds,
            updated_with=updated[-1] if updated else None,
            backend=name,
        )
    )


def _calico_api_version(run: Run) -> str:
    api = run.config.federation.calico_api
    return f"{api.group}/{api.version}"


def onprem_pools(run: Run) -> list[dict[str, Any]]:
    pools: list[dict[str, Any]] = run.cached("onprem_pools", lambda: run.onprem().list("IPPool"))
    return pools


def ippools_observation(run: Run) -> IpPoolsObservation | None:
    """What invariant 3 reads; None when the VPC (or its CIDRs) cannot be found."""
    vpc = run.vpc()
    if vpc is None or not vpc.cidrs:
        return None
    return IpPoolsObservation(
        federation=run.config.name,
        api_version=_calico_api_version(run),
        vpc_cidrs=list(vpc.cidrs),
        pools=onprem_pools(run),
        policy=run.config.federation.disabled_pool_policy,
        onprem_ranges=onprem_ranges(run),
        backend=run.conns.site_name,
    )


def run_ippools(run: Run) -> Plan:
    if not is_two_clusters(run):
        return _per_cluster(
            run, Invariant.IPPOOLS, [s.name for s in run.config.sites()], _site_pools
        )
    obs = ippools_observation(run)
    return plan_ippools(obs) if obs else _no_vpc(run, "ippools.vpc")


def _site_pools(run: Run, site: str) -> Plan:
    """A site's pools in a mesh: they cover every CIDR of every peer it federates with."""
    cfg = run.config
    member = cfg.cluster(site)
    if not isinstance(member, OnPremCluster):
        raise PermanentError(f"{site}: not an on-prem site; only sites hold coverage pools")
    pools: list[dict[str, Any]] = run.cached(
        f"pools:{site}", lambda: run.cluster(site).list("IPPool")
    )
    return plan_ippools(
        IpPoolsObservation.of_peers(
            federation=cfg.name,
            api_version=_calico_api_version(run),
            site=site,
            peer_cidrs=[(p, str(c)) for p in cfg.peers(site) for c in cfg.cidrs_of(p)],
            pools=pools,
            policy=cfg.federation.disabled_pool_policy,
            site_ranges=_ranges_of(member),
        )
    )


def _per_cluster(
    run: Run, inv: Invariant, names: list[str], plan_one: Callable[[Run, str], Plan]
) -> Plan:
    """``plan_one`` for each cluster in ``names``, as one plan: a cluster that cannot be read
    is reported (or deferred) on its own, and the others are planned all the same."""
    out = Plan()
    for name in names:

        def plan(_cluster: KubeCluster, name: str = name) -> Plan:
            return plan_one(run, name)

        one: Plan | None = run.side(name, inv, plan)
        if one is not None:
            _add_plan(out, one)
    return out


def _add_plan(out: Plan, one: Plan) -> None:
    out.changes += one.changes
    out.findings += one.findings
    out.deferred += one.deferred
    out.settle = out.settle or one.settle


def onprem_ranges(run: Run) -> list[tuple[str, str]]:
    """The on-prem host, pod and service ranges a VPC CIDR must not overlap."""
    return _ranges_of(run.config.sole_site())


def _ranges_of(onprem: OnPremCluster) -> list[tuple[str, str]]:
    """A site's host, pod and service ranges, named, as the ippools planner reads them."""
    return [
        (f"{what} range", str(c))
        for what, cidrs in (
            ("host", onprem.host_cidrs),
            ("pod", onprem.pod_cidrs),
            ("service", onprem.service_cidrs),
        )
        for c in cidrs
    ]


def rcc_names(run: Run) -> RccNames:
    fed = run.config.federation
    return RccNames(
        federation=run.config.name,
        calico_api_version=_calico_api_version(run),
        remote_sa=fed.remote_service_account.name,
        remote_sa_namespace=fed.remote_service_account.namespace,
        access_namespace=fed.access_secret_namespace,
    )


def owned_secrets(cluster: KubeCluster, names: RccNames) -> list[dict[str, Any]]:
    """Every Secret this federation owns in the access namespace, in one list.

    It holds the access Secrets and, when the remote service account lives in that
    namespace (the default), its token Secret too: one list where two gets were made.
    """
    items = cluster.list(
        "Secret",
        names.access_namespace,
        label_selector=(
            f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{FEDERATION_LABEL}={names.federation}"
        ),
    )
    # A list's items are what a get returns, less kind and apiVersion.
    return [{"apiVersion": "v1", "kind": "Secret", **s} for s in items]


def _secret(
    cluster: KubeCluster, listed: list[dict[str, Any]], names: RccNames, name: str, namespace: str
) -> dict[str, Any] | None:
    """Secret ``namespace/name``: from the owned list when it is there, else read on its own
    (it may exist without this federation's labels, or in another namespace)."""
    if namespace == names.access_namespace:
        for s in listed:
            if _object_key(s)[1] == name:
                return s
    return cluster.get("Secret", name, namespace)


def _labels(obj: dict[str, Any]) -> dict[str, Any]:
    """An object's labels, whatever its metadata's shape (malformed: none)."""
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return labels if isinstance(labels, dict) else {}


def _cluster_side(
    cluster: KubeCluster,
    names: RccNames,
    *,
    backend: Backend,
    name: str,
    rcc_name: str,
    endpoint: str,
    ca_data: str | None,
) -> ClusterSide:
    sa, sa_ns, ns = names.remote_sa, names.remote_sa_namespace, names.access_namespace
    listed = owned_secrets(cluster, names)
    owned_access = [s for s in listed if _labels(s).get(ROLE_LABEL) == ACCESS_SECRET_ROLE]
    access = _secret(cluster, owned_access, names, access_secret_name(rcc_name), ns)
    rccs = cluster.list("RemoteClusterConfiguration")
    return ClusterSide(
        backend=backend,
        name=name,
        rcc_name=rcc_name,
        endpoint=endpoint,
        ca_data=ca_data,
        service_account=cluster.get("ServiceAccount", sa, sa_ns),
        token_secret=_secret(cluster, listed, names, sa, sa_ns),
        cluster_role=cluster.get("ClusterRole", sa),
        cluster_role_binding=cluster.get("ClusterRoleBinding", sa),
        typha_role=cluster.get("Role", TYPHA_ACCESS, ns),
        typha_binding=cluster.get("RoleBinding", TYPHA_ACCESS, ns),
        rccs=rccs,
        access_secret=access,
        owned_access_secrets=owned_access,
        rcc_secrets=rcc_secrets(cluster, rccs, [*owned_access, *([access] if access else [])]),
    )


def _object_key(obj: dict[str, Any]) -> tuple[str, str]:
    """(namespace, name) of an object read from a cluster, whatever its metadata's shape."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def rcc_secrets(
    cluster: KubeCluster, rccs: list[dict[str, Any]], known: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The Secrets the RCCs' clusterAccessSecret refer to, by "namespace/name".

    A Secret fedkeeper may not read (outside the namespaces it manages) is left out: the RCC
    then counts as pointing nowhere known.
    """
    out = {"/".join(_object_key(s)): s for s in known}
    for rcc in rccs:
        ref = access_secret_ref(rcc)
        if ref is None or not ref[0] or f"{ref[0]}/{ref[1]}" in out:
            continue
        try:
            secret = cluster.get("Secret", ref[1], ref[0])
        except PermanentError:
            continue
        if secret is not None:
            out[f"{ref[0]}/{ref[1]}"] = secret
    return out


def rcc_observation(run: Run) -> RccObservation:
    """What invariant 4 reads on both clusters (on-prem None, and deferred, when cut off)."""
    names = rcc_names(run)
    cfg = run.config

    def eks_side(cluster: KubeCluster) -> ClusterSide:
        info = run.conns.eks_cluster()
        ca = info.get("certificateAuthority")
        return _cluster_side(
            cluster,
            names,
            backend=run.conns.eks_name,
            name=cfg.sole_eks().cluster_name,
            rcc_name=cfg.sole_site().name,  # the RCC on EKS is named after the site it reads
            endpoint=str(info.get("endpoint", "")),
            ca_data=ca.get("data") if isinstance(ca, dict) else None,
        )

    def onprem_side(cluster: KubeCluster) -> ClusterSide:
        return _cluster_side(
            cluster,
            names,
            backend=run.conns.site_name,
            name=cfg.sole_site().cluster_name,
            rcc_name=cfg.sole_eks().name,  # and the site's after the EKS cluster
            endpoint=cfg.sole_site().api_endpoint,
            ca_data=None,
        )

    # Each side on its own: one cluster failing leaves the other's work (and AWS) going.
    eks_name, site_name = run.conns.eks_name, run.conns.site_name
    eks: ClusterSide | None = run.side(eks_name, Invariant.RCC, eks_side)
    onprem: ClusterSide | None = run.side(site_name, Invariant.RCC, onprem_side)
    if eks is None and onprem is None:
        raise (
            run.guard.down.get(eks_name)
            or run.guard.down.get(site_name)
            or PermanentError("rcc: neither cluster could be read")
        )
    return RccObservation(names=names, eks=eks, onprem=onprem, backends=(eks_name, site_name))


def is_two_clusters(run: Run) -> bool:
    """One EKS cluster and one site: the federation today's two-cluster observers read."""
    return len(run.config.eks_clusters()) == 1 and len(run.config.sites()) == 1


def _endpoint_and_ca(run: Run, name: str) -> tuple[str, str | None]:
    """How peers reach cluster ``name``'s API server, and its CA (None: the token's)."""
    member = run.config.cluster(name)
    if isinstance(member, OnPremCluster):
        return member.api_endpoint, None
    info = run.conns.eks_cluster(name)
    ca = info.get("certificateAuthority")
    return str(info.get("endpoint", "")), ca.get("data") if isinstance(ca, dict) else None


def mesh_side_of(run: Run, name: str, names: RccNames) -> MeshSide:
    """What cluster ``name`` holds for invariant 4, for all its pairs at once.

    Label-selected lists and gets by fixed name: the calls are the same however many peers
    the cluster has (an access Secret missing from the owned list is read by name, once, only
    until fedkeeper owns it).
    """
    cluster = run.cluster(name)
    sa, sa_ns, ns = names.remote_sa, names.remote_sa_namespace, names.access_namespace
    listed = owned_secrets(cluster, names)
    if sa_ns != ns:
        listed += [
            {"apiVersion": "v1", "kind": "Secret", **s}
            for s in cluster.list(
                "Secret",
                sa_ns,
                label_selector=(
                    f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{FEDERATION_LABEL}={names.federation}"
                ),
            )
        ]
    owned_access = [s for s in listed if _labels(s).get(ROLE_LABEL) == ACCESS_SECRET_ROLE]
    access = {_object_key(s)[1]: s for s in owned_access if _object_key(s)[0] == ns}
    for peer in run.config.peers(name):
        secret_name = access_secret_name(peer)
        if secret_name not in access:
            found = cluster.get("Secret", secret_name, ns)
            if found is not None:
                access[secret_name] = found
    tokens = [s for s in listed if _object_key(s)[0] == sa_ns and CONSUMER_LABEL in _labels(s)]
    legacy = _secret(cluster, listed, names, sa, sa_ns)  # a token from before the mesh
    if legacy is not None and legacy not in tokens:
        tokens.append(legacy)
    rccs = cluster.list("RemoteClusterConfiguration")
    endpoint, ca_data = _endpoint_and_ca(run, name)
    return MeshSide(
        cluster_name=run.config.cluster(name).cluster_name,
        endpoint=endpoint,
        ca_data=ca_data,
        service_account=cluster.get("ServiceAccount", sa, sa_ns),
        cluster_role=cluster.get("ClusterRole", sa),
        cluster_role_binding=cluster.get("ClusterRoleBinding", sa),
        typha_role=cluster.get("Role", TYPHA_ACCESS, ns),
        typha_binding=cluster.get("RoleBinding", TYPHA_ACCESS, ns),
        token_secrets=tokens,
        rccs=rccs,
        access_secrets=access,
        owned_access_secrets=owned_access,
        rcc_secrets=rcc_secrets(cluster, rccs, [*owned_access, *access.values()]),
    )


def mesh_rcc_observation(run: Run) -> MeshRccObservation:
    """What invariant 4 reads on every cluster of a mesh (None for one that cannot be read:
    its pairs wait, nothing of it is pruned)."""
    names = rcc_names(run)
    clusters: dict[str, MeshSide | None] = {}
    for name in run.config.names():

        def read(_cluster: KubeCluster, name: str = name) -> MeshSide:
            return mesh_side_of(run, name, names)

        clusters[name] = run.side(name, Invariant.RCC, read)
    if all(side is None for side in clusters.values()):
        down = [run.guard.down.get(n) for n in clusters]
        raise next((e for e in down if e is not None), None) or PermanentError(
            "rcc: no cluster could be read"
        )
    return MeshRccObservation(
        names=names,
        clusters=clusters,
        pairs=run.config.pairs(),
        departed=frozenset(run.config.departed),
    )


def run_rcc(run: Run) -> Plan:
    if not is_two_clusters(run):
        return plan_mesh_rcc(mesh_rcc_observation(run))
    return plan_rcc(rcc_observation(run))


def _controllers(cluster: KubeCluster) -> ControllerState:
    config = ControllerState(cluster.get("KubeControllersConfiguration", "default"), None)
    if federated_services_enabled(config):
        return config  # the Deployment could only confirm what the configuration turns on
    deployment = cluster.get("Deployment", "calico-kube-controllers", "calico-system")
    return ControllerState(config.config, deployment)


def run_checks(run: Run) -> Plan:
    vpc = run.vpc()
    # On-prem pools are the ippools invariant's observation (fresh every run); the rest are
    # preconditions fedkeeper never writes, which the connections may keep (Preconditions).
    eks_seen: dict[str, Any] = (
        run.side(
            run.conns.eks_name,
            Invariant.CHECKS,
            lambda eks: run.precondition(
                "eks", lambda: {"pools": eks.list("IPPool"), "controllers": _controllers(eks)}
            ),
        )
        or {}
    )
    onprem_seen: dict[str, Any] = (
        run.side(
            run.conns.site_name,
            Invariant.CHECKS,
            lambda onprem: {
                "pools": onprem_pools(run),
                **run.precondition(
                    "onprem",
                    lambda: {
                        "peers": onprem.list("BGPPeer"),
                        "controllers": _controllers(onprem),
                    },
                ),
            },
        )
        or {}
    )
    try:
        trails = run.precondition("cloudtrail", run.conns.aws.trails)
    except FedkeeperError as exc:
        trails = None
        run.report.findings.append(
            Finding(Severity.INFO, "checks.cloudtrail", f"CloudTrail trails not read: {exc}")
        )
    obs = ChecksObservation(
        region=run.config.aws.region,
        trails=trails,
        schedule=run.config.reconcile.schedule,
        vpc_cidrs=list(vpc.cidrs) if vpc else [],
        eks_pools=eks_seen.get("pools"),
        onprem_pools=onprem_seen.get("pools"),
        onprem_bgp_peers=onprem_seen.get("peers"),
        eks_controllers=eks_seen.get("controllers"),
        onprem_controllers=onprem_seen.get("controllers"),
    )
    return plan_checks(obs)


RUNNERS: dict[Invariant, Runner] = {
    Invariant.VPN: run_vpn,
    Invariant.ROUTES: run_routes,
    Invariant.SNAT: run_snat,
    Invariant.IPPOOLS: run_ippools,
    Invariant.RCC: run_rcc,
    Invariant.CHECKS: run_checks,
}
