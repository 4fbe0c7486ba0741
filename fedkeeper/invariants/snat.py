"""Invariant 2 — snat: the VPC CNI leaves SNAT to the NAT gateway (external SNAT).

With ``AWS_VPC_K8S_CNI_EXTERNALSNAT=true`` pods keep their own IPs towards the VPN, so the
on-prem cluster sees (and federates) real EKS pod IPs. When vpc-cni is a managed add-on, EKS
owns the aws-node env through server-side apply, so the setting is enforced through the
add-on, never by editing aws-node:

* configurationValues lack ``"true"``: ``UpdateAddon`` with the merged document (every other
  key kept) and ``resolveConflicts: PRESERVE``, which keeps what others changed by hand;
* configurationValues say ``"true"`` but the live aws-node does not (a hand edit, which
  PRESERVE would keep): ``UpdateAddon`` re-sending the same configurationValues with
  ``resolveConflicts: OVERWRITE``, which takes hand-edited add-on fields back to the
  add-on's values (EKS API reference, UpdateAddon).

After an add-on update the engine re-reads (``settle``) and the DaemonSet is checked again;
one that still disagrees after an OVERWRITE is an error finding, not another update. A
self-managed vpc-cni gets a strategic-merge patch of the aws-node container env. fedkeeper
never writes ``"false"``: flipping external SNAT off breaks running pods' routes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from fedkeeper.invariants import Plan
from fedkeeper.model import (
    IGNORE_ANNOTATION,
    Action,
    Addon,
    Backend,
    Change,
    Deferred,
    Finding,
    Invariant,
    Severity,
)

EXTERNAL_SNAT = "AWS_VPC_K8S_CNI_EXTERNALSNAT"
ADDON_NAME = "vpc-cni"
DAEMONSET = "aws-node"
DAEMONSET_NAMESPACE = "kube-system"
CONTAINER = "aws-node"
# PRESERVE keeps values the user set on the cluster for fields we do not send.
RESOLVE_CONFLICTS = "PRESERVE"
# OVERWRITE takes hand-edited add-on fields back to the add-on's values.
RESOLVE_OVERWRITE = "OVERWRITE"
_BUSY_STATUSES = frozenset({"CREATING", "UPDATING", "DELETING"})


@dataclass(frozen=True)
class SnatObservation:
    cluster: str
    addon: Addon | None
    daemonset: dict[str, Any] | None
    # resolveConflicts of an add-on update this run already applied (None: none yet)
    updated_with: str | None = None
    backend: Backend = "eks"  # the EKS cluster's mesh name (the backend of aws-node's change)


def parse_configuration_values(text: str) -> dict[str, Any]:
    """The add-on's configurationValues (JSON or YAML, as EKS accepts); ValueError if bad."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"not JSON or YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError("not a mapping")
    return data


def merged_configuration(current: dict[str, Any]) -> dict[str, Any]:
    """``current`` with env.AWS_VPC_K8S_CNI_EXTERNALSNAT set to "true"; all else kept."""
    env = current.get("env")
    env = dict(env) if isinstance(env, dict) else {}
    env[EXTERNAL_SNAT] = "true"
    return {**current, "env": env}


def _containers(ds: Any) -> list[dict[str, Any]]:
    """The pod template's containers that are objects (entries of any other shape skipped)."""
    node: Any = ds
    for key in ("spec", "template", "spec"):
        node = node.get(key) if isinstance(node, dict) else None
    containers = node.get("containers") if isinstance(node, dict) else None
    return [c for c in containers if isinstance(c, dict)] if isinstance(containers, list) else []


def env_problems(ds: Any) -> list[str]:
    """What in aws-node's container env is not of the shape a Kubernetes EnvVar has."""
    problems: list[str] = []
    for c in _containers(ds):
        if c.get("name") != CONTAINER:
            continue
        env = c.get("env")
        if env is not None and not isinstance(env, list):
            problems.append(f"containers[{CONTAINER}].env is not a list")
            continue
        for i, e in enumerate(env or []):
            if not isinstance(e, dict):
                problems.append(f"containers[{CONTAINER}].env[{i}] is not an object")
            elif not isinstance(e.get("name"), str):
                problems.append(f"containers[{CONTAINER}].env[{i}].name is not a string")
    return problems


def daemonset_env(ds: dict[str, Any]) -> str | None:
    """The aws-node container's EXTERNALSNAT value (None when unset or no such container)."""
    for c in _containers(ds):
        if c.get("name") == CONTAINER:
            env = c.get("env")
            for e in env if isinstance(env, list) else []:
                if isinstance(e, dict) and e.get("name") == EXTERNAL_SNAT:
                    return str(e.get("value", ""))
            return None
    return None


