"""`fedkeeper status`: the federation's health, with reasons, for an operator.

One plan-mode reconcile (it writes nothing) says what has drifted and why; a few extra reads
give the facts an operator wants next to it: each tunnel and since when, the propagated route
for each on-prem CIDR, external SNAT on the add-on and the DaemonSet, the disabled pools
against the VPC's CIDRs, the RCCs and their Secrets both ways.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fedkeeper import episodes
from fedkeeper.calico_v3 import ippool_field
from fedkeeper.errors import FedkeeperError, UnreachableError
from fedkeeper.invariants import ippools as ippools_inv
from fedkeeper.invariants import routes as routes_inv
from fedkeeper.invariants.rcc import access_secret_name
from fedkeeper.invariants.snat import (
    ADDON_NAME,
    DAEMONSET,
    DAEMONSET_NAMESPACE,
    EXTERNAL_SNAT,
    daemonset_env,
    parse_configuration_values,
)
from fedkeeper.model import (
    ALL_INVARIANTS,
    Invariant,
    Report,
    Result,
    Scope,
    Severity,
    is_cluster_target,
)
from fedkeeper.render import ago
from fedkeeper.service import Connections, Run, reconcile

Health = Literal["healthy", "degraded", "broken", "unknown"]
_RANK: dict[str, int] = {"healthy": 0, "unknown": 1, "degraded": 2, "broken": 3}


@dataclass
class Section:
    invariant: str
    health: Health = "healthy"
    facts: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def worsen(self, health: Health, reason: str | None = None) -> None:
        if _RANK[health] > _RANK[self.health]:
            self.health = health
        if reason:
            self.reasons.append(reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "invariant": self.invariant,
            "health": self.health,
            "facts": self.facts,
            "reasons": self.reasons,
        }


@dataclass
class Status:
    sections: list[Section]
    report: Report
    duration_ms: int

    @property
    def health(self) -> Health:
        worst: Health = "healthy"
        for s in self.sections:
            if _RANK[s.health] > _RANK[worst]:
                worst = s.health
        return worst

    @property
    def healthy(self) -> bool:
        return self.health == "healthy"

    def to_dict(self) -> dict[str, Any]:
        return {
            "health": self.health,
            "sections": [s.to_dict() for s in self.sections],
            "plan": self.report.to_dict(),
            "duration_ms": self.duration_ms,
        }


def _invariant_of(check: str) -> str:
    return check.split(".", 1)[0]


def _sections_from_report(d: dict[str, Any]) -> dict[str, Section]:
    """Health per invariant from a plan-mode Report (its JSON): drift, findings, errors."""
    sections = {inv.value: Section(inv.value) for inv in ALL_INVARIANTS}
    for c in d["changes"]:
        sec = sections.get(c.get("invariant", ""), sections["checks"])
        label = "would repair" if c["result"] == Result.PLANNED.value else c["result"]
        sec.worsen("broken", f"{label}: {c['reason']}")
    for f in d["findings"]:
        sec = sections.get(_invariant_of(f["check"]), sections["checks"])
        if f["severity"] == Severity.ERROR.value:
            sec.worsen("broken", f["message"])
        elif f["severity"] == Severity.WARNING.value:
            sec.worsen("degraded", f["message"])
        else:
            sec.facts.append(f["message"])
    for e in d.get("errors", []):
        sec = sections.get(e["invariant"], sections["checks"])
        sec.worsen("unknown", f"could not be read: {e['error']}")
    cut_off = [x for x in d["deferred"] if is_cluster_target(x["target"])]
    for x in cut_off:
        for name in ("ippools", "rcc", "checks"):
            sections[name].worsen("unknown", f"{x['target']} not reachable: {x['reason']}")
    for failed in d.get("failed_targets", []):
        fix = f"; fix: {failed['fix']}" if failed.get("fix") else ""
        for name in failed["invariants"]:
            if name in sections:
                sections[name].facts.append(f"{failed['target']} failed: {failed['reason']}{fix}")
    return sections


_ORDER = [i.value for i in (Invariant.VPN, *[x for x in ALL_INVARIANTS if x is not Invariant.VPN])]


def status_from_report(report: dict[str, Any]) -> dict[str, Any]:
    """The health view of a plan Report alone (e.g. the repair Lambda's ``status`` answer):
    what ``Status.to_dict()`` gives, without the extra facts only local reads provide."""
    sections = _sections_from_report(report)
    ordered = [sections[n] for n in _ORDER if n in report["scope"]] or list(sections.values())
    worst: Health = "healthy"
    for s in ordered:
        if _RANK[s.health] > _RANK[worst]:
            worst = s.health
    return {"health": worst, "sections": [s.to_dict() for s in ordered], "plan": report}


def federation_status(conns: Connections, *, deadline_s: float | None = None) -> Status:
    """Health of every invariant: a plan-mode reconcile plus the facts behind it.

    ``deadline_s``: the plan run's time budget (see :func:`fedkeeper.service.reconcile`)."""
    started = time.perf_counter()
    # One plan-mode run; the facts below reuse its cached reads (VPC, routes, VPN, pools).
    run = Run(conns=conns, mode="plan", report=Report(mode="plan", scope=Scope.everything()))
    report = reconcile(
        conns, Scope.everything(), "plan", trigger="status", run=run, deadline_s=deadline_s
    )
    sections = _sections_from_report(report.to_dict())
    _trouble_facts(conns, sections)
    for name, gather in _FACTS.items():
        try:
            gather(run, sections[name])
        except UnreachableError as exc:
            sections[name].facts.append(f"({exc.target or 'a backend'} unreachable)")
        except FedkeeperError as exc:
            sections[name].facts.append(f"(facts unavailable: {exc})")
    for name in _WATCHED:
        try:
            _watch_facts(run, sections[name])
        except FedkeeperError as exc:
            sections[name].facts.append(f"(watch state unavailable: {exc})")
    return Status(
        sections=[sections[n] for n in _ORDER],
        report=report,
        duration_ms=int((time.perf_counter() - started) * 1000),
    )


# --- facts --------------------------------------------------------------------------------


def _trouble_facts(conns: Connections, sections: dict[str, Section]) -> None:
    """Open episodes of persistent trouble, with since when (the stack's episodes table)."""
    table = f"{conns.config.name}-fedkeeper-episodes"
    try:
        data, _ = conns.aws.read_episodes(table)
    except FedkeeperError:
        return  # no table (not deployed, or the sandbox without one): nothing to show
    now = time.time()
    for ep in episodes.parse_store(data).values():
        since = datetime.fromtimestamp(ep.since, UTC).strftime("%Y-%m-%d %H:%M UTC")
        kind, _, name = ep.key.partition(":")
        sec = sections.get(name) if kind == "invariant" else sections["checks"]
        (sec or sections["checks"]).facts.append(
            f"{'notified' if ep.notified else 'watching'}: "
            f"{episodes.describe(ep, now)} (since {since})"
        )


def _vpn_facts(run: Run, sec: Section) -> None:
    from fedkeeper.observe import vpn_connections

    vpc = run.vpc()
    vgw = run.vgw_id(vpc.id) if vpc else None
    if vgw is None:
        return
    for conn in vpn_connections(run, vgw):
        for i, t in enumerate(conn.tunnels, 1):
            state = "UP" if t.up else "DOWN"
            since = f" (changed {ago(t.last_change)})" if t.last_change else ""
            sec.facts.append(
                f"{conn.id} tunnel {i} {t.outside_ip}: {state}{since}, "
                f"{t.accepted_routes} route(s) accepted"
            )


def _route_facts(run: Run, sec: Section) -> None:
    from fedkeeper.observe import observe_routes

    obs = observe_routes(run)
    if obs is None:
        return
    onprem = obs.onprem_cidrs
    for rt in routes_inv.private_tables(obs):
        prop = "propagates" if obs.vgw_id in rt.propagating_vgws else "does NOT propagate"
        states = []
        for cidr in onprem:
            state = routes_inv.route_state(cidr, rt)
            cov = routes_inv.route_coverage(cidr, rt)
            if state is None and cov.covered:
                state = f"active ({len(cov.routes)} routes)"
            states.append(f"{cidr} {state or 'missing'}")
        sec.facts.append(f"{rt.id} {prop} from {obs.vgw_id}: {', '.join(states)}")


def _snat_facts(run: Run, sec: Section) -> None:
    addon = run.conns.aws.describe_addon(run.conns.cluster_name, ADDON_NAME)
    if addon is None:
        sec.facts.append("vpc-cni is self-managed (no EKS add-on)")
    else:
        try:
            env = parse_configuration_values(addon.configuration_values).get("env") or {}
            value = env.get(EXTERNAL_SNAT, "unset")
        except ValueError:
            value = "unreadable"
        sec.facts.append(
            f"add-on vpc-cni {addon.version} ({addon.status}): {EXTERNAL_SNAT}={value}"
        )
    ds = run.eks().get("DaemonSet", DAEMONSET, DAEMONSET_NAMESPACE)
    if ds is not None:
        sec.facts.append(f"DaemonSet aws-node: {EXTERNAL_SNAT}={daemonset_env(ds) or 'unset'}")


def _pool_facts(run: Run, sec: Section) -> None:
    """Per VPC CIDR: the on-prem pools that cover it (Felix does not SNAT towards them)."""
    from fedkeeper.observe import onprem_pools

    vpc = run.vpc()
    if vpc is None:
        return
    pools = onprem_pools(run)
    for cidr in vpc.cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        covering = []
        for p in pools:
            spec = p.get("spec", {})
            try:
                pnet = ipaddress.ip_network(str(spec.get("cidr")), strict=False)
            except ValueError:
                continue
            if pnet.version == net.version and pnet.overlaps(net):
                who = "fedkeeper" if ippools_inv.owned(p) else "not fedkeeper's"
                covering.append(
                    f"{p.get('metadata', {}).get('name')} {pnet} ({who}) "
                    f"disabled={ippool_field(spec, 'disabled')} "
                    f"natOutgoing={ippool_field(spec, 'natOutgoing')}"
                )
        sec.facts.append(
            f"VPC {cidr}: " + ("; ".join(covering) if covering else "no pool covers it on-prem")
        )


def _rcc_facts(run: Run, sec: Section) -> None:
    cfg = run.config
    ns = cfg.federation.access_secret_namespace
    for label, get_cluster, rcc in (
        ("EKS → on-prem", run.eks, cfg.sole_site().name),
        ("on-prem → EKS", run.onprem, cfg.sole_eks().name),
    ):
        try:
            cluster = get_cluster()
            rccs = cluster.list("RemoteClusterConfiguration")
            has_secret = cluster.get("Secret", access_secret_name(rcc), ns) is not None
        except UnreachableError:
            sec.facts.append(f"{label}: unreachable")
            continue
        names = [str(r.get("metadata", {}).get("name")) for r in rccs]
        others = [
            f"{r.get('metadata', {}).get('name')}"
            f"{'' if ippools_inv.owned(r) else ' (not owned by fedkeeper)'}"
            for r in rccs
            if r.get("metadata", {}).get("name") != rcc
        ]
        sec.facts.append(
            f"{label}: RCC {rcc} {'present' if rcc in names else 'MISSING'}, Secret "
            f"{ns}/{access_secret_name(rcc)} {'present' if has_secret else 'MISSING'}"
            + (f"; other RCCs: {', '.join(others)}" if others else "")
        )


def _watch_facts(run: Run, sec: Section) -> None:
    """Whether the watch function is live on each cluster (its stored state)."""
    import json
    from datetime import UTC, datetime

    from fedkeeper.errors import NotFoundError
    from fedkeeper.watch import WatchState, liveness, state_parameter_name

    try:
        text = run.conns.aws.parameter(state_parameter_name(run.config))
    except NotFoundError:
        sec.facts.append("watch: not deployed (no state parameter)")
        return
    try:
        state = WatchState.from_dict(json.loads(text))
    except ValueError:
        state = WatchState()
    sec.facts.extend(liveness(state, datetime.now(UTC)))


_FACTS = {
    "vpn": _vpn_facts,
    "routes": _route_facts,
    "snat": _snat_facts,
    "ippools": _pool_facts,
    "rcc": _rcc_facts,
}
_WATCHED = ("rcc",)  # the section that also shows the watch function's liveness
