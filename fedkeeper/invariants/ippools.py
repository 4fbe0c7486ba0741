"""Invariant 3 — ippools: on-prem does not SNAT traffic to the VPC.

Felix masquerades a packet from a natOutgoing pool only when its destination lies in no IP
pool, disabled or not (``felix/dataplane/linux/masq_mgr.go``: every pool's CIDR goes into
``all-ipam-pools``). So what counts is *coverage*: for every IPv4 CIDR of the VPC, the union
of on-prem pools covering it. Pools are needed whenever some on-prem pool does outgoing NAT,
disabled or not (policy ``auto``; ``always``/``never`` force it).

* Unowned pools that cover a VPC CIDR are left to do that job (an informational finding
  names them); fedkeeper owns ``disabled: true, natOutgoing: false, disableBGPExport: true``,
  no-encapsulation pools for exactly the uncovered remainder, as the smallest set of CIDRs,
  named ``fedkeeper-aws-<cidr with dashes>``. Never a pool that overlaps an existing one (the
  Calico API server refuses overlaps).
* A covering pool that would itself NAT, or is enabled for allocation, is an error finding
  with the fix: on-prem pods could get VPC addresses, or be masqueraded.
* A VPC CIDR overlapping the on-prem host, pod or service ranges is an error finding and gets
  no pool: the networks collide, and no pool can fix that.
* Pools adopted by ``fedkeeper adopt`` keep their names and are kept like generated ones.

Only pools owned by this federation (both ``app.kubernetes.io/managed-by: fedkeeper`` and
``fedkeeper.io/federation: <name>``) are patched or deleted, and owned pools are pruned only
on a successful, non-empty read of the VPC. Another federation's pools are never touched. A
pool labelled only ``managed-by: fedkeeper`` under the name this federation gives its CIDR is
adopted on the next apply (its federation label added, reported as adopted); under any other
name it is left alone.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fedkeeper import model
from fedkeeper.calico_v3 import ippool_field
from fedkeeper.config import DisabledPoolPolicy
from fedkeeper.invariants import Plan
from fedkeeper.invariants.shapes import Problems, bool_at, mapping_at, metadata_problems, str_at
from fedkeeper.model import (
    IGNORE_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    Action,
    Backend,
    Change,
    Finding,
    Invariant,
    Ownership,
    Severity,
    owner_labels,
    ownership,
)

FEDERATION_LABEL = model.FEDERATION_LABEL  # kept importable from here
POOL_PREFIX = "fedkeeper-aws-"
DESIRED_SPEC: Mapping[str, Any] = {
    "disabled": True,
    "natOutgoing": False,
    "disableBGPExport": True,
    "ipipMode": "Never",
    "vxlanMode": "Never",
}
# Fields Calico refuses to change on update: a drift here means delete and re-create.
IMMUTABLE = ("cidr", "blockSize")


@dataclass(frozen=True)
class IpPoolsObservation:
    federation: str
    api_version: str
    vpc_cidrs: Sequence[str]  # as observed in EC2 (associated IPv4 CIDRs); empty = unknown
    pools: Sequence[Mapping[str, Any]]  # every IPPool on-prem
    policy: DisabledPoolPolicy
    # (what, CIDR) of the on-prem host, pod and service ranges, e.g. ("pod range", "10.244.0.0/16")
    onprem_ranges: Sequence[tuple[str, str]] = ()
    # The mesh: (peer, CIDR) for every CIDR of every peer the site federates with (the
    # topology's cidrs_of(peer)); when given, these are what the pools cover, not vpc_cidrs.
    peer_cidrs: Sequence[tuple[str, str]] = ()
    # False when some peer's CIDRs could not be read (a VPC not described): nothing pruned.
    complete: bool = True
    backend: Backend = "onprem"  # the site holding the pools

    @classmethod
    def of_peers(
        cls,
        *,
        federation: str,
        api_version: str,
        site: Backend,
        peer_cidrs: Sequence[tuple[str, str]],
        pools: Sequence[Mapping[str, Any]],
        policy: DisabledPoolPolicy,
        site_ranges: Sequence[tuple[str, str]] = (),
        complete: bool = True,
    ) -> IpPoolsObservation:
        """The observation of one NATing site in a mesh: pools covering every peer CIDR."""
        return cls(
            federation=federation,
            api_version=api_version,
            vpc_cidrs=(),
            pools=pools,
            policy=policy,
            onprem_ranges=site_ranges,
            peer_cidrs=tuple(peer_cidrs),
            complete=complete,
            backend=site,
        )

    def targets(self) -> list[tuple[str, str]]:
        """(peer, CIDR) the pools must cover; the peer is "" for today's VPC CIDRs."""
        if self.peer_cidrs:
            return list(self.peer_cidrs)
        return [("", c) for c in self.vpc_cidrs]


