"""Named faults the real world inflicts on a federation, and how the demo proves each repair.

A scenario breaks the sandbox through the emulated APIs (as an operator, an add-on update or
a network event would), names the EventBridge event AWS would emit, and says how to tell the
world is whole again. :func:`run_scenario` delivers that event through the deployed patterns,
then re-runs a full reconcile and counts the writes the emulators saw: a repaired federation
needs none.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from fedkeeper.calico_v3 import ippool_field
from fedkeeper.config import FederationConfig
from fedkeeper.events import tunnel_alarm_name
from fedkeeper.invariants.ippools import FEDERATION_LABEL, pool_name
from fedkeeper.invariants.rcc import ROLE_LABEL, TYPHA_ACCESS, access_secret_name
from fedkeeper.invariants.snat import ADDON_NAME, EXTERNAL_SNAT, daemonset_env
from fedkeeper.model import MANAGED_BY_LABEL, Report, Result, Scope
from fedkeeper.sandbox import event_factory as ev

if TYPE_CHECKING:
    from fedkeeper.sandbox.world import Sandbox


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    inject: Callable[[Sandbox], object]
    event: Callable[[Sandbox], dict[str, Any]]
    verify: Callable[[Sandbox], bool]
    cleanup: Callable[[Sandbox], None] | None = None
    # Events delivered after the fault and before the main event (their Reports are kept).
    prelude: Callable[[Sandbox], list[Report]] | None = None
    # False when fedkeeper must refuse to write (e.g. a pool it does not own) and only report.
    expects_repair: bool = True
    # Instead of delivering ``event``: what the operator does (e.g. a manual invoke); its Report.
    act: Callable[[Sandbox], Report] | None = None
    # Drift inside a cluster: the watch function finds and repairs it (``event`` is what the
    # schedule would have delivered before the watch existed).
    watched: bool = False


@dataclass
class ScenarioResult:
    scenario: str
    description: str
    detected: bool
    repaired: bool
    converged: bool
    writes_on_rerun: int
    report: Report
    rerun: Report
    writes: int
    prelude: list[Report]
    trigger: str = ""  # what detected the drift: watch, cloudtrail, alarm, schedule, manual
    time_to_repair_s: float = 0.0  # drift written → repair written (modelled: see below)
    handler_s: float = 0.0  # the measured part: the handler's (or the watch's) own time
    modelled: bool = False  # time_to_repair_s adds a documented delivery latency
    latency_source: str = ""

    @property
    def ok(self) -> bool:
        return self.detected and self.repaired and self.converged and self.writes_on_rerun == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "detected": self.detected,
            "repaired": self.repaired,
            "converged": self.converged,
            "writes_on_rerun": self.writes_on_rerun,
            "trigger": self.trigger,
            "time_to_repair_s": round(self.time_to_repair_s, 3),
            "handler_s": round(self.handler_s, 3),
            "modelled": self.modelled,
            **({"latency_source": self.latency_source} if self.latency_source else {}),
            "report": self.report.to_dict(),
            **({"prelude": [r.to_dict() for r in self.prelude]} if self.prelude else {}),
        }


def _baseline(sb: Sandbox) -> Any:
    assert sb.baseline is not None, "sandbox not started"
    return sb.baseline


# --- routes ----------------------------------------------------------------------------------


def _disable_propagation(sb: Sandbox) -> None:
    b = _baseline(sb)
    sb.aws_session().client("ec2").disable_vgw_route_propagation(
        RouteTableId=b.private_route_table_ids[0], GatewayId=b.vgw_id
    )


def _propagation_event(sb: Sandbox) -> dict[str, Any]:
    b = _baseline(sb)
    return ev.cloudtrail(
        "ec2",
        "DisableVgwRoutePropagation",
        {"routeTableId": b.private_route_table_ids[0], "gatewayId": b.vgw_id},
        sb.config.aws.region,
    )


def _propagation_restored(sb: Sandbox) -> bool:
    b = _baseline(sb)
    return all(b.vgw_id in sb.aws.propagations(rt) for rt in b.private_route_table_ids)


SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    SCENARIOS[scenario.name] = scenario
    return scenario


register(
    Scenario(
        name="route-propagation-disabled",
        description="someone turns off VGW route propagation on a private route table",
        inject=_disable_propagation,
        event=_propagation_event,
        verify=_propagation_restored,
    )
)


# --- snat ----------------------------------------------------------------------------------


def _cluster(sb: Sandbox) -> str:
    return sb.config.sole_eks().cluster_name


def _aws_node(sb: Sandbox) -> dict[str, Any]:
    ds = sb.eks_server.get_object("apps/v1", "DaemonSet", "aws-node", "kube-system")
    assert ds is not None
    return ds


def _addon_snat(sb: Sandbox) -> str | None:
    addon = sb.aws.addon(_cluster(sb), ADDON_NAME) or {}
    values = json.loads(addon.get("configurationValues") or "{}")
    env = values.get("env") or {}
    return env.get(EXTERNAL_SNAT)


def _reset_addon(sb: Sandbox) -> None:
    # An add-on version update that loses configurationValues (aws/containers-roadmap#1415).
    sb.aws.reset_addon_configuration(_cluster(sb), ADDON_NAME, "{}")


def _addon_event(sb: Sandbox) -> dict[str, Any]:
    return ev.cloudtrail(
        "eks",
        "UpdateAddon",
        {
            "clusterName": _cluster(sb),
            "addonName": ADDON_NAME,
            "addonVersion": "v1.19.2-eksbuild.5",
            "resolveConflicts": "OVERWRITE",
        },
        sb.config.aws.region,
    )


def _snat_restored(sb: Sandbox) -> bool:
    return _addon_snat(sb) == "true" and daemonset_env(_aws_node(sb)) == "true"


register(
    Scenario(
        name="snat-reset-by-addon-update",
        description="a vpc-cni add-on update resets configurationValues; aws-node loses "
        "external SNAT",
        inject=_reset_addon,
        event=_addon_event,
        verify=_snat_restored,
    )
)


def _go_self_managed(sb: Sandbox) -> None:
    # The operator removed the managed add-on (keeping aws-node) and later re-applied the
    # upstream aws-k8s-cni.yaml, whose env has EXTERNALSNAT=false.
    sb.aws.delete_addon_state(_cluster(sb), ADDON_NAME)

    def reset(ds: dict[str, Any]) -> None:
        for c in ds["spec"]["template"]["spec"]["containers"]:
            if c["name"] == "aws-node":
                c["env"] = [
                    e if e["name"] != EXTERNAL_SNAT else {"name": EXTERNAL_SNAT, "value": "false"}
                    for e in c["env"]
                ]

    sb.eks_server.mutate("apps/v1", "DaemonSet", "aws-node", "kube-system", reset)


def _self_managed_restored(sb: Sandbox) -> bool:
    ds = _aws_node(sb)
    containers = {c["name"]: c for c in ds["spec"]["template"]["spec"]["containers"]}
    env = {e["name"] for e in containers["aws-node"]["env"]}
    return (
        daemonset_env(ds) == "true"
        and set(containers) == {"aws-node", "aws-eks-nodeagent"}
        and containers["aws-node"]["image"].endswith("amazon-k8s-cni:v1.19.2")
        and {"AWS_VPC_K8S_CNI_LOGLEVEL", "WARM_ENI_TARGET"} <= env
    )


def _restore_managed_addon(sb: Sandbox) -> None:
    sb.aws_session().client("eks").create_addon(
        clusterName=_cluster(sb),
        addonName=ADDON_NAME,
        configurationValues=json.dumps({"env": {EXTERNAL_SNAT: "true"}}),
    )


register(
    Scenario(
        name="snat-reset-self-managed",
        description="self-managed vpc-cni: re-applying the upstream manifest sets external "
        "SNAT back to false (found by the watch on aws-node)",
        inject=_go_self_managed,
        event=lambda sb: ev.scheduled(sb.config.aws.region),
        verify=_self_managed_restored,
        cleanup=_restore_managed_addon,
        watched=True,
    )
)


# --- ippools ---------------------------------------------------------------------------------

# The private ranges AWS lets a VPC add as secondary CIDRs, by the primary's range (EC2
# User Guide, "IPv4 CIDR block association restrictions"): another block of the primary's
# own RFC 1918 range, or 100.64.0.0/10 whatever the primary. /16 is the largest VPC CIDR.
_SHARED_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
_RFC1918 = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


def free_cidrs(config: FederationConfig, count: int = 2) -> list[str]:
    """``count`` CIDRs a VPC could add that overlap nothing the config names (the VPC, the
    on-prem host, pod and service CIDRs): the scenarios' extra VPC ranges, for any config.

    The search starts just after the VPC's CIDR in its own RFC 1918 range, so the example's
    10.100.0.0/16 gives 10.101.0.0/16 and 10.102.0.0/16.
    """
    vpc = config.sole_eks().network.cidr
    taken = [vpc, *(net for _, net in config.sole_site().all_cidrs())]
    ranges = [r for r in _RFC1918 if vpc.subnet_of(r)] + [_SHARED_SPACE]
    found: list[str] = []
    for space in ranges:
        prefix = 20 if space.prefixlen >= 16 else 16  # 192.168.0.0/16 holds /20s only
        blocks = list(space.subnets(new_prefix=prefix))
        start = next((i for i, b in enumerate(blocks) if b.overlaps(vpc)), -1) + 1
        for block in blocks[start:] + blocks[:start]:
            if not any(block.overlaps(t) for t in taken) and str(block) not in found:
                found.append(str(block))
                if len(found) == count:
                    return found
    raise ValueError(f"no {count} free CIDRs outside the config's ranges for the sandbox scenarios")


def _secondary(sb: Sandbox) -> str:
    return free_cidrs(sb.config)[0]


def _foreign(sb: Sandbox) -> str:
    return free_cidrs(sb.config)[1]


def _vpc_id(sb: Sandbox) -> str:
    return str(_baseline(sb).vpc_id)


def _calico(sb: Sandbox) -> str:
    api = sb.config.federation.calico_api
    return f"{api.group}/{api.version}"


def _pool(sb: Sandbox, cidr: str) -> dict[str, Any] | None:
    return sb.onprem_server.get_object(_calico(sb), "IPPool", pool_name(cidr))


def _associate(sb: Sandbox, cidr: str) -> None:
    sb.aws_session().client("ec2").associate_vpc_cidr_block(VpcId=_vpc_id(sb), CidrBlock=cidr)


def _disassociate(sb: Sandbox, cidr: str) -> None:
    ec2 = sb.aws_session().client("ec2")
    vpc = ec2.describe_vpcs(VpcIds=[_vpc_id(sb)])["Vpcs"][0]
    for assoc in vpc.get("CidrBlockAssociationSet", []):
        if assoc["CidrBlock"] == cidr and assoc["CidrBlockState"]["State"] == "associated":
            ec2.disassociate_vpc_cidr_block(AssociationId=assoc["AssociationId"])


def _cidr_event(name: str, cidr: Callable[[Sandbox], str]) -> Callable[[Sandbox], dict[str, Any]]:
    def event(sb: Sandbox) -> dict[str, Any]:
        params: dict[str, Any] = {"vpcId": _vpc_id(sb), "cidrBlock": cidr(sb)}
        if name == "DisassociateVpcCidrBlock":
            params = {"associationId": "vpc-cidr-assoc-0example"}
        return ev.cloudtrail("ec2", name, params, sb.config.aws.region)

    return event


def _good_pool(p: dict[str, Any] | None) -> bool:
    if p is None:
        return False
    spec = p["spec"]
    return ippool_field(spec, "disabled") is True and ippool_field(spec, "natOutgoing") is False


register(
    Scenario(
        name="vpc-secondary-cidr",
        description="the VPC gains a secondary CIDR (the first free /16 after the VPC's); "
        "on-prem would still NAT it",
        inject=lambda sb: _associate(sb, _secondary(sb)),
        event=_cidr_event("AssociateVpcCidrBlock", _secondary),
        verify=lambda sb: _good_pool(_pool(sb, _secondary(sb))),
    )
)


def _with_secondary_then_remove(sb: Sandbox) -> None:
    if _pool(sb, _secondary(sb)) is None:
        _associate(sb, _secondary(sb))
        sb.reconcile(["ippools"], "apply")
    _disassociate(sb, _secondary(sb))


register(
    Scenario(
        name="vpc-cidr-removed",
        description="the secondary CIDR is disassociated from the VPC; its owned pool must go",
        inject=_with_secondary_then_remove,
        event=_cidr_event("DisassociateVpcCidrBlock", _secondary),
        verify=lambda sb: _pool(sb, _secondary(sb)) is None,
    )
)


def _drift_pool(sb: Sandbox) -> None:
    def drift(p: dict[str, Any]) -> None:
        p["spec"]["natOutgoing"] = True
        p["spec"]["disabled"] = False

    cidr = str(sb.config.sole_eks().network.cidr)
    sb.onprem_server.mutate(_calico(sb), "IPPool", pool_name(cidr), None, drift)


register(
    Scenario(
        name="onprem-pool-drifted",
        description="someone edits fedkeeper's disabled pool on-prem: natOutgoing on, "
        "disabled off (found by the watch on IP pools)",
        inject=_drift_pool,
        event=lambda sb: ev.scheduled(sb.config.aws.region),
        verify=lambda sb: _good_pool(_pool(sb, str(sb.config.sole_eks().network.cidr))),
        watched=True,
    )
)


def _seed_foreign(sb: Sandbox) -> None:
    sb.onprem_server.seed(
        {
            "apiVersion": _calico(sb),
            "kind": "IPPool",
            "metadata": {"name": "team-b-aws-range"},
            "spec": {"cidr": _foreign(sb), "disabled": True, "natOutgoing": False},
        }
    )
    _associate(sb, _foreign(sb))


def _foreign_untouched(sb: Sandbox) -> bool:
    foreign = sb.onprem_server.get_object(_calico(sb), "IPPool", "team-b-aws-range")
    return (
        foreign is not None
        and foreign["spec"]["cidr"] == _foreign(sb)
        and "labels" not in foreign["metadata"]
        and _pool(sb, _foreign(sb)) is None
    )


def _remove_foreign(sb: Sandbox) -> None:
    sb.onprem_server.delete_object(_calico(sb), "IPPool", "team-b-aws-range")
    _disassociate(sb, _foreign(sb))


register(
    Scenario(
        name="foreign-overlapping-pool",
        description="a pool fedkeeper does not own already covers a new VPC CIDR: "
        "left to it and reported (Felix does not masquerade towards any pool), nothing written",
        inject=_seed_foreign,
        event=_cidr_event("AssociateVpcCidrBlock", _foreign),
        verify=_foreign_untouched,
        cleanup=_remove_foreign,
        expects_repair=False,
    )
)


# --- rcc -------------------------------------------------------------------------------------


def _rcc_exists(server: Any, api: str, name: str) -> bool:
    rcc = server.get_object(api, "RemoteClusterConfiguration", name)
    return bool(rcc) and rcc["spec"]["syncOptions"]["overlayRoutingMode"] == "Disabled"


register(
    Scenario(
        name="rcc-deleted-onprem",
        description="the on-prem RemoteClusterConfiguration for EKS is deleted",
        inject=lambda sb: sb.onprem_server.delete_object(
            _calico(sb), "RemoteClusterConfiguration", sb.config.sole_eks().name
        ),
        event=lambda sb: ev.scheduled(sb.config.aws.region),
        verify=lambda sb: _rcc_exists(sb.onprem_server, _calico(sb), sb.config.sole_eks().name),
        watched=True,
    )
)
register(
    Scenario(
        name="rcc-deleted-eks",
        description="the EKS RemoteClusterConfiguration for on-prem is deleted (e.g. by a "
        "cluster upgrade pipeline)",
        inject=lambda sb: sb.eks_server.delete_object(
            _calico(sb), "RemoteClusterConfiguration", sb.config.sole_site().name
        ),
        event=lambda sb: ev.cloudtrail(
            "eks",
            "UpdateClusterVersion",
            {"name": _cluster(sb), "version": "1.34"},
            sb.config.aws.region,
        ),
        verify=lambda sb: _rcc_exists(sb.eks_server, _calico(sb), sb.config.sole_site().name),
        watched=True,
    )
)


def _access_token(sb: Sandbox) -> str:
    ns = sb.config.federation.access_secret_namespace
    secret = sb.eks_server.get_object(
        "v1", "Secret", access_secret_name(sb.config.sole_site().name), ns
    )
    assert secret is not None
    kubeconfig = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
    return str(kubeconfig["users"][0]["user"]["token"])


def _rotate(sb: Sandbox) -> None:
    sa = sb.config.federation.remote_service_account
    sb.onprem_server.rotate_token(sa.namespace, sa.name)


def _onprem_token(sb: Sandbox) -> str:
    sa = sb.config.federation.remote_service_account
    secret = sb.onprem_server.get_object("v1", "Secret", sa.name, sa.namespace)
    assert secret is not None
    return base64.b64decode(secret["data"]["token"]).decode()


register(
    Scenario(
        name="token-rotated",
        description="the on-prem remote service-account token is rotated; EKS's access Secret "
        "still holds the old one",
        inject=_rotate,
        event=lambda sb: ev.scheduled(sb.config.aws.region),
        verify=lambda sb: _access_token(sb) == _onprem_token(sb),
        watched=True,
    )
)


# --- vpn ---------------------------------------------------------------------------------------


def set_tunnels(sb: Sandbox, *, up: bool) -> None:
    """Both VPN tunnels up or down, as the on-prem router takes them (down: on-prem is cut off)."""
    b = _baseline(sb)
    for ip in b.tunnel_outside_ips:
        sb.aws.set_tunnel(b.vpn_connection_id, ip, up=up, message="" if up else "IPSEC IS DOWN")
    sb.onprem_server.set_unreachable(not up)


def _alarm(sb: Sandbox, state: str, previous: str) -> dict[str, Any]:
    b = _baseline(sb)
    return ev.tunnel_alarm(
        tunnel_alarm_name(sb.config, 1),
        state,
        previous,
        b.vpn_connection_id,
        b.tunnel_outside_ips[0],
        sb.config.aws.region,
    )


def _cut_off_and_drift(sb: Sandbox) -> list[Report]:
    down = sb.deliver(_alarm(sb, "ALARM", "OK"))
    # While on-prem is unreachable, someone deletes its RCC and edits fedkeeper's pool.
    sb.onprem_server.delete_object(
        _calico(sb), "RemoteClusterConfiguration", sb.config.sole_eks().name
    )
    _drift_pool(sb)
    set_tunnels(sb, up=True)
    return [down]


def _tunnel_repaired(sb: Sandbox) -> bool:
    return _rcc_exists(sb.onprem_server, _calico(sb), sb.config.sole_eks().name) and _good_pool(
        _pool(sb, str(sb.config.sole_eks().network.cidr))
    )


register(
    Scenario(
        name="tunnels-down-then-up",
        description="both VPN tunnels drop (on-prem work deferred), on-prem drifts while cut "
        "off, the tunnel-up alarm repairs it",
        inject=lambda sb: set_tunnels(sb, up=False),
        prelude=_cut_off_and_drift,
        event=lambda sb: _alarm(sb, "OK", "ALARM"),
        verify=_tunnel_repaired,
    )
)


# --- adoption ----------------------------------------------------------------------------------

# The manual procedure's names. Tigera's AWS example asks for "an IP Pool covering the AWS
# cluster VPC with disabled set to true"; its cluster-mesh guide names the access Secret
# remote-cluster-secret-<cluster> and the remote ServiceAccount, ClusterRole and binding
# tigera-federation-remote-cluster (the names fedkeeper uses too).
MANUAL_POOL = "aws-cluster-vpc"
MANUAL_RCC = {"eks": "onprem-cluster", "onprem": "aws-cluster"}
_OWNERSHIP = (MANAGED_BY_LABEL, FEDERATION_LABEL, ROLE_LABEL)


def _hand_made(obj: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """A copy of ``obj`` as an operator would have applied it: no ownership, fresh metadata."""
    meta = obj["metadata"]
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in _OWNERSHIP}
    fresh = {"name": name or meta["name"], **({"labels": labels} if labels else {})}
    if meta.get("namespace"):
        fresh["namespace"] = meta["namespace"]
    if meta.get("annotations"):
        fresh["annotations"] = dict(meta["annotations"])
    return {**obj, "metadata": fresh}


def _disown(obj: dict[str, Any]) -> None:
    labels = obj["metadata"].get("labels") or {}
    obj["metadata"]["labels"] = {k: v for k, v in labels.items() if k not in _OWNERSHIP}


def _manual_setup(sb: Sandbox) -> None:
    """The end state of the manual procedure, on a converged sandbox.

    Each cluster's RCC and access Secret were made by hand under their own names; the remote
    ServiceAccount, its token Secret and RBAC, and Typha's Role under the documented names
    but without fedkeeper's labels; on-prem a hand-made disabled pool covers the VPC; and
    external SNAT was set with ``kubectl set env`` on aws-node, not in the add-on.
    """
    api, cfg = _calico(sb), sb.config
    ns, sa = cfg.federation.access_secret_namespace, cfg.federation.remote_service_account
    servers = (
        ("eks", sb.eks_server, cfg.sole_site().name),
        ("onprem", sb.onprem_server, cfg.sole_eks().name),
    )
    for backend, server, rcc_name in servers:
        manual = MANUAL_RCC[backend]
        secret = server.get_object("v1", "Secret", access_secret_name(rcc_name), ns)
        rcc = server.get_object(api, "RemoteClusterConfiguration", rcc_name)
        assert secret is not None and rcc is not None
        server.delete_object(api, "RemoteClusterConfiguration", rcc_name)
        server.delete_object("v1", "Secret", access_secret_name(rcc_name), ns)
        server.seed(_hand_made(secret, access_secret_name(manual)))
        rcc = _hand_made(rcc, manual)
        rcc["spec"]["clusterAccessSecret"]["name"] = access_secret_name(manual)
        server.seed(rcc)
        for api_version, kind, name, namespace in (
            ("v1", "ServiceAccount", sa.name, sa.namespace),
            ("v1", "Secret", sa.name, sa.namespace),
            ("rbac.authorization.k8s.io/v1", "ClusterRole", sa.name, None),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", sa.name, None),
            ("rbac.authorization.k8s.io/v1", "Role", TYPHA_ACCESS, ns),
            ("rbac.authorization.k8s.io/v1", "RoleBinding", TYPHA_ACCESS, ns),
        ):
            server.mutate(api_version, kind, name, namespace, _disown)
    for pool in sb.onprem_server.list_objects(api, "IPPool"):
        if pool["metadata"]["name"].startswith("fedkeeper-aws-"):
            sb.onprem_server.delete_object(api, "IPPool", pool["metadata"]["name"])
    sb.onprem_server.seed(
        {
            "apiVersion": api,
            "kind": "IPPool",
            "metadata": {"name": MANUAL_POOL},
            "spec": {
                "cidr": str(cfg.sole_eks().network.cidr),
                "disabled": True,
                "natOutgoing": False,
            },
        }
    )
    sb.aws.reset_addon_configuration(_cluster(sb), ADDON_NAME, "{}")

    def set_env(ds: dict[str, Any]) -> None:  # kubectl set env ... EXTERNALSNAT=true
        for c in ds["spec"]["template"]["spec"]["containers"]:
            if c["name"] == "aws-node":
                c["env"] = [e for e in c["env"] if e["name"] != EXTERNAL_SNAT]
                c["env"].append({"name": EXTERNAL_SNAT, "value": "true"})

    sb.eks_server.mutate("apps/v1", "DaemonSet", "aws-node", "kube-system", set_env)


def federation_objects(sb: Sandbox) -> dict[str, dict[str, int]]:
    """Objects doing the federation's job on each cluster, split into owned and unowned."""
    api, cfg = _calico(sb), sb.config
    ns, sa = cfg.federation.access_secret_namespace, cfg.federation.remote_service_account
    rbac = "rbac.authorization.k8s.io/v1"
    out: dict[str, dict[str, int]] = {}
    for backend, server in (("eks", sb.eks_server), ("onprem", sb.onprem_server)):
        objs = [
            *server.list_objects(api, "RemoteClusterConfiguration"),
            *server.list_objects("v1", "Secret", ns),
            *(server.list_objects(api, "IPPool") if backend == "onprem" else []),
        ]
        objs = [o for o in objs if o["metadata"]["name"] != "default-ipv4-ippool"]
        for api_version, kind, name, namespace in (
            ("v1", "ServiceAccount", sa.name, sa.namespace),
            ("v1", "Secret", sa.name, sa.namespace),  # the token, when not listed above
            (rbac, "ClusterRole", sa.name, None),
            (rbac, "ClusterRoleBinding", sa.name, None),
            (rbac, "Role", TYPHA_ACCESS, ns),
            (rbac, "RoleBinding", TYPHA_ACCESS, ns),
        ):
            obj = server.get_object(api_version, kind, name, namespace)
            if obj is not None and obj not in objs:  # the token may be in the access namespace
                objs.append(obj)
        owned = sum(1 for o in objs if (o["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL))
        out[backend] = {"owned": owned, "unowned": len(objs) - owned, "total": len(objs)}
    return out


def _adopt_then_schedule(sb: Sandbox) -> Report:
    """The operator invokes the repair Lambda's adopt; the next scheduled run follows."""
    reports: list[Report] = []
    sb.invoke("repair", {"action": "adopt", "mode": "apply"}, on_report=reports.append)
    sb.deliver(ev.scheduled(sb.config.aws.region))
    return reports[0]


def _taken_over(sb: Sandbox) -> bool:
    api = _calico(sb)
    for backend, server in (("eks", sb.eks_server), ("onprem", sb.onprem_server)):
        rccs = server.list_objects(api, "RemoteClusterConfiguration")
        if [r["metadata"]["name"] for r in rccs] != [MANUAL_RCC[backend]]:
            return False
    vpc = ipaddress.ip_network(str(sb.config.sole_eks().network.cidr))
    covering = [
        p["metadata"]["name"]
        for p in sb.onprem_server.list_objects(api, "IPPool")
        if ipaddress.ip_network(p["spec"]["cidr"]).overlaps(vpc)
    ]
    counts = federation_objects(sb)
    return (
        covering == [MANUAL_POOL]
        and all(c["unowned"] == 0 for c in counts.values())
        and _snat_restored(sb)
    )


def _back_to_fedkeepers_names(sb: Sandbox) -> None:
    api, ns = _calico(sb), sb.config.federation.access_secret_namespace
    for backend, server in (("eks", sb.eks_server), ("onprem", sb.onprem_server)):
        server.delete_object(api, "RemoteClusterConfiguration", MANUAL_RCC[backend])
        server.delete_object("v1", "Secret", access_secret_name(MANUAL_RCC[backend]), ns)
    sb.onprem_server.delete_object(api, "IPPool", MANUAL_POOL)


register(
    Scenario(
        name="adopt-manual-setup",
        description="a federation set up by hand (own RCC, Secret and pool names, aws-node "
        "edited by hand) is adopted through the repair Lambda: no duplicates, then kept",
        inject=_manual_setup,
        event=lambda sb: ev.scheduled(sb.config.aws.region),
        act=_adopt_then_schedule,
        verify=_taken_over,
        cleanup=_back_to_fedkeepers_names,
    )
)


# --- triggers and their delivery latency -------------------------------------------------------

CLOUDTRAIL_S = 300.0
CLOUDTRAIL_SOURCE = (
    "CloudTrail delivers an event 'within an average of about 5 minutes of an API call' "
    "(https://aws.amazon.com/cloudtrail/faqs/, not guaranteed); EventBridge gets CloudTrail "
    "events best effort (https://docs.aws.amazon.com/eventbridge/latest/userguide/"
    "eb-service-event-delivery-level.html)"
)
ALARM_S = 300.0
ALARM_SOURCE = (
    "the TunnelState alarm: 5-minute period, 1 evaluation period (stacks/automation.py); "
    "AWS/VPN metrics are 5-minute data (https://docs.aws.amazon.com/vpn/latest/s2svpn/"
    "monitoring-cloudwatch-vpn.html)"
)


def schedule_seconds(expression: str) -> float:
    """The period of an EventBridge ``rate(...)`` schedule; a cron one counts as a day."""
    units = {"minute": 60, "hour": 3600, "day": 86400}
    if expression.startswith("rate(") and expression.endswith(")"):
        count, unit = expression[5:-1].split()
        return float(count) * units[unit.rstrip("s")]
    return 86400.0


def trigger_of(event: dict[str, Any]) -> str:
    """What delivered an event: cloudtrail, alarm, schedule or an AWS service event."""
    kind = str(event.get("detail-type", ""))
    if kind == "AWS API Call via CloudTrail":
        return "cloudtrail"
    if kind == "CloudWatch Alarm State Change":
        return "alarm"
    if kind == "Scheduled Event":
        return "schedule"
    return str(event.get("source", "event"))


def delivery_latency(sb: Sandbox, trigger: str) -> tuple[float, str]:
    """Seconds from a drift to its trigger reaching fedkeeper (worst case), and the source."""
    if trigger == "cloudtrail":
        return CLOUDTRAIL_S, CLOUDTRAIL_SOURCE
    if trigger == "alarm":
        return ALARM_S, ALARM_SOURCE
    if trigger == "schedule":
        schedule = sb.config.reconcile.schedule
        return schedule_seconds(schedule), f"reconcile.schedule {schedule}: up to one period"
    return 0.0, "the operator invokes it"


def run_scenario(sb: Sandbox, scenario: Scenario) -> ScenarioResult:
    """Inject, deliver the event (or let the watch find it), verify, then prove convergence
    with a full rerun."""
    if scenario.watched:
        result = _watched(sb, scenario)
    else:
        scenario.inject(sb)
        prelude = scenario.prelude(sb) if scenario.prelude else []
        sb.clear_logs()
        event = scenario.event(sb)
        trigger = "manual" if scenario.act else trigger_of(event)
        started = time.perf_counter()
        report = scenario.act(sb) if scenario.act else sb.deliver(event)
        handler_s = time.perf_counter() - started
        latency, source = delivery_latency(sb, trigger)
        result = _Partial(report, prelude, trigger, handler_s, latency + handler_s, source)
    return _finish(sb, scenario, result)


@dataclass
class _Partial:
    report: Report
    prelude: list[Report]
    trigger: str
    handler_s: float
    time_to_repair_s: float
    latency_source: str = ""


WATCH_REPAIR_TIMEOUT_S = 10.0


def _watched(sb: Sandbox, scenario: Scenario) -> _Partial:
    """The drift is written while the watch function runs; it must find and repair it."""
    with sb.watching() as watch:
        _until(watch.ready)
        time.sleep(watch.debounce)  # changes replayed from the last stored version arrive
        _until(watch.idle)
        before = len(watch.summary.reports)
        sb.clear_logs()
        started = time.perf_counter()
        scenario.inject(sb)
        _until(lambda: scenario.verify(sb), WATCH_REPAIR_TIMEOUT_S)
        repaired_s = time.perf_counter() - started
        time.sleep(watch.debounce)  # the echo of its own write, if any, is skipped
        _until(watch.idle)
        reports = watch.summary.reports[before:]
    report = next((r for r in reports if r.changes), reports[-1] if reports else None)
    if report is None:
        report = Report(mode="apply", scope=Scope(frozenset()), trigger="watch: nothing seen")
    return _Partial(report, [], "watch", repaired_s, repaired_s)


def _until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.perf_counter() + seconds
    while not condition() and time.perf_counter() < deadline:
        time.sleep(0.005)


def _finish(sb: Sandbox, scenario: Scenario, p: _Partial) -> ScenarioResult:
    report = p.report
    writes = sb.emulator_writes().total
    # An add-on update EKS is still rolling out ends before the outcome is checked.
    rollout = sb.aws.addon_seconds_left()
    if rollout:
        sb.advance_time(rollout)
    verified = scenario.verify(sb)
    sb.clear_logs()
    rerun = sb.reconcile(None, "apply")
    writes_on_rerun = sb.emulator_writes().total
    if scenario.cleanup is not None:
        scenario.cleanup(sb)
        sb.reconcile(None, "apply")
    sb.clear_logs()
    if scenario.expects_repair:
        detected = bool(report.changes)
        repaired = verified and all(c.result is Result.APPLIED for c in report.changes)
    else:
        detected = bool(report.findings)
        repaired = verified and writes == 0
    if scenario.watched:
        detected = detected and report.trigger == "watch"
    converged = rerun.converged and not rerun.changes and writes_on_rerun == 0
    return ScenarioResult(
        scenario=scenario.name,
        description=scenario.description,
        detected=detected,
        repaired=repaired,
        converged=converged,
        writes_on_rerun=writes_on_rerun,
        report=report,
        rerun=rerun,
        writes=writes,
        prelude=p.prelude,
        trigger=p.trigger,
        time_to_repair_s=p.time_to_repair_s,
        handler_s=p.handler_s,
        modelled=p.trigger != "watch",
        latency_source=p.latency_source,
    )
