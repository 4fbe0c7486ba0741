"""The Kubernetes permissions fedkeeper itself needs, per cluster — and nothing more.

One source for both the EKS access entry's RBAC (deployed by the cluster stack) and the
on-prem bootstrap manifests (`fedkeeper onprem-bootstrap`). Kubernetes refuses to let a
subject create a role granting permissions it does not hold itself (unless it holds
``escalate``), and to bind a role whose permissions it does not hold (unless it holds
``bind``); so the reconciler *holds* everything it grants — the remote ClusterRole's and
the Typha Role's rules, taken from :mod:`fedkeeper.invariants.rcc` — and needs neither.

* No ``escalate``, ``bind`` or ``*``.
* ``patch``/``delete`` only on the names fedkeeper owns (the remote ServiceAccount and
  token Secret, ClusterRole and binding, the Typha Role and binding, the access Secret of
  each side, the ``aws-node`` DaemonSet), and only the verbs its changes use: it repairs
  with merge patches (never ``update``) and deletes only the token Secret it re-creates.
  ``create`` cannot be narrowed by name in Kubernetes (the request carries none), so it is
  granted on the resource; ``list`` likewise.
* Three exceptions, where names are not known when the RBAC is deployed: fedkeeper's IP
  pools are named after the VPC's CIDRs, which change at run time
  (``AssociateVpcCidrBlock``), so on-prem IP pool writes are not narrowed; RCCs and the
  access namespace's Secrets made by hand keep their operator's names when
  ``fedkeeper adopt`` takes them over (and an owned RCC left under an old name is pruned),
  so RCC patch/delete and Secret patch in that one namespace are not narrowed either.
  fedkeeper's code still writes only objects labelled as owned by its federation.
* Secrets, ServiceAccounts, Roles and RoleBindings only in the namespaces fedkeeper
  manages (a Role per namespace), never cluster-wide.
"""

from __future__ import annotations

from typing import Any, Literal

from fedkeeper.config import FederationConfig
from fedkeeper.invariants.rcc import REMOTE_RULES, TYPHA_ACCESS, TYPHA_RULES, access_secret_name
from fedkeeper.model import MANAGED_BY_LABEL, MANAGED_BY_VALUE

Side = Literal["eks", "onprem"]
RECONCILER = "fedkeeper-reconciler"
RECONCILER_GROUP = "fedkeeper-reconciler"
CALICO_SYSTEM = "calico-system"  # calico-kube-controllers lives here (checks)
AWS_NODE = ("aws-node", "kube-system")
_RBAC = "rbac.authorization.k8s.io"


def _rcc_name(config: FederationConfig, side: Side) -> str:
    return config.eks_rcc_name if side == "eks" else config.onprem_rcc_name


