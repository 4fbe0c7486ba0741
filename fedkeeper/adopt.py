"""Adoption: take over a federation set up by hand, as an explicit, reviewable step.

``fedkeeper adopt`` (and the repair Lambda's ``{"action": "adopt", "mode": ...}``) lists every
object fedkeeper does not own that does the job of one it would create: the on-prem IP pools
covering the VPC, the RCC on each cluster that reads the other cluster's API server and its
access Secret, the remote ServiceAccount with its token Secret and RBAC, and Typha's Role and
RoleBinding. In mode ``apply`` it labels them as owned by this federation
(``app.kubernetes.io/managed-by: fedkeeper``, ``fedkeeper.io/federation: <name>``), keeping
their names and specs; from then on the invariants keep them like anything fedkeeper
created (drift restored, pruned when no longer needed). A reconcile never takes over an
object fedkeeper did not label: the one exception is an object labelled only
``app.kubernetes.io/managed-by: fedkeeper`` (the old labelling) under exactly the name this
federation gives it, which the invariants adopt on the next apply with the same labels
(:func:`fedkeeper.model.owner_labels`). This command also takes over such objects under
other names; objects of another federation are never listed.

The plan runs through the engine (:func:`fedkeeper.service.reconcile`) with adoption
runners, so it gets the same Report, conflict handling (a write carries the object's
``resourceVersion``), call counting and kill switch as every other run.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from typing import Any

from fedkeeper.invariants import Plan
from fedkeeper.invariants.ippools import (
    IpPoolsObservation,
    coverage,
    pool_problems,
    pools_needed,
)
from fedkeeper.invariants.rcc import (
    ACCESS_SECRET_ROLE,
    ROLE_LABEL,
    SA_NAME_ANNOTATION,
    SA_TOKEN_TYPE,
    ClusterSide,
    RccNames,
    RccObservation,
    access_secret_ref,
    desired_remote_objects,
    desired_typha_access,
    federation_rcc,
    normalized_server,
    rcc_reads,
    role_lacks,
    role_ref_drift,
    subjects_drift,
)
from fedkeeper.invariants.shapes import (
    binding_problems,
    metadata_problems,
    rules_problems,
    secret_kubeconfig,
)
from fedkeeper.model import (
    IGNORE_ANNOTATION,
    Action,
    Backend,
    Change,
    Finding,
    Invariant,
    Ownership,
    Report,
    Scope,
    Severity,
    owner_labels,
    ownership,
)
from fedkeeper.service import Connections, ModeName, Run, Runner, reconcile

ADOPT_SCOPE = Scope.of(Invariant.IPPOOLS, Invariant.RCC)


def _meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def _takeable(obj: Mapping[str, Any] | None, federation: str) -> bool:
    """Present, not opted out, and fedkeeper's for no federation (or labelled the old way)."""
    if obj is None:
        return False
    annotations = _meta(obj).get("annotations")
    if isinstance(annotations, Mapping) and (
        str(annotations.get(IGNORE_ANNOTATION, "")).lower() == "true"
    ):
        return False
    return ownership(obj, federation) in (Ownership.FOREIGN, Ownership.UNCLAIMED)


def adoption_change(
    backend: Backend,
    kind: str,
    obj: Mapping[str, Any],
    federation: str,
    invariant: Invariant,
    job: str,
    *,
    role: str | None = None,
) -> Change:
    """A merge patch adding fedkeeper's ownership labels, nothing else; name and spec kept."""
    meta = _meta(obj)
    labels = owner_labels(federation)
    if role:
        labels[ROLE_LABEL] = role
    return Change(
        backend=backend,
        kind=kind,
        name=str(meta.get("name")),
        namespace=meta.get("namespace"),
        action=Action.UPDATE,
        invariant=invariant,
        reason=f"{job}: labelling it as owned by federation {federation}, name and spec kept",
        payload={"op": "patch", "patch_type": "merge", "patch": {"metadata": {"labels": labels}}},
        resource_version=meta.get("resourceVersion"),
    )


def plan_pool_adoption(obs: IpPoolsObservation) -> Plan:
    """Unowned disabled pools inside a VPC CIDR; the others are findings saying why not."""
    plan = Plan()
    needed = pools_needed(obs)
    for cov in coverage(obs):
        for p in cov.covering:
            if not _takeable(p, obs.federation):
                continue
            name, cidr = _meta(p).get("name"), (p.get("spec") or {}).get("cidr")
            why_not = None
            problems = pool_problems(p)
            if problems:
                why_not = f"it is malformed ({'; '.join(problems[:3])})"
            elif not cov.usable:
                why_not = f"VPC CIDR {cov.vpc_cidr} overlaps {', '.join(cov.collisions)}"
            elif not (p.get("spec") or {}).get("disabled"):
                why_not = "it is enabled for allocation"
            elif not _inside(str(cidr), cov.vpc_cidr):
                why_not = f"it covers more than VPC CIDR {cov.vpc_cidr}"
            elif not needed:
                why_not = (
                    "no on-prem pool does outgoing NAT, so fedkeeper would delete it as unneeded"
                )
            if why_not:
                plan.findings.append(
                    Finding(
                        Severity.INFO,
                        "adopt.skipped",
                        f"on-prem IP pool {name} ({cidr}) is not adopted: {why_not}",
                    )
                )
                continue
            plan.changes.append(
                adoption_change(
                    obs.backend,
                    "IPPool",
                    p,
                    obs.federation,
                    Invariant.IPPOOLS,
                    f"on-prem IP pool {name} ({cidr}) keeps Felix from masquerading traffic to "
                    f"VPC CIDR {cov.vpc_cidr}",
                )
            )
    return plan