def pool_name(cidr: str) -> str:
    """``10.100.0.0/16`` → ``fedkeeper-aws-10-100-0-0-16``."""
    return POOL_PREFIX + cidr.replace(".", "-").replace("/", "-")


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def owned(obj: Mapping[str, Any]) -> bool:
    labels = _meta(obj).get("labels")
    return isinstance(labels, Mapping) and labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


def ours(obj: Mapping[str, Any], federation: str) -> bool:
    """Owned by this federation: both ownership labels, with its name."""
    return ownership(obj, federation) is Ownership.OURS


def unclaimed_ours(obj: Mapping[str, Any]) -> bool:
    """Labelled the old way (managed-by only) under the name fedkeeper gives its CIDR.

    Such a pool is adopted on the next apply (its federation label added); an unclaimed
    pool under any other name is left alone like a foreign one.
    """
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    if not isinstance(labels, Mapping) or labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return False
    if labels.get(FEDERATION_LABEL) not in (None, ""):
        return False
    net = _v4(_spec(obj).get("cidr"))
    return net is not None and _name(obj) == pool_name(str(net))


def kept(obj: Mapping[str, Any], federation: str) -> bool:
    """Pools this federation keeps: its own, and unclaimed ones it adopts on the next apply."""
    return ours(obj, federation) or unclaimed_ours(obj)


