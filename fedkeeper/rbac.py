"""The Kubernetes permissions fedkeeper itself needs, per cluster — and nothing more.

One source for both the EKS access entry's RBAC (deployed by the cluster stack) and the
on-prem bootstrap manifests (`fedkeeper onprem-bootstrap`).

* Cluster-wide (ClusterRole): what is cluster-scoped (RCCs, IP pools, the remote
  ClusterRole and its binding) and the reads the remote ClusterRole grants (Kubernetes RBAC
  refuses to let a subject grant permissions it does not hold). ``bind``/``escalate`` only on
  the federation's own role names.
* Per namespace (Role, in the access-Secret, remote-ServiceAccount and calico-system
  namespaces only): Secrets, ServiceAccounts, Roles and RoleBindings. fedkeeper never holds
  Secret access outside the namespaces it manages.
"""

from __future__ import annotations

from typing import Any, Literal

from fedkeeper.config import FederationConfig
from fedkeeper.invariants.rcc import TYPHA_ACCESS
from fedkeeper.model import MANAGED_BY_LABEL, MANAGED_BY_VALUE

Side = Literal["eks", "onprem"]
RECONCILER = "fedkeeper-reconciler"
RECONCILER_GROUP = "fedkeeper-reconciler"
CALICO_SYSTEM = "calico-system"  # calico-kube-controllers lives here (checks)
_RBAC = "rbac.authorization.k8s.io"
_READ = ["get", "list", "watch"]
_WRITE = ["get", "list", "watch", "create", "update", "patch", "delete"]


def reconciler_rules(
    side: Side,
    *,
    calico_group: str = "projectcalico.org",
    remote_name: str = "tigera-federation-remote-cluster",
) -> list[dict[str, Any]]:
    """ClusterRole rules for fedkeeper on one cluster (invariants 2–4 and 6)."""
    rules: list[dict[str, Any]] = [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]},
        {
            "apiGroups": [_RBAC],
            "resources": ["clusterroles", "clusterrolebindings"],
            "verbs": _WRITE,
        },
        {
            "apiGroups": [_RBAC],
            "resources": ["clusterroles"],
            "verbs": ["escalate", "bind"],
            "resourceNames": [remote_name],
        },
        # What the remote ClusterRole grants must be held to be granted.
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts", "services", "endpoints", "pods", "nodes"],
            "verbs": _READ,
        },
        {
            "apiGroups": ["crd.projectcalico.org"],
            "resources": ["hostendpoints", "ipamblocks", "ippools"],
            "verbs": _READ,
        },
        {
            "apiGroups": [calico_group],
            "resources": ["remoteclusterconfigurations"],
            "verbs": _WRITE,
        },
        {
            "apiGroups": [calico_group],
            "resources": ["bgppeers", "kubecontrollersconfigurations"],
            "verbs": ["get", "list"],
        },
    ]
    if side == "eks":
        rules.append({"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get", "list"]})
        # Only the self-managed CNI's aws-node may be patched (external SNAT, invariant 2).
        rules.append(
            {
                "apiGroups": ["apps"],
                "resources": ["daemonsets"],
                "verbs": ["patch"],
                "resourceNames": ["aws-node"],
            }
        )
        rules.append(
            {"apiGroups": [calico_group], "resources": ["ippools"], "verbs": ["get", "list"]}
        )
    else:
        rules.append({"apiGroups": [calico_group], "resources": ["ippools"], "verbs": _WRITE})
    return rules


def namespaced_rules() -> list[dict[str, Any]]:
    """Role rules for fedkeeper in each namespace it manages objects in."""
    return [
        {"apiGroups": [""], "resources": ["secrets", "serviceaccounts"], "verbs": _WRITE},
        {"apiGroups": [_RBAC], "resources": ["roles", "rolebindings"], "verbs": _WRITE},
        {
            "apiGroups": [_RBAC],
            "resources": ["roles"],
            "verbs": ["escalate", "bind"],
            "resourceNames": [TYPHA_ACCESS],
        },
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
    ]


def managed_namespaces(config: FederationConfig) -> list[str]:
    """The namespaces fedkeeper writes or reads namespaced objects in."""
    fed = config.federation
    return sorted(
        {fed.access_secret_namespace, fed.remote_service_account.namespace, CALICO_SYSTEM}
    )


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
        for ns in managed_namespaces(config)
    ]
    objects += [
        {
            "apiVersion": f"{_RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": RECONCILER, "labels": dict(labels)},
            "rules": reconciler_rules(
                side,
                calico_group=config.federation.calico_api.group,
                remote_name=config.federation.remote_service_account.name,
            ),
        },
        {
            "apiVersion": f"{_RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": RECONCILER, "labels": dict(labels)},
            "roleRef": {**role_ref, "kind": "ClusterRole"},
            "subjects": [dict(subject)],
        },
    ]
    for ns in managed_namespaces(config):
        meta = {"name": RECONCILER, "namespace": ns, "labels": dict(labels)}
        objects.append(
            {
                "apiVersion": f"{_RBAC}/v1",
                "kind": "Role",
                "metadata": dict(meta),
                "rules": namespaced_rules(),
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