def _inside(cidr: str, vpc: ipaddress.IPv4Network) -> bool:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
    return isinstance(net, ipaddress.IPv4Network) and net.subnet_of(vpc)


def plan_rcc_adoption(obs: RccObservation) -> Plan:
    """On each reachable cluster: its RCC for the other and the objects that serve it.

    Only objects that already do the federation's job are taken over, judged by what they
    do: an RCC and access Secret that read the other cluster's API server, a token Secret
    bound to the remote service account, roles granting what fedkeeper's grant, bindings
    to those roles. Anything else under fedkeeper's names is refused with a finding saying
    why; nothing of another cluster is ever labelled, so it is never re-pointed or pruned.
    """
    plan = Plan()
    fed = obs.names.federation
    pairs = ((obs.eks, obs.onprem), (obs.onprem, obs.eks))
    for side, other in pairs:
        if side is None:
            continue
        found = federation_rcc(side, other, fed)
        other_name = other.backend if other else "the other cluster"
        if found.blocker is not None and _takeable(found.blocker, fed):
            _refuse(
                plan,
                side,
                "RemoteClusterConfiguration",
                found.blocker,
                f"it reads {rcc_reads(found.blocker, side)}, not {other_name}'s API server",
            )
        rcc = found.rcc
        ref = access_secret_ref(rcc) if rcc is not None else None
        secret = side.rcc_secrets.get(f"{ref[0]}/{ref[1]}") if ref else side.access_secret
        if rcc is not None and ref is None:
            plan.findings.append(
                Finding(
                    Severity.INFO,
                    "adopt.skipped",
                    f"{side.backend} RCC {_meta(rcc).get('name')} is not adopted: it sets its "
                    "datastore inline; fedkeeper keeps only RCCs with a clusterAccessSecret",
                )
            )
            rcc = secret = None
        if other is None:
            for kind, obj in (("RemoteClusterConfiguration", rcc), ("Secret", secret)):
                if _takeable(obj, fed):
                    assert obj is not None
                    _refuse(
                        plan,
                        side,
                        kind,
                        obj,
                        f"{other_name} is unreachable, so what it reads cannot be checked",
                    )
            rcc = secret = None
        rcc_name = str(_meta(rcc).get("name")) if rcc else side.rcc_name
        wanted: list[tuple[str, Mapping[str, Any] | None, str, str | None, str | None]] = [
            ("RemoteClusterConfiguration", rcc, f"it federates {other_name}", None, None),
            (
                "Secret",
                secret,
                f"RCC {rcc_name} reads {other_name} through it",
                ACCESS_SECRET_ROLE,
                _secret_reads_other(secret, other) if secret is not None else None,
            ),
            *_remote_access(side, obs.names),
        ]
        for kind, obj, job, role, why_not in wanted:
            if not _takeable(obj, fed):
                continue
            assert obj is not None
            if why_not is not None:
                _refuse(plan, side, kind, obj, why_not)
                continue
            plan.changes.append(
                adoption_change(
                    side.backend,
                    kind,
                    {**obj, "kind": kind},
                    fed,
                    Invariant.RCC,
                    f"{side.backend} {kind} {_meta(obj).get('name')}: {job}",
                    role=role,
                )
            )
    return plan


def _refuse(plan: Plan, side: ClusterSide, kind: str, obj: Mapping[str, Any], why: str) -> None:
    meta = _meta(obj)
    where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    plan.findings.append(
        Finding(
            Severity.WARNING,
            "adopt.refused",
            f"{side.backend} {kind} {where}{meta.get('name')} is not adopted: {why}; fedkeeper "
            "takes over only objects that already do the federation's job, and leaves this one "
            "as it is",
        )
    )


def _secret_reads_other(secret: Mapping[str, Any], other: ClusterSide | None) -> str | None:
    """Why an access Secret does not read the other cluster's API server (None: it does)."""
    if other is None:
        return None
    meaning, problems = secret_kubeconfig(secret)
    if problems or meaning is None:
        return f"its kubeconfig is malformed ({'; '.join(problems[:2]) or 'no context'})"
    server, target = normalized_server(meaning.server), normalized_server(other.endpoint)
    if server != target:
        reads = server or "no server"
        return f"its kubeconfig reads {reads}, not {other.backend}'s API server {target}"
    return None


