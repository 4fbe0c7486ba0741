"""Resource types, the request log record and ``Status`` errors of the fake API server."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

JSONObj = dict[str, Any]

SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_NAMESPACES = ("default", "kube-system", "calico-system")
SERVER_VERSION: JSONObj = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-fedkeeper-fake",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(frozen=True)
class ResourceType:
    """Where a kind lives in the API."""

    group: str  # "" for core
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """``plural`` or ``plural.group``, as Kubernetes messages name a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request the server answered."""

    method: str  # GET, POST, PUT, PATCH, DELETE
    path: str  # URL path without query
    query: str
    status: int

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


def builtin_types(
    calico_group: str = "projectcalico.org", calico_version: str = "v3"
) -> tuple[ResourceType, ...]:
    """The kinds every :class:`FakeKubeServer` serves, Calico under the given group/version."""
    rbac = "rbac.authorization.k8s.io"
    return (
        ResourceType("", "v1", "namespaces", "Namespace", False),
        ResourceType("", "v1", "secrets", "Secret", True),
        ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True),
        ResourceType("", "v1", "configmaps", "ConfigMap", True),
        ResourceType("", "v1", "services", "Service", True),
        ResourceType("", "v1", "endpoints", "Endpoints", True),
        ResourceType("", "v1", "pods", "Pod", True),
        ResourceType("", "v1", "nodes", "Node", False),
        ResourceType("apps", "v1", "daemonsets", "DaemonSet", True),
        ResourceType("apps", "v1", "deployments", "Deployment", True),
        ResourceType(rbac, "v1", "roles", "Role", True),
        ResourceType(rbac, "v1", "rolebindings", "RoleBinding", True),
        ResourceType(rbac, "v1", "clusterroles", "ClusterRole", False),
        ResourceType(rbac, "v1", "clusterrolebindings", "ClusterRoleBinding", False),
        ResourceType(calico_group, calico_version, "ippools", "IPPool", False),
        ResourceType(
            calico_group,
            calico_version,
            "remoteclusterconfigurations",
            "RemoteClusterConfiguration",
            False,
        ),
        ResourceType(calico_group, calico_version, "bgppeers", "BGPPeer", False),
        ResourceType(calico_group, calico_version, "bgpconfigurations", "BGPConfiguration", False),
        ResourceType(
            calico_group, calico_version, "felixconfigurations", "FelixConfiguration", False
        ),
        ResourceType(
            calico_group,
            calico_version,
            "kubecontrollersconfigurations",
            "KubeControllersConfiguration",
            False,
        ),
        ResourceType(calico_group, calico_version, "licensekeys", "LicenseKey", False),
    )


BUILTIN_TYPES: tuple[ResourceType, ...] = builtin_types()


# --- errors and small helpers ------------------------------------------------------------


class ApiError(Exception):
    """Answered to the client as a ``Status`` body."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: JSONObj | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "InternalError" if code >= 500 else "Unknown")
        self.details = details


def status_body(code: int, reason: str, message: str, details: JSONObj | None = None) -> JSONObj:
    body: JSONObj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def details_for(rt: ResourceType, name: str | None, **extra: Any) -> JSONObj:
    details: JSONObj = {"name": name or "", "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    details.update(extra)
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, f'{rt.resource} "{name}" not found', details=details_for(rt, name))


def conflict(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {rt.resource} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        details=details_for(rt, name),
    )


def invalid_error(rt: ResourceType, name: str, message: str, field: str = "") -> ApiError:
    details = details_for(rt, name, kind=rt.kind)
    details["causes"] = [{"reason": "FieldValueInvalid", "message": message, "field": field}]
    return ApiError(422, message, details=details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def name_problem(rt: ResourceType, name: str) -> str | None:
    """Why ``name`` is not a valid name for ``rt`` (None if it is)."""
    if rt.group == "rbac.authorization.k8s.io":  # path-segment names ("system:foo")
        if name in (".", "..") or "/" in name or "%" in name:
            return "may not be '.' or '..' and may not contain '/' or '%'"
        return None
    if rt.plural == "namespaces":
        if len(name) > 63 or not _DNS_LABEL.match(name):
            return (
                "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                "characters or '-', and must start and end with an alphanumeric character"
            )
        return None
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character"
        )
    return None


def get_path(obj: Any, dotted: str) -> Any:
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


@dataclass(frozen=True)
class Route:
    """Which objects a resource path names."""

    rt: ResourceType
    namespace: str | None  # None: cluster-scoped, or a list across all namespaces
    name: str | None
    subresource: str | None