def opted_out(obj: Mapping[str, Any]) -> bool:
    annotations = _meta(obj).get("annotations")
    if not isinstance(annotations, Mapping):
        return False
    return str(annotations.get(IGNORE_ANNOTATION, "")).lower() == "true"


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name", "")) if isinstance(meta, Mapping) else ""


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _net(cidr: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return None


def _v4(cidr: Any) -> ipaddress.IPv4Network | None:
    net = _net(cidr)
    return net if isinstance(net, ipaddress.IPv4Network) else None


def _label(p: Mapping[str, Any]) -> str:
    return f"{_name(p)} ({_spec(p).get('cidr')})"


def generated(obj: Mapping[str, Any]) -> bool:
    """A pool fedkeeper named itself (adopted pools keep their own names)."""
    return _name(obj).startswith(POOL_PREFIX)


def nat_pools(obs: IpPoolsObservation) -> list[Mapping[str, Any]]:
    """On-prem pools with outgoing NAT, disabled or not (ours excluded): the reason for ours.

    A disabled pool still NATs the pods it holds (e.g. during a pool migration), so it
    counts as Felix counts it.
    """
    return [
        p for p in obs.pools if not kept(p, obs.federation) and _spec(p).get("natOutgoing") is True
    ]


def pools_needed(obs: IpPoolsObservation) -> bool:
    if obs.policy is DisabledPoolPolicy.ALWAYS:
        return True
    return obs.policy is DisabledPoolPolicy.AUTO and bool(nat_pools(obs))


def would_nat_or_allocate(pool: Mapping[str, Any]) -> list[str]:
    """Why a pool covering the VPC is not a safe no-SNAT pool (empty when it is)."""
    spec = _spec(pool)
    out = []
    if not spec.get("disabled"):
        out.append("it is enabled, so on-prem pods can get VPC addresses")
    if spec.get("natOutgoing") is True:
        out.append("it has natOutgoing true")
    return out


@dataclass(frozen=True)
class Coverage:
    """One VPC CIDR and what on-prem does about it."""

    vpc_cidr: ipaddress.IPv4Network  # in a mesh: one CIDR of a peer
    covering: tuple[Mapping[str, Any], ...]  # pools not ours that overlap it
    adopted: tuple[Mapping[str, Any], ...]  # ours, under their own names, inside it
    remainder: tuple[ipaddress.IPv4Network, ...]  # what fedkeeper's generated pools cover
    collisions: tuple[str, ...]  # overlaps with on-prem ranges or enabled pools
    peer: str = ""  # the peer the CIDR belongs to ("" for today's VPC CIDRs)

    @property
    def what(self) -> str:
        """``VPC CIDR 10.100.0.0/16``, or in a mesh ``eks-a's CIDR 10.100.0.0/16``."""
        return f"{self.peer}'s CIDR {self.vpc_cidr}" if self.peer else f"VPC CIDR {self.vpc_cidr}"

    @property
    def usable(self) -> bool:
        return not self.collisions


def uncovered(
    cidr: ipaddress.IPv4Network, taken: Sequence[ipaddress.IPv4Network]
) -> list[ipaddress.IPv4Network]:
    """``cidr`` minus ``taken``, as the smallest set of CIDRs."""
    rest = [cidr]
    for t in taken:
        nxt: list[ipaddress.IPv4Network] = []
        for r in rest:
            if not r.overlaps(t):
                nxt.append(r)
            elif not r.subnet_of(t):  # t lies inside r
                nxt.extend(r.address_exclude(t))
        rest = nxt
    return sorted(ipaddress.collapse_addresses(rest))


def coverage(obs: IpPoolsObservation) -> list[Coverage]:
    """Per IPv4 VPC CIDR: covering pools, adopted pools, the remainder and collisions."""
    out = []
    seen: set[ipaddress.IPv4Network] = set()
    for peer, cidr in obs.targets():
        vpc = _v4(cidr)
        if vpc is None or vpc in seen:
            continue
        seen.add(vpc)
        covering, adopted = [], []
        for p in obs.pools:
            net = _v4(_spec(p).get("cidr"))
            if net is None or not net.overlaps(vpc):
                continue
            if not kept(p, obs.federation):
                covering.append(p)
            elif not generated(p) and net.subnet_of(vpc):
                adopted.append(p)
        collisions = [
            f"the on-prem {what} {rng}"
            for what, rng in obs.onprem_ranges
            if (n := _v4(rng)) is not None and n.overlaps(vpc)
        ]
        collisions += [
            f"the enabled on-prem pool {_label(p)}"
            for p in covering
            if not _spec(p).get("disabled")
        ]
        taken = [n for p in (*covering, *adopted) if (n := _v4(_spec(p).get("cidr")))]
        out.append(
            Coverage(
                vpc_cidr=vpc,
                covering=tuple(covering),
                adopted=tuple(adopted),
                remainder=tuple(uncovered(vpc, taken)),
                collisions=tuple(collisions),
                peer=peer,
            )
        )
    return out


def _desired_pool(obs: IpPoolsObservation, net: ipaddress.IPv4Network) -> dict[str, Any]:
    name = pool_name(str(net))
    return {
        "apiVersion": obs.api_version,
        "kind": "IPPool",
        "metadata": {
            "name": name,
            "labels": owner_labels(obs.federation),
        },
        "spec": {"cidr": str(net), **DESIRED_SPEC},
    }


def desired_pools(obs: IpPoolsObservation) -> dict[str, dict[str, Any]]:
    """Name → desired generated IPPool for the uncovered remainder of every usable VPC CIDR."""
    if not pools_needed(obs):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for cov in coverage(obs):
        if cov.usable:
            for net in cov.remainder:
                out[pool_name(str(net))] = _desired_pool(obs, net)
    return out


def _why_needed(obs: IpPoolsObservation) -> str:
    if obs.policy is DisabledPoolPolicy.ALWAYS:
        return "disabled_pool_policy is always"
    names = ", ".join(
        f"{_label(p)}{' (disabled)' if _spec(p).get('disabled') else ''}" for p in nat_pools(obs)
    )
    towards = "its peers' pods" if obs.peer_cidrs else "AWS pods"
    return f"on-prem pool {names} does outgoing NAT, so traffic to {towards} would be SNATed"


def _pool_change(
    backend: Backend,
    name: str,
    action: Action,
    reason: str,
    payload: dict[str, Any],
    resource_version: str | None = None,
) -> Change:
    return Change(
        backend=backend,
        kind="IPPool",
        name=name,
        action=action,
        invariant=Invariant.IPPOOLS,
        reason=reason,
        payload=payload,
        resource_version=resource_version,
    )


def _drift(actual: Mapping[str, Any], want: Mapping[str, Any]) -> list[str]:
    # Both as the Calico API server serves them: defaults filled, false booleans omitted.
    out = []
    for key in want:
        if key == "cidr":
            continue
        have, value = ippool_field(actual, key), ippool_field(want, key)
        if have != value:
            out.append(f"{key} is {have!r} (want {value!r})")
    return out


def plan_ippools(obs: IpPoolsObservation) -> Plan:
    plan = _plan_ippools(obs)
    # Creates come after the deletes (Calico refuses an overlapping pool): a create whose
    # delete failed in this run is not attempted.
    deletes = tuple(c.target for c in plan.changes if c.action is Action.DELETE)
    plan.changes = [
        dataclasses.replace(c, after=deletes) if c.action is Action.CREATE and deletes else c
        for c in plan.changes
    ]
    return plan


def pool_problems(pool: Mapping[str, Any]) -> Problems:
    """What in an IPPool is not of the shape the Calico v3 type has (``ippool.go``)."""
    problems = metadata_problems(pool)
    spec = mapping_at(pool.get("spec"), "spec", problems, required=True)
    str_at(spec.get("cidr"), "spec.cidr", problems, required=True)
    for key in ("natOutgoing", "disabled", "disableBGPExport"):
        bool_at(spec.get(key), f"spec.{key}", problems)
    for key in ("ipipMode", "vxlanMode", "nodeSelector"):
        str_at(spec.get(key), f"spec.{key}", problems)
    return problems


def _report_malformed(obs: IpPoolsObservation, plan: Plan) -> None:
    """One finding per on-prem pool of the wrong shape, naming it and its bad fields."""
    for p in obs.pools:
        problems = pool_problems(p)
        if not problems:
            continue
        if opted_out(p):
            tail = f"it carries {IGNORE_ANNOTATION}=true, so fedkeeper leaves it as it is"
        elif kept(p, obs.federation):
            tail = "fedkeeper owns it and restores it"
        else:
            tail = (
                "it is not fedkeeper's, so fedkeeper leaves it alone and counts it only for the "
                "CIDR it clearly covers"
            )
        label = f"{obs.backend} IPPool {_name(p)}"
        plan.findings.append(
            Finding(
                Severity.WARNING,
                "ippools.malformed",
                f"{label} is malformed: {'; '.join(problems[:4])}; {tail}",
                label,
            )
        )


def _plan_ippools(obs: IpPoolsObservation) -> Plan:
    plan = Plan()
    _report_malformed(obs, plan)
    needed = pools_needed(obs)
    covs = coverage(obs)
    for cov in covs:
        _report_coverage(obs, cov, needed, plan)
    desired = desired_pools(obs)
    _plan_prune(obs, covs, desired, needed, plan)  # deletes first: never an overlap on create
    by_name = {_name(p): p for p in obs.pools}
    for name, want in desired.items():
        existing = by_name.get(name)
        if existing is None:
            plan.changes.append(
                _pool_change(
                    obs.backend,
                    name,
                    Action.CREATE,
                    f"{_what_it_covers(covs, want['spec']['cidr'])} has no disabled IP pool "
                    f"on-prem and {_why_needed(obs)}; creating a disabled pool so Felix does "
                    "not masquerade it",
                    {"op": "create", "body": want},
                )
            )
        elif unclaimed_ours(existing) and not opted_out(existing):
            _plan_owned_drift(existing, want, plan, adopting=True, backend=obs.backend)
        elif not ours(existing, obs.federation):
            other = ownership(existing, obs.federation) is Ownership.OTHER_FEDERATION
            whose = (
                f"belongs to federation {existing['metadata']['labels'][FEDERATION_LABEL]!r}"
                if other
                else "is not owned by this federation"
            )
            plan.findings.append(
                Finding(
                    Severity.WARNING,
                    "ippools.foreign",
                    f"IP pool {name} ({_spec(existing).get('cidr')}) has the name fedkeeper "
                    f"would give the pool for {want['spec']['cidr']} but {whose}; fedkeeper "
                    "leaves it alone — rename or remove it",
                )
            )
        elif not opted_out(existing):
            _plan_owned_drift(existing, want, plan, backend=obs.backend)
    if needed:
        for cov in covs:
            for p in cov.adopted if cov.usable else ():
                if not opted_out(p):
                    want = _desired_pool(obs, ipaddress.IPv4Network(str(_spec(p).get("cidr"))))
                    want["metadata"]["name"] = _name(p)
                    _plan_owned_drift(p, want, plan, backend=obs.backend)
    return plan


def _what_it_covers(covs: Sequence[Coverage], cidr: str) -> str:
    net = ipaddress.IPv4Network(cidr)
    for cov in covs:
        if net == cov.vpc_cidr:
            return cov.what
        if net.subnet_of(cov.vpc_cidr):
            return f"{cidr}, the part of {cov.what} no other pool covers,"
    return cidr


def _report_coverage(obs: IpPoolsObservation, cov: Coverage, needed: bool, plan: Plan) -> None:
    vpc = cov.vpc_cidr
    if cov.collisions:
        enabled = [_name(p) for p in cov.covering if not _spec(p).get("disabled")]
        fix = (
            f"; if pool {', '.join(enabled)} holds no pods, disabling it also fixes this "
            f"(kubectl patch ippool {enabled[0]} --type merge -p "
            '\'{"spec":{"disabled":true,"natOutgoing":false}}\')'
            if enabled
            else ""
        )
        plan.findings.append(
            Finding(
                Severity.ERROR,
                "ippools.overlap",
                f"{cov.what} overlaps {', '.join(cov.collisions)}: "
                + ("AWS and on-prem" if not cov.peer else f"{cov.peer}'s and {obs.backend}'s")
                + " addresses collide and federated endpoints would be ambiguous; fedkeeper "
                f"writes no pool for {vpc} — "
                + ("disassociate it from the VPC" if not cov.peer else f"renumber {cov.peer}")
                + f" or renumber the on-prem range{fix}",
            )
        )
    for p in cov.covering:
        problems = would_nat_or_allocate(p)
        if problems and _spec(p).get("disabled"):
            plan.findings.append(
                Finding(
                    Severity.ERROR,
                    "ippools.coverage",
                    f"on-prem pool {_label(p)} covers {cov.what} but {'; '.join(problems)} "
                    f"(fedkeeper does not own it): set natOutgoing false "
                    f"(kubectl patch ippool {_name(p)} --type merge -p "
                    '\'{"spec":{"natOutgoing":false}}\'), or let fedkeeper keep it with '
                    "`fedkeeper adopt --apply`",
                )
            )
    if not needed or not cov.usable or not cov.covering:
        return
    names = ", ".join(_label(p) for p in cov.covering)
    rest = (
        f"; fedkeeper keeps pools for the rest: {', '.join(str(n) for n in cov.remainder)}"
        if cov.remainder
        else "; fedkeeper writes no pool for it"
    )
    plan.findings.append(
        Finding(
            Severity.INFO,
            "ippools.coverage",
            f"{cov.what} is {'partly ' if cov.remainder else ''}covered by on-prem pool "
            f"{names}, which fedkeeper does not own: Felix masquerades nothing towards a pool's "
            f"CIDR{rest} (`fedkeeper adopt` can take it over)",
        )
    )


def _plan_owned_drift(
    existing: Mapping[str, Any],
    want: dict[str, Any],
    plan: Plan,
    *,
    adopting: bool = False,
    backend: Backend = "onprem",
) -> None:
    name = _name(existing)
    actual = _spec(existing)
    meta = _meta(existing)
    rv = meta.get("resourceVersion")
    moved = [
        f
        for f in IMMUTABLE
        if f in want["spec"]
        and (
            _net(actual.get(f)) != _net(want["spec"][f])
            if f == "cidr"
            else actual.get(f) != want["spec"][f]
        )
    ]
    if moved:
        why = (
            f"owned pool {name} has {moved[0]} {actual.get(moved[0])!r}, which Calico cannot change"
        )
        plan.changes.append(
            _pool_change(
                backend,
                name,
                Action.DELETE,
                f"{why}; deleting it to re-create it with {want['spec']['cidr']}",
                {"op": "delete"},
                rv,
            )
        )
        plan.changes.append(
            _pool_change(
                backend,
                name,
                Action.CREATE,
                f"{why}; re-creating it as a disabled pool for {want['spec']['cidr']}",
                {"op": "create", "body": want},
            )
        )
        return
    drift = _drift(actual, want["spec"])
    labels = meta.get("labels") or {}
    label_drift = {k: v for k, v in want["metadata"]["labels"].items() if labels.get(k) != v}
    if not drift and not label_drift:
        return
    patch: dict[str, Any] = {}
    if drift:
        patch["spec"] = {k: v for k, v in want["spec"].items() if k != "cidr"}
    if label_drift:
        patch["metadata"] = {"labels": label_drift}
    reason = (
        f"adopted pool {name}: labelled {MANAGED_BY_LABEL}={MANAGED_BY_VALUE} only, under the "
        f"name this federation gives it; adding {FEDERATION_LABEL}="
        f"{want['metadata']['labels'][FEDERATION_LABEL]}"
        + (f" and restoring {'; '.join(drift)}" if drift else "")
        if adopting
        else f"owned pool {name} drifted: {'; '.join(drift) or 'labels changed'}; "
        "restoring a disabled, non-NAT pool"
    )
    plan.changes.append(
        _pool_change(
            backend,
            name,
            Action.UPDATE,
            reason,
            {"op": "patch", "patch_type": "merge", "patch": patch},
            rv,
        )
    )


def _plan_prune(
    obs: IpPoolsObservation,
    covs: Sequence[Coverage],
    desired: Mapping[str, Any],
    needed: bool,
    plan: Plan,
) -> None:
    if not obs.targets() or not obs.complete:
        return  # never prune on an empty or failed observation
    kept_adopted = {
        _name(p) for c in covs if c.usable and needed for p in c.adopted if not opted_out(p)
    }
    for p in obs.pools:
        name = _name(p)
        if not ours(p, obs.federation) or opted_out(p) or name in desired:
            continue
        if name in kept_adopted:
            continue
        why = _why_pruned(obs, covs, p, needed)
        plan.changes.append(
            _pool_change(
                obs.backend,
                name,
                Action.DELETE,
                f"owned pool {name} is no longer needed: {why}; deleting it",
                {"op": "delete"},
                _meta(p).get("resourceVersion"),
            )
        )


def _why_pruned(
    obs: IpPoolsObservation, covs: Sequence[Coverage], p: Mapping[str, Any], needed: bool
) -> str:
    cidr = str(_spec(p).get("cidr"))
    net = _v4(cidr)
    cov = next((c for c in covs if net is not None and net.overlaps(c.vpc_cidr)), None)
    if cov is None and obs.peer_cidrs:
        return f"its CIDR {cidr} is no CIDR of a peer {obs.backend} federates with any more"
    if cov is None:
        return f"its CIDR {cidr} is no longer associated with the VPC"
    if not needed:
        return (
            "no on-prem pool does outgoing NAT any more"
            if obs.policy is DisabledPoolPolicy.AUTO
            else f"disabled_pool_policy is {obs.policy.value}"
        )
    if not cov.usable:
        return f"{cov.what} overlaps {', '.join(cov.collisions)}"
    blocks = ", ".join(str(n) for n in cov.remainder) or "nothing"
    return (
        f"the part of {cov.what} no other pool covers is now {blocks}"
        f" (covered by {', '.join(_label(c) for c in cov.covering) or 'no other pool'})"
    )
