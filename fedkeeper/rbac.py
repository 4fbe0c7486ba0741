"""The Kubernetes permissions fedkeeper itself needs, per cluster — and nothing more.

One source for both the EKS access entry's ClusterRole (deployed by the cluster stack) and
the on-prem bootstrap manifests (`fedkeeper onprem-bootstrap`). Creating the remote
ClusterRole and bindings needs ``escalate``/``bind`` on exactly those names (Kubernetes RBAC
refuses to let a subject grant permissions it does not hold otherwise).
"""

from __future__ import annotations

from typing import Any, Literal

from fedkeeper.invariants.rcc import TYPHA_ACCESS

Side = Literal["eks", "onprem"]
RECONCILER = "fedkeeper-reconciler"
RECONCILER_GROUP = "fedkeeper-reconciler"
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
        {"apiGroups": [""], "resources": ["secrets", "serviceaccounts"], "verbs": _WRITE},
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["roles", "rolebindings", "clusterroles", "clusterrolebindings"],
            "verbs": _WRITE,
        },
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterroles", "roles"],
            "verbs": ["escalate", "bind"],
            "resourceNames": [remote_name, TYPHA_ACCESS],
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
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
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