def _has_container(ds: dict[str, Any]) -> bool:
    return any(c.get("name") == CONTAINER for c in _containers(ds))


def _opted_out(obj: dict[str, Any] | None) -> bool:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict):
        return False
    return str(annotations.get(IGNORE_ANNOTATION, "")).lower() == "true"


def _shown(value: str | None) -> str:
    return "unset" if value is None else f'"{value}"'


def plan_snat(obs: SnatObservation) -> Plan:
    plan = Plan()
    if _opted_out(obs.daemonset):
        plan.findings.append(
            Finding(
                Severity.INFO,
                "snat.ignored",
                f"DaemonSet {DAEMONSET_NAMESPACE}/{DAEMONSET} carries {IGNORE_ANNOTATION}=true; "
                "external SNAT is not enforced",
            )
        )
        return plan
    problems = env_problems(obs.daemonset) if obs.daemonset is not None else []
    if problems:
        plan.findings.append(
            Finding(
                Severity.WARNING,
                "snat.malformed",
                f"eks DaemonSet {DAEMONSET_NAMESPACE}/{DAEMONSET} is malformed: "
                f"{'; '.join(problems)}; fedkeeper reads only {EXTERNAL_SNAT} there and leaves "
                "the rest to aws-node's owner (the vpc-cni add-on, or whoever applied it)",
                f"eks DaemonSet {DAEMONSET_NAMESPACE}/{DAEMONSET}",
            )
        )
    if obs.addon is not None:
        _plan_addon(obs, obs.addon, plan)
    elif obs.daemonset is not None:
        _plan_self_managed(obs.daemonset, plan, obs.backend)
    else:
        plan.findings.append(
            Finding(
                Severity.ERROR,
                "snat.cni",
                f"cluster {obs.cluster} has neither a vpc-cni add-on nor an aws-node DaemonSet; "
                "is the AWS VPC CNI installed?",
            )
        )
    return plan


def _plan_addon(obs: SnatObservation, addon: Addon, plan: Plan) -> None:
    try:
        current = parse_configuration_values(addon.configuration_values)
    except ValueError as exc:
        plan.findings.append(
            Finding(
                Severity.ERROR,
                "snat.addon",
                f"vpc-cni add-on configurationValues cannot be read ({exc}); fix them by hand — "
                "fedkeeper will not overwrite what it cannot parse",
            )
        )
        return
    env = current.get("env") if isinstance(current.get("env"), dict) else {}
    value = env.get(EXTERNAL_SNAT) if isinstance(env, dict) else None
    value_s = None if value is None else str(value).lower()
    if addon.status in _BUSY_STATUSES or addon.status == "DEGRADED":
        _wait_for_addon(obs, addon, value_s, plan)
        return
    if addon.status == "UPDATE_FAILED":
        plan.findings.append(
            Finding(
                Severity.WARNING,
                "snat.addon",
                "the vpc-cni add-on's last update failed (UPDATE_FAILED"
                + (f": {'; '.join(addon.issues)}" if addon.issues else "")
                + "); see `aws eks describe-addon` and DescribeUpdate for why",
            )
        )
    if value_s != "true":
        kept = _other_keys(current)
        _update_addon(
            obs,
            plan,
            merged_configuration(current),
            RESOLVE_CONFLICTS,
            f"vpc-cni add-on configurationValues has {EXTERNAL_SNAT} "
            f"{_shown(value_s)} (an add-on update can reset it): pods would be SNATed "
            'to their node\'s IP towards on-prem; setting it to "true"'
            + (f", keeping {', '.join(kept)}" if kept else ""),
        )
        return
    if obs.daemonset is None:
        return
    live = daemonset_env(obs.daemonset)
    if live == "true":
        return
    if obs.updated_with == RESOLVE_OVERWRITE:
        plan.findings.append(
            Finding(
                Severity.ERROR,
                "snat.daemonset",
                f"after an add-on update with resolveConflicts OVERWRITE the live aws-node still "
                f"has {EXTERNAL_SNAT} {_shown(live)}: pods are SNATed towards on-prem; check the "
                "add-on's health (DescribeAddon issues) and who else manages aws-node",
            )
        )
        return
    others = _other_keys(current)
    _update_addon(
        obs,
        plan,
        current,
        RESOLVE_OVERWRITE,
        f"the live aws-node has {EXTERNAL_SNAT} {_shown(live)} although the add-on's "
        'configurationValues set "true" (edited by hand; an update with PRESERVE would '
        "keep that): pods are SNATed towards on-prem; repairing through the add-on — "
        "UpdateAddon with the same configurationValues"
        + (f" (keeping {', '.join(others)})" if others else "")
        + " and resolveConflicts OVERWRITE, which also returns any other hand-edited "
        "add-on field to the add-on's value; the DaemonSet is checked after the update",
    )


