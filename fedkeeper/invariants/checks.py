"""Invariant 6 — checks (read-only findings): the federation's preconditions.

* EKS runs Calico in policy-only mode: it has no enabled IP pool.
* On-prem has an enabled pool for its pods and BGP peers towards the VPN router.
* The Federated Services Controller is enabled on both clusters.
* No VPC CIDR overlaps an on-prem IP pool (fedkeeper's own disabled pools excepted).
* A CloudTrail trail with logging covers the region: EventBridge delivers "AWS API Call via
  CloudTrail" events (the route and add-on rules) only then.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fedkeeper.invariants import Plan
from fedkeeper.invariants.ippools import owned, pool_problems
from fedkeeper.model import Finding, Severity, Trail

FEDERATED_SERVICES = "federatedservices"


@dataclass(frozen=True)
class ControllerState:
    """What says whether kube-controllers runs the federated services controller."""

    config: Mapping[str, Any] | None  # KubeControllersConfiguration "default" (operator installs)
    deployment: Mapping[str, Any] | None  # calico-kube-controllers (manifest installs)


@dataclass(frozen=True)
class ChecksObservation:
    vpc_cidrs: Sequence[str]
    eks_pools: Sequence[Mapping[str, Any]] | None  # None: EKS not observed
    onprem_pools: Sequence[Mapping[str, Any]] | None  # None: on-prem not observed
    onprem_bgp_peers: Sequence[Mapping[str, Any]] | None
    eks_controllers: ControllerState | None
    onprem_controllers: ControllerState | None
    region: str = ""
    trails: Sequence[Trail] | None = None  # None: CloudTrail not observed
    schedule: str = ""  # the repair schedule that catches what events miss


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name", "")) if isinstance(meta, Mapping) else ""


def _containers(deployment: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The pod template's containers that are objects (entries of any other shape skipped)."""
    node: Any = _spec(deployment).get("template")
    node = node.get("spec") if isinstance(node, Mapping) else None
    containers = node.get("containers") if isinstance(node, Mapping) else None
    return [c for c in containers if isinstance(c, Mapping)] if isinstance(containers, list) else []