def _granted(rules: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """What fedkeeper grants others, held by fedkeeper itself (no escalate needed)."""
    return [
        {
            "apiGroups": list(r["apiGroups"]),
            "resources": list(r["resources"]),
            "verbs": list(r["verbs"]),
        }
        for r in rules
    ]


def reconciler_rules(config: FederationConfig, side: Side) -> list[dict[str, Any]]:
    """ClusterRole rules for fedkeeper on one cluster (invariants 2–4 and 6)."""
    calico = config.federation.calico_api.group
    remote = config.federation.remote_service_account.name
    rules: list[dict[str, Any]] = [
        *_granted(REMOTE_RULES),
        {
            "apiGroups": [_RBAC],
            "resources": ["clusterroles", "clusterrolebindings"],
            "verbs": ["create"],
        },
        {
            "apiGroups": [_RBAC],
            "resources": ["clusterroles", "clusterrolebindings"],
            "verbs": ["get", "patch"],
            "resourceNames": [remote],
        },
        # Any name: an RCC made by hand keeps its operator's name when `fedkeeper adopt`
        # takes it over, and an owned RCC that no longer matches the config is pruned.
        # ``create`` cannot be narrowed anyway, so a name list would not contain the risk.
        {
            "apiGroups": [calico],
            "resources": ["remoteclusterconfigurations"],
            "verbs": ["list", "create", "patch", "delete"],
        },
        {
            "apiGroups": [calico],
            "resources": ["kubecontrollersconfigurations"],
            "verbs": ["get"],
            "resourceNames": ["default"],
        },
    ]
    if side == "eks":
        rules.append({"apiGroups": [calico], "resources": ["ippools"], "verbs": ["list"]})
    else:
        rules.append({"apiGroups": [calico], "resources": ["bgppeers"], "verbs": ["list"]})
        pool_verbs = ["list", "create", "patch", "delete"]
        rules.append({"apiGroups": [calico], "resources": ["ippools"], "verbs": pool_verbs})
    return rules


def namespaced_rules(config: FederationConfig, side: Side, namespace: str) -> list[dict[str, Any]]:
    """Role rules for fedkeeper in one namespace it manages objects in."""
    fed = config.federation
    sa = fed.remote_service_account
    rules: list[dict[str, Any]] = []
    secrets: list[str] = []
    if namespace == fed.access_secret_namespace:
        rules += _granted(TYPHA_RULES)  # held, to grant it to Typha
        secrets.append(access_secret_name(_rcc_name(config, side)))
        rules.append(
            {"apiGroups": [_RBAC], "resources": ["roles", "rolebindings"], "verbs": ["create"]}
        )
        rules.append(
            {
                "apiGroups": [_RBAC],
                "resources": ["roles", "rolebindings"],
                "verbs": ["get", "patch"],
                "resourceNames": [TYPHA_ACCESS],
            }
        )
    if namespace == sa.namespace:
        secrets.append(sa.name)
        # Read through the remote ClusterRole's rules; patched only to adopt it (labels).
        rules.append({"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["create"]})
        rules.append(
            {
                "apiGroups": [""],
                "resources": ["serviceaccounts"],
                "verbs": ["patch"],
                "resourceNames": [sa.name],
            }
        )
    if secrets:
        # Access Secrets made by hand keep their names when adopted, so in the access
        # namespace (only) Secrets may be patched by any name.
        verbs = ["list", "create"]
        if namespace == fed.access_secret_namespace:
            verbs.append("patch")
        rules.append({"apiGroups": [""], "resources": ["secrets"], "verbs": verbs})
        rules.append(
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "verbs": ["get", "patch", "delete"],
                "resourceNames": sorted(set(secrets)),
            }
        )
    if namespace == CALICO_SYSTEM:
        rules.append(
            {
                "apiGroups": ["apps"],
                "resources": ["deployments"],
                "verbs": ["get"],
                "resourceNames": ["calico-kube-controllers"],
            }
        )
    if side == "eks" and namespace == AWS_NODE[1]:
        # Only the self-managed CNI's aws-node is read and patched (external SNAT).
        rules.append(
            {
                "apiGroups": ["apps"],
                "resources": ["daemonsets"],
                "verbs": ["get", "patch"],
                "resourceNames": [AWS_NODE[0]],
            }
        )
    return rules


def managed_namespaces(config: FederationConfig, side: Side = "onprem") -> list[str]:
    """The namespaces fedkeeper writes or reads namespaced objects in."""
    fed = config.federation
    names = {fed.access_secret_namespace, fed.remote_service_account.namespace, CALICO_SYSTEM}
    if side == "eks":
        names.add(AWS_NODE[1])
    return sorted(names)


def reconciler_objects(
    config: FederationConfig, side: Side, subject: dict[str, str]
) -> list[dict[str, Any]]:
    """The managed namespaces, a ClusterRole + binding, and a Role + binding per namespace.

    The Namespace objects carry no ownership label: calico-system belongs to Calico, and
    they are listed only so the Roles can be applied before the operator creates it.
    """
    labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}
    role_ref = {"apiGroup": _RBAC, "name": RECONCILER}
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        for ns in managed_namespaces(config, side)
        if ns != AWS_NODE[1]  # kube-system always exists; fedkeeper does not declare it
    ]
    objects += [
        {
            "apiVersion": f"{_RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": RECONCILER, "labels": dict(labels)},
            "rules": reconciler_rules(config, side),
        },
        {
            "apiVersion": f"{_RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": RECONCILER, "labels": dict(labels)},
            "roleRef": {**role_ref, "kind": "ClusterRole"},
            "subjects": [dict(subject)],
        },
    ]
    for ns in managed_namespaces(config, side):
        meta = {"name": RECONCILER, "namespace": ns, "labels": dict(labels)}
        objects.append(
            {
                "apiVersion": f"{_RBAC}/v1",
                "kind": "Role",
                "metadata": dict(meta),
                "rules": namespaced_rules(config, side, ns),
            }
        )
        objects.append(
            {
                "apiVersion": f"{_RBAC}/v1",
                "kind": "RoleBinding",
                "metadata": dict(meta),
                "roleRef": {**role_ref, "kind": "Role"},
                "subjects": [dict(subject)],
            }
        )
    return objects


def eks_reconciler_objects(config: FederationConfig) -> list[dict[str, Any]]:
    """The EKS manifest: :func:`reconciler_objects` bound to the access entry's group."""
    subject = {"kind": "Group", "name": RECONCILER_GROUP, "apiGroup": _RBAC}
    return reconciler_objects(config, "eks", subject)