def _wait_for_addon(obs: SnatObservation, addon: Addon, value_s: str | None, plan: Plan) -> None:
    """A busy or degraded add-on is not updated (EKS answers 409 ResourceInUse while an
    operation runs): the work is deferred to the next trigger, never retried at once."""
    live = daemonset_env(obs.daemonset) if obs.daemonset is not None else None
    state = addon.status + (f": {'; '.join(addon.issues)}" if addon.issues else "")
    target = f"aws/Addon/{obs.cluster}/{ADDON_NAME}"
    if addon.status == "DEGRADED":
        reason = (
            f"the vpc-cni add-on is DEGRADED ({state}); fedkeeper does not update it until "
            "EKS reports it healthy — re-checked at the next trigger"
        )
        plan.findings.append(
            Finding(
                Severity.WARNING,
                "snat.addon",
                f"vpc-cni add-on is {state}, with {EXTERNAL_SNAT} {_shown(value_s)} "
                f"(aws-node has {_shown(live)}); fix its health (DescribeAddon issues), "
                "fedkeeper waits for it",
            )
        )
    elif obs.updated_with is not None:
        # fedkeeper's own update, applied in this run: nothing to alert anyone about.
        reason = (
            f"fedkeeper's update of the vpc-cni add-on is rolling out ({addon.status}); "
            "aws-node is checked at the next trigger"
        )
    else:
        reason = (
            f"the vpc-cni add-on is {addon.status} (an operation is under way, and EKS takes "
            "no other meanwhile); re-checked at the next trigger"
        )
        if value_s != "true" or live != "true":
            setting = value_s == "true"
            plan.findings.append(
                Finding(
                    Severity.INFO if setting else Severity.WARNING,
                    "snat.addon",
                    f"vpc-cni add-on is {addon.status} with {EXTERNAL_SNAT} {_shown(value_s)} "
                    f"(aws-node has {_shown(live)}); will re-check when the operation finishes",
                )
            )
    plan.deferred.append(Deferred(target, reason))


def _other_keys(current: dict[str, Any]) -> list[str]:
    """The configured keys besides EXTERNALSNAT (env keys first), which an update keeps."""
    env = current.get("env")
    keys = sorted(k for k in env if k != EXTERNAL_SNAT) if isinstance(env, dict) else []
    return keys + sorted(k for k in current if k != "env")


def _update_addon(
    obs: SnatObservation, plan: Plan, values: dict[str, Any], resolve: str, reason: str
) -> None:
    """An UpdateAddon with the whole ``values`` document; the engine re-reads after it."""
    plan.changes.append(
        Change(
            backend="aws",
            kind="Addon",
            name=f"{obs.cluster}/{ADDON_NAME}",
            action=Action.UPDATE,
            invariant=Invariant.SNAT,
            reason=reason,
            payload={
                "op": "update_addon",
                "cluster": obs.cluster,
                "addon": ADDON_NAME,
                "configuration_values": json.dumps(values, sort_keys=True),
                "resolve_conflicts": resolve,
            },
        )
    )
    plan.settle = True  # re-read: the DaemonSet is checked after the update


def _plan_self_managed(ds: dict[str, Any], plan: Plan, backend: Backend) -> None:
    if not _has_container(ds):
        plan.findings.append(
            Finding(
                Severity.ERROR,
                "snat.daemonset",
                f"DaemonSet {DAEMONSET_NAMESPACE}/{DAEMONSET} has no container named {CONTAINER}",
            )
        )
        return
    live = daemonset_env(ds)
    if live == "true":
        return
    meta = ds.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    plan.changes.append(
        Change(
            backend=backend,
            kind="DaemonSet",
            name=DAEMONSET,
            namespace=DAEMONSET_NAMESPACE,
            action=Action.UPDATE,
            invariant=Invariant.SNAT,
            reason=(
                f"self-managed vpc-cni: aws-node has {EXTERNAL_SNAT} {_shown(live)}; pods "
                'would be SNATed to their node\'s IP towards on-prem; setting it to "true" in '
                "the aws-node container env only"
            ),
            payload={
                "op": "patch",
                "patch_type": "strategic",
                "patch": {
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [
                                    {
                                        "name": CONTAINER,
                                        "env": [{"name": EXTERNAL_SNAT, "value": "true"}],
                                    }
                                ]
                            }
                        }
                    }
                },
            },
            resource_version=meta.get("resourceVersion"),
        )
    )
