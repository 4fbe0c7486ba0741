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
  with merge patches (never ``update``) and deletes only what it re-creates: the token
  Secret, and a binding whose roleRef differs (a roleRef cannot change).
  ``create`` cannot be narrowed by name in Kubernetes (the request carries none), so it is
  granted on the resource; ``list`` likewise.
* Three exceptions, where names are not known when the RBAC is deployed: fedkeeper's IP
  pools are named after the VPC's CIDRs, which change at run time
  (``AssociateVpcCidrBlock``), so on-prem IP pool writes are not narrowed; RCCs and the
  access namespace's Secrets made by hand keep their operator's names when
  ``fedkeeper adopt`` takes them over (and an owned RCC or access Secret left under an old
  name is pruned), so RCC patch/delete and Secret patch/delete in that one namespace are
  not narrowed either. That namespace is fedkeeper's own (``federation.
  access_secret_namespace``, never one holding others' Secrets), so every Secret in it is
  one fedkeeper owns or takes over. fedkeeper's code still writes only objects labelled as
  owned by its federation.
* ``watch`` (and ``list`` by name) for the watch function (:mod:`fedkeeper.watch`), on
  exactly what it watches: on-prem IP pools and RCCs (any name, as above), and by name the
  remote ClusterRole/binding, the Typha Role/binding, the access and token Secrets and
  ``aws-node``. The remote ServiceAccount is read through the remote ClusterRole's rules.
* Secrets, ServiceAccounts, Roles and RoleBindings only in the namespaces fedkeeper
  manages (a Role per namespace), never cluster-wide; in the remote service account's
  namespace (``calico-system``) only the token Secret, by name.
"""

from __future__ import annotations

from typing import Any, Literal

from fedkeeper.config import FederationConfig
from fedkeeper.invariants.rcc import REMOTE_RULES, TYPHA_ACCESS, TYPHA_RULES
from fedkeeper.model import MANAGED_BY_LABEL, MANAGED_BY_VALUE

Side = Literal["eks", "onprem"]
RECONCILER = "fedkeeper-reconciler"
RECONCILER_GROUP = "fedkeeper-reconciler"
CALICO_SYSTEM = "calico-system"  # calico-kube-controllers lives here (checks)
AWS_NODE = ("aws-node", "kube-system")
_RBAC = "rbac.authorization.k8s.io"
# The watch function lists then watches each object it owns by name (a metadata.name field
# selector, which the API server authorizes as a request for that name).
WATCH_VERBS = ("list", "watch")


def _rcc_name(config: FederationConfig, side: Side) -> str:
    return config.sole_site().name if side == "eks" else config.sole_eks().name


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
            "verbs": ["get", "patch", *WATCH_VERBS],
            "resourceNames": [remote],
        },
        # A binding's roleRef cannot change: one bound to another role is re-created.
        {
            "apiGroups": [_RBAC],
            "resources": ["clusterrolebindings"],
            "verbs": ["delete"],
            "resourceNames": [remote],
        },
        # Any name: an RCC made by hand keeps its operator's name when `fedkeeper adopt`
        # takes it over, and an owned RCC that no longer matches the config is pruned.
        # ``create`` cannot be narrowed anyway, so a name list would not contain the risk.
        {
            "apiGroups": [calico],
            "resources": ["remoteclusterconfigurations"],
            "verbs": ["list", "create", "patch", "delete", "watch"],
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
        pool_verbs = ["list", "create", "patch", "delete", "watch"]
        rules.append({"apiGroups": [calico], "resources": ["ippools"], "verbs": pool_verbs})
    return rules


def namespaced_rules(config: FederationConfig, side: Side, namespace: str) -> list[dict[str, Any]]:
    """Role rules for fedkeeper in one namespace it manages objects in."""
    fed = config.federation
    sa = fed.remote_service_account
    rules: list[dict[str, Any]] = []
    if namespace == fed.access_secret_namespace:
        # The access namespace is fedkeeper's own: it holds only access Secrets (fedkeeper's,
        # and hand-made ones `fedkeeper adopt` takes over under their own names). Reading
        # them all is held anyway, to grant it to Typha.
        rules += _granted(TYPHA_RULES)
        rules.append(
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "patch", "delete"]}
        )
        rules.append(
            {"apiGroups": [_RBAC], "resources": ["roles", "rolebindings"], "verbs": ["create"]}
        )
        rules.append(
            {
                "apiGroups": [_RBAC],
                "resources": ["roles", "rolebindings"],
                "verbs": ["get", "patch", *WATCH_VERBS],
                "resourceNames": [TYPHA_ACCESS],
            }
        )
        rules.append(
            {
                "apiGroups": [_RBAC],
                "resources": ["rolebindings"],
                "verbs": ["delete"],
                "resourceNames": [TYPHA_ACCESS],
            }
        )
    if namespace == sa.namespace != fed.access_secret_namespace:
        # Elsewhere (Tigera's calico-system), only the remote token Secret, by name (list and
        # watch too, through a metadata.name field selector): other Secrets there
        # (typha-certs) stay out of reach. ``create`` cannot be narrowed by name. In
        # fedkeeper's own namespace the rules above already cover it.
        rules.append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]})
        rules.append(
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "verbs": ["get", "patch", "delete", *WATCH_VERBS],
                "resourceNames": [sa.name],
            }
        )
    if namespace == sa.namespace:
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
                "verbs": ["get", "patch", *WATCH_VERBS],
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

    Only the access Secrets' namespace is fedkeeper's own and labelled so; calico-system
    belongs to Calico, and is listed only so the Roles can be applied before the operator
    creates it.
    """
    labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}
    role_ref = {"apiGroup": _RBAC, "name": RECONCILER}
    access_ns = config.federation.access_secret_namespace
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, **({"labels": dict(labels)} if ns == access_ns else {})},
        }
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
