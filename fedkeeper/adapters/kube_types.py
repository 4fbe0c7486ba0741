"""Where each Kubernetes kind fedkeeper touches lives in the API, and the time a call may take.

Plain data, without the kubernetes client: :mod:`fedkeeper.service` sets up its connections
with these, and :mod:`fedkeeper.adapters.kube` (which loads the client) is imported only
when a run first touches a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedkeeper.errors import PermanentError

# (connect, read) seconds: an unreachable on-prem API must fail fast, not hang a Lambda.
# (connect, read) seconds per HTTP attempt; with urllib3's one retry a call that hangs costs
# at most 2 × (3 + 10) s, and a hung target is not called again in the same run (RunGuard).
REQUEST_TIMEOUT = (3.0, 10.0)
ATTEMPTS = 2  # Configuration.retries = 1


@dataclass(frozen=True)
class ResourceType:
    """Where a kind lives in the API."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, name: str | None = None, namespace: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            if not namespace:
                raise PermanentError(f"{self.kind} is namespaced: a namespace is required")
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


CORE_TYPES: dict[str, ResourceType] = {
    rt.kind: rt
    for rt in (
        ResourceType("", "v1", "namespaces", "Namespace", False),
        ResourceType("", "v1", "secrets", "Secret", True),
        ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True),
        ResourceType("", "v1", "configmaps", "ConfigMap", True),
        ResourceType("apps", "v1", "daemonsets", "DaemonSet", True),
        ResourceType("apps", "v1", "deployments", "Deployment", True),
        ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
        ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
        ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
        ResourceType(
            "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False
        ),
    )
}
_CALICO_KINDS = (
    ("ippools", "IPPool"),
    ("remoteclusterconfigurations", "RemoteClusterConfiguration"),
    ("bgppeers", "BGPPeer"),
    ("bgpconfigurations", "BGPConfiguration"),
    ("kubecontrollersconfigurations", "KubeControllersConfiguration"),
)


def resource_types(calico_group: str, calico_version: str) -> dict[str, ResourceType]:
    """Every kind fedkeeper touches, by kind name (Calico kinds under the configured API)."""
    types = dict(CORE_TYPES)
    for plural, kind in _CALICO_KINDS:
        types[kind] = ResourceType(calico_group, calico_version, plural, kind, False)
    return types