def _remote_access(
    side: ClusterSide, names: RccNames
) -> list[tuple[str, Mapping[str, Any] | None, str, str | None, str | None]]:
    want = desired_remote_objects(names)
    typha = desired_typha_access(names)
    return [
        (
            "ServiceAccount",
            side.service_account,
            "the other cluster's Typha reads as it",
            None,
            _malformed(side.service_account),
        ),
        (
            "Secret",
            side.token_secret,
            "the remote service account's token",
            None,
            _token_why_not(side.token_secret, names.remote_sa),
        ),
        (
            "ClusterRole",
            side.cluster_role,
            "it grants the remote service account's reads",
            None,
            _role_why_not(side.cluster_role, want["ClusterRole"]),
        ),
        (
            "ClusterRoleBinding",
            side.cluster_role_binding,
            "it binds that ClusterRole",
            None,
            _binding_why_not(side.cluster_role_binding, want["ClusterRoleBinding"]),
        ),
        (
            "Role",
            side.typha_role,
            "Typha may read access Secrets",
            None,
            _role_why_not(side.typha_role, typha["Role"]),
        ),
        (
            "RoleBinding",
            side.typha_binding,
            "it binds Typha to that Role",
            None,
            _binding_why_not(side.typha_binding, typha["RoleBinding"]),
        ),
    ]


def _malformed(obj: Mapping[str, Any] | None, *more: list[str]) -> str | None:
    if obj is None:
        return None
    problems = metadata_problems(obj)
    for extra in more:
        problems += extra
    return f"it is malformed ({'; '.join(problems[:3])})" if problems else None


def _token_why_not(token: Mapping[str, Any] | None, sa: str) -> str | None:
    if token is None:
        return None
    if token.get("type") != SA_TOKEN_TYPE:
        return f"its type is {token.get('type')!r}, not {SA_TOKEN_TYPE}"
    annotations = _meta(token).get("annotations")
    if not isinstance(annotations, Mapping) or annotations.get(SA_NAME_ANNOTATION) != sa:
        return f"it is not the token of service account {sa}"
    return _malformed(token)


def _role_why_not(role: Mapping[str, Any] | None, want: Mapping[str, Any]) -> str | None:
    if role is None:
        return None
    bad = _malformed(role, rules_problems(role.get("rules")))
    if bad:
        return bad
    missing = role_lacks(role, want)
    return (
        f"it lacks {len(missing)} permission(s) such as {'/'.join(missing[0])}" if missing else None
    )


def _binding_why_not(binding: Mapping[str, Any] | None, want: Mapping[str, Any]) -> str | None:
    if binding is None:
        return None
    bad = _malformed(binding, binding_problems(binding))
    if bad:
        return bad
    drift = [d for d in (role_ref_drift(binding, want), *subjects_drift(binding, want)) if d]
    return "; ".join(drift) if drift else None


def _select(plan: Plan, only: Collection[str] | None) -> Plan:
    """Keep the changes the operator accepted (by target); say which were left."""
    if not only:
        return plan
    kept = [c for c in plan.changes if c.target in only]
    left = [c.target for c in plan.changes if c.target not in only]
    findings = list(plan.findings)
    if left:
        findings.append(
            Finding(
                Severity.INFO,
                "adopt.skipped",
                f"not selected, left unowned: {', '.join(left)}",
            )
        )
    return Plan(changes=kept, findings=findings, deferred=plan.deferred)


def adoption_runners(only: Collection[str] | None = None) -> dict[Invariant, Runner]:
    """Engine runners that plan adoption instead of repair, per invariant."""
    from fedkeeper import observe

    def pools(run: Run) -> Plan:
        obs = observe.ippools_observation(run)
        if obs is None:
            return Plan(
                findings=[Finding(Severity.ERROR, "adopt.vpc", "no VPC found: nothing to adopt")]
            )
        return _select(plan_pool_adoption(obs), only)

    def rcc(run: Run) -> Plan:
        return _select(plan_rcc_adoption(observe.rcc_observation(run)), only)

    return {Invariant.IPPOOLS: pools, Invariant.RCC: rcc}


def adopt(
    conns: Connections,
    mode: ModeName,
    *,
    only: Collection[str] | None = None,
    trigger: str | None = None,
    deadline_s: float | None = None,
) -> Report:
    """List (mode plan) or take over (mode apply) the unowned objects doing fedkeeper's job.

    ``only``: targets (as the plan prints them, e.g. ``onprem/IPPool/aws-vpc``) the operator
    accepts; None accepts every listed object. ``deadline_s``: the run's time budget.
    """
    report = reconcile(
        conns,
        ADOPT_SCOPE,
        mode,
        trigger=trigger or f"adopt {mode}",
        runners=adoption_runners(only),
        deadline_s=deadline_s,
    )
    listed = {c.change.target for c in report.changes}
    unknown = sorted(t for t in only or () if t not in listed)
    if unknown:
        report.findings.append(
            Finding(
                Severity.WARNING,
                "adopt.unknown",
                f"not in the adoption plan (a typo, or already owned): {', '.join(unknown)}; "
                "run `fedkeeper adopt` to see the targets",
            )
        )
    return report
