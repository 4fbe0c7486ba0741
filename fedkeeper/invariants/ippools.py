"""Invariant 3 — ippools: on-prem does not SNAT traffic to the VPC.

Felix masquerades a packet from a natOutgoing pool only when its destination is in no IP
pool; so for every IPv4 CIDR of the VPC the on-prem cluster gets one owned, disabled pool
(``disabled: true, natOutgoing: false, disableBGPExport: true``, no encapsulation) whenever
an enabled on-prem pool does outgoing NAT (policy ``auto``; ``always``/``never`` force it).

Pools are named ``fedkeeper-aws-<cidr with dashes>`` and labelled as owned; only owned
pools are patched or deleted, and owned pools are pruned only on a successful, non-empty read
of the VPC. A pool we do not own that overlaps a VPC CIDR is reported, never touched (Calico
would reject ours as overlapping anyway).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fedkeeper.calico_v3 import ippool_field
from fedkeeper.config import DisabledPoolPolicy
from fedkeeper.invariants import Plan
from fedkeeper.model import (
    IGNORE_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    Action,
    Change,
    Finding,
    Invariant,
    Severity,
)

FEDERATION_LABEL = "fedkeeper.io/federation"
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


def pool_name(cidr: str) -> str:
    """``10.100.0.0/16`` → ``fedkeeper-aws-10-100-0-0-16``."""
    return POOL_PREFIX + cidr.replace(".", "-").replace("/", "-")


def owned(obj: Mapping[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE)


def opted_out(obj: Mapping[str, Any]) -> bool:
    annotations = obj.get("metadata", {}).get("annotations") or {}
    return str(annotations.get(IGNORE_ANNOTATION, "")).lower() == "true"


def _name(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _net(cidr: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return None


def nat_pools(obs: IpPoolsObservation) -> list[Mapping[str, Any]]:
    """Enabled, natOutgoing pools on-prem (ours excluded): the reason for disabled pools."""
    return [
        p
        for p in obs.pools
        if not owned(p) and not _spec(p).get("disabled") and _spec(p).get("natOutgoing")
    ]


def desired_pools(obs: IpPoolsObservation) -> dict[str, dict[str, Any]]:
    """Name → desired IPPool object for every VPC CIDR, when the policy calls for pools."""
    needed = obs.policy is DisabledPoolPolicy.ALWAYS or (
        obs.policy is DisabledPoolPolicy.AUTO and bool(nat_pools(obs))
    )
    if not needed:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for cidr in obs.vpc_cidrs:
        net = _net(cidr)
        if net is None or net.version != 4:
            continue
        name = pool_name(str(net))
        out[name] = {
            "apiVersion": obs.api_version,
            "kind": "IPPool",
            "metadata": {
                "name": name,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, FEDERATION_LABEL: obs.federation},
            },
            "spec": {"cidr": str(net), **DESIRED_SPEC},
        }
    return out


def _why_needed(obs: IpPoolsObservation) -> str:
    if obs.policy is DisabledPoolPolicy.ALWAYS:
        return "disabled_pool_policy is always"
    names = ", ".join(f"{_name(p)} ({_spec(p).get('cidr')})" for p in nat_pools(obs))
    return f"on-prem pool {names} does outgoing NAT, so traffic to AWS pods would be SNATed"


def _pool_change(
    name: str,
    action: Action,
    reason: str,
    payload: dict[str, Any],
    resource_version: str | None = None,
) -> Change:
    return Change(
        backend="onprem",
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
    plan = Plan()
    desired = desired_pools(obs)
    by_name = {_name(p): p for p in obs.pools}
    for name, want in desired.items():
        cidr = want["spec"]["cidr"]
        want_net = _net(cidr)
        blockers = [
            p
            for p in obs.pools
            if _name(p) != name
            and not owned(p)
            and want_net is not None
            and (net := _net(_spec(p).get("cidr"))) is not None
            and net.version == want_net.version
            and net.overlaps(want_net)
        ]
        for p in blockers:
            plan.findings.append(
                Finding(
                    Severity.WARNING,
                    "ippools.foreign",
                    f"IP pool {_name(p)} ({_spec(p).get('cidr')}) is not managed by fedkeeper and "
                    f"overlaps VPC CIDR {cidr}; fedkeeper will not write a pool for {cidr} — "
                    "if that pool is disabled with natOutgoing false it already does the job, "
                    "otherwise fix or remove it",
                )
            )
        existing = by_name.get(name)
        if existing is None:
            if blockers:
                continue
            plan.changes.append(
                _pool_change(
                    name,
                    Action.CREATE,
                    (
                        f"VPC CIDR {cidr} has no disabled IP pool on-prem and {_why_needed(obs)}; "
                        "creating a disabled pool so Felix does not masquerade it"
                    ),
                    {"op": "create", "body": want},
                )
            )
            continue
        if not owned(existing):
            plan.findings.append(
                Finding(
                    Severity.WARNING,
                    "ippools.foreign",
                    f"IP pool {name} exists but is not labelled {MANAGED_BY_LABEL}="
                    f"{MANAGED_BY_VALUE}; fedkeeper leaves it alone",
                )
            )
            continue
        if opted_out(existing):
            continue
        _plan_owned_drift(existing, want, plan)
    _plan_prune(obs, desired, plan)
    return plan


def _plan_owned_drift(existing: Mapping[str, Any], want: dict[str, Any], plan: Plan) -> None:
    name = _name(existing)
    actual = _spec(existing)
    meta = existing.get("metadata", {})
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
                name,
                Action.DELETE,
                f"{why}; deleting it to re-create it with {want['spec']['cidr']}",
                {"op": "delete"},
                rv,
            )
        )
        plan.changes.append(
            _pool_change(
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
    plan.changes.append(
        _pool_change(
            name,
            Action.UPDATE,
            (
                f"owned pool {name} drifted: {'; '.join(drift) or 'labels changed'}; "
                "restoring a disabled, non-NAT pool"
            ),
            {"op": "patch", "patch_type": "merge", "patch": patch},
            rv,
        )
    )


def _plan_prune(obs: IpPoolsObservation, desired: Mapping[str, Any], plan: Plan) -> None:
    if not obs.vpc_cidrs:
        return  # never prune on an empty or failed observation
    vpc = {str(n) for c in obs.vpc_cidrs if (n := _net(c)) is not None}
    for p in obs.pools:
        name = _name(p)
        if not owned(p) or opted_out(p) or name in desired:
            continue
        labels = p.get("metadata", {}).get("labels") or {}
        if labels.get(FEDERATION_LABEL) not in (None, obs.federation):
            continue  # another federation's pool
        cidr = str(_spec(p).get("cidr"))
        net = _net(cidr)
        if net is not None and str(net) in vpc:
            why = (
                "no enabled on-prem pool does outgoing NAT any more"
                if obs.policy is DisabledPoolPolicy.AUTO
                else f"disabled_pool_policy is {obs.policy.value}"
            )
        else:
            why = f"its CIDR {cidr} is no longer associated with the VPC"
        plan.changes.append(
            _pool_change(
                name,
                Action.DELETE,
                f"owned pool {name} is no longer needed: {why}; deleting it",
                {"op": "delete"},
                p.get("metadata", {}).get("resourceVersion"),
            )
        )