def _env(container: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    env = container.get("env")
    return [e for e in env if isinstance(e, Mapping)] if isinstance(env, list) else []


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def federated_services_enabled(state: ControllerState) -> bool | None:
    """True/False when known; None when neither source is present."""
    known = False
    if state.deployment is not None:
        known = True
        for c in _containers(state.deployment):
            for e in _env(c):
                if e.get("name") == "ENABLED_CONTROLLERS":
                    enabled = {x.strip().lower() for x in str(e.get("value", "")).split(",")}
                    if FEDERATED_SERVICES in enabled:
                        return True
    if state.config is not None:
        known = True
        controllers = _spec(state.config).get("controllers") or {}
        if isinstance(controllers, Mapping) and controllers.get("federatedServices") is not None:
            return True
    return False if known else None


def trail_findings(region: str, trails: Sequence[Trail], schedule: str = "") -> list[Finding]:
    """Whether API-call events can reach EventBridge in ``region``: a logging trail covers it."""
    covering = [t for t in trails if t.covers(region)]
    if any(t.logging for t in covering):
        return []
    unknown = [t for t in covering if t.logging is None]
    if unknown:
        names = ", ".join(f"{t.name} ({t.status_error or 'status unknown'})" for t in unknown)
        return [
            Finding(
                Severity.INFO,
                "checks.cloudtrail",
                f"trails covering {region} whose logging status could not be read: {names}; "
                "API-call events arrive only while one of them logs",
            )
        ]
    stopped = ", ".join(t.name for t in covering)
    why = (
        f"trail(s) {stopped} cover {region} but do not log"
        if covering
        else f"no CloudTrail trail covers {region}"
    )
    when = f" ({schedule})" if schedule else ""
    return [
        Finding(
            Severity.WARNING,
            "checks.cloudtrail",
            f"{why}: API-call events cannot arrive; repairs wait for the schedule{when}. "
            "Start logging on the trail, or set aws.cloudtrail: create and deploy",
        )
    ]


OPERATOR_FIX = (
    "kubectl patch installation.operator.tigera.io default --type merge "
    """-p '{"spec":{"variant":"TigeraSecureEnterprise"}}'"""
)
CONFIG_FIX = (
    "kubectl patch kubecontrollersconfiguration default --type merge "
    """-p '{"spec":{"controllers":{"federatedServices":{"reconcilerPeriod":"5m"}}}}'"""
)


def _enabled_controllers(deployment: Mapping[str, Any]) -> list[str] | None:
    for c in _containers(deployment):
        for e in _env(c):
            if e.get("name") == "ENABLED_CONTROLLERS":
                return [x.strip() for x in str(e.get("value", "")).split(",") if x.strip()]
    return None


def enable_federated_services(state: ControllerState) -> str:
    """The exact command that turns the Federated Services Controller on for ``state``.

    Operator installs: the operator runs kube-controllers with ``federatedservices`` for the
    Calico Enterprise variant (tigera/operator ``pkg/render/kubecontrollers``), and would
    revert a hand-edited Deployment. Manifest installs: append it to ``ENABLED_CONTROLLERS``.
    Otherwise: the ``federatedServices`` block of the KubeControllersConfiguration.
    """
    deployment = state.deployment
    if deployment is not None:
        meta = deployment.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        owners = meta.get("ownerReferences")
        owners = owners if isinstance(owners, list) else []
        if any(isinstance(o, Mapping) and o.get("kind") == "Installation" for o in owners):
            return OPERATOR_FIX
        enabled = _enabled_controllers(deployment)
        if enabled is not None:
            namespace = meta.get("namespace", "calico-system")
            name = meta.get("name", "calico-kube-controllers")
            value = ",".join([*enabled, FEDERATED_SERVICES])
            return f"kubectl -n {namespace} set env deployment/{name} ENABLED_CONTROLLERS={value}"
    return CONFIG_FIX


def plan_checks(obs: ChecksObservation) -> Plan:
    plan = Plan()
    f = plan.findings
    if obs.trails is not None:
        f.extend(trail_findings(obs.region, obs.trails, obs.schedule))
    if obs.eks_pools is not None:
        for p in obs.eks_pools:
            problems = pool_problems(p)
            if problems:
                # (On-prem pools are named by the ippools invariant, which keeps them.)
                f.append(
                    Finding(
                        Severity.WARNING,
                        "checks.malformed",
                        f"eks IPPool {_name(p)} is malformed: {'; '.join(problems[:4])}; "
                        "fedkeeper only reads EKS pools, and leaves it alone",
                        f"eks IPPool {_name(p)}",
                    )
                )
            elif not _spec(p).get("disabled"):
                f.append(
                    Finding(
                        Severity.WARNING,
                        "checks.eks-pools",
                        f"EKS has enabled IP pool {_name(p)} ({_spec(p).get('cidr')}); Calico on "
                        "EKS runs policy-only (the VPC CNI assigns pod IPs) and should have none",
                    )
                )
    if obs.onprem_pools is not None:
        enabled = [
            p
            for p in obs.onprem_pools
            if not _spec(p).get("disabled") and not owned(p) and not pool_problems(p)
        ]
        if not enabled:
            f.append(
                Finding(
                    Severity.WARNING,
                    "checks.onprem-pools",
                    "on-prem has no enabled IP pool: its pods get no addresses to federate",
                )
            )
        for p in enabled:  # disabled pools only exclude ranges from NAT: no collision
            try:
                net = ipaddress.ip_network(str(_spec(p).get("cidr")), strict=False)
            except ValueError:
                continue
            for cidr in obs.vpc_cidrs:
                vpc = ipaddress.ip_network(cidr, strict=False)
                if net.version == vpc.version and net.overlaps(vpc):
                    f.append(
                        Finding(
                            Severity.ERROR,
                            "checks.overlap",
                            f"VPC CIDR {cidr} overlaps on-prem IP pool {_name(p)} ({net}): "
                            "federated endpoints would collide; renumber one side",
                        )
                    )
    if obs.onprem_bgp_peers is not None and not obs.onprem_bgp_peers:
        f.append(
            Finding(
                Severity.WARNING,
                "checks.bgp",
                "on-prem has no BGPPeer: pod routes are not advertised to the VPN router, so "
                "AWS cannot reach on-prem pods",
            )
        )
    for side, state in (("EKS", obs.eks_controllers), ("on-prem", obs.onprem_controllers)):
        if state is None:
            continue
        on = federated_services_enabled(state)
        if not on:
            f.append(
                Finding(
                    Severity.WARNING,
                    "checks.federated-services",
                    f"the Federated Services Controller is not enabled on {side} "
                    + (
                        "(KubeControllersConfiguration default has no federatedServices)"
                        if on is False
                        else "(no KubeControllersConfiguration or calico-kube-controllers found)"
                    )
                    + f"; enable it: {enable_federated_services(state)}",
                )
            )
    return plan
