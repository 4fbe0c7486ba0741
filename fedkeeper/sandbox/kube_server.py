"""A fake Kubernetes API server over real HTTP, for the official ``kubernetes`` client.

No real kube-apiserver can run in the sandbox (no Docker, no envtest downloads), and the small
mock servers that exist are too weak (no ``resourceVersion``, no 409 on stale writes, strategic
merge patch replacing lists). :class:`FakeKubeServer` is a threaded ``http.server`` on
127.0.0.1 (ephemeral port, HTTP/1.1 keep-alive, ``TCP_NODELAY``) that the official client
reaches through an ordinary kubeconfig with bearer-token auth. Standard library only.

Imitated (Kubernetes API conventions):

* REST paths ``/api/v1/...`` and ``/apis/GROUP/VERSION/...``, namespaced and cluster-scoped,
  lists across namespaces, ``/status`` subresources for kinds that have one (main-resource
  writes keep the stored status, status writes keep everything else); ``/version``,
  ``/healthz``, minimal discovery (``/api``, ``/apis``, ``/apis/G``, ``/api/v1``,
  ``/apis/G/V``); unknown paths answer a 404 ``Status``.
* Bearer-token auth (401 ``Status`` otherwise). The admin token is accepted, and so is any
  service-account token currently stored in a token Secret (no RBAC: every valid token may
  do everything), so a rotated-away token stops working; ``accept_token`` (an optional
  predicate attribute) accepts more, e.g. EKS IAM tokens.
* ``Status`` error bodies with ``reason``/``details``/``code``; create 201 with ``uid``,
  ``resourceVersion`` (one global counter), ``creationTimestamp``, ``generation``;
  ``generateName``; 409 ``AlreadyExists``; 404 ``NotFound`` (also for a missing namespace);
  name validation (422); kind/apiVersion/name/namespace mismatches (400).
* Optimistic concurrency: PUT and PATCH with a stale ``metadata.resourceVersion`` answer 409
  ``Conflict``; DELETE honours ``preconditions.resourceVersion``/``uid``. ``generation``
  increments when ``spec`` changes. ``?dryRun=All`` runs a write and throws the result away.
* PATCH by ``Content-Type``: JSON merge patch (RFC 7386), JSON patch (RFC 6902, all six
  operations, a failed ``test`` answers 422), strategic merge patch (lists of objects merged
  by their Kubernetes merge key - ``name`` for containers/env/volumes/..., ``containerPort``
  or ``port`` for ports, ``mountPath`` for volumeMounts - and, for lists not in that table,
  by ``name`` when every item has one; ``$patch: delete`` on list items, ``$patch: replace``
  on maps and lists; RBAC ``rules``/``subjects`` and scalar lists are replaced).
  Server-side apply (``application/apply-patch+yaml``) answers 415.
* LIST with ``labelSelector`` (``=``, ``==``, ``!=``, ``in``, ``notin``, exists, ``!``
  not-exists) and ``fieldSelector`` (``=``, ``==``, ``!=`` on any dotted field path, e.g.
  ``metadata.name``, ``metadata.namespace``, ``type``); items sorted by namespace/name and
  carrying ``apiVersion`` and ``kind``.
* Secrets: ``stringData`` folded into base64 ``data``; ``data`` must be base64 (400);
  ``type`` defaults to ``Opaque`` and is immutable. The "token controller": a Secret of type
  ``kubernetes.io/service-account-token`` whose service account exists gets ``data.token``
  (a JWT-shaped random token), ``data["ca.crt"]`` and ``data.namespace`` right after it is
  written - the create response itself does not carry them, as with a real cluster, so read
  the Secret again. A token Secret created before its ServiceAccount is filled when the
  ServiceAccount appears; deleting a ServiceAccount deletes its token Secrets.
* Deleting a Namespace deletes every object in it (at once, no ``Terminating`` phase).
* Calico v3 ``IPPool`` (as Calico's API server does): defaulting (``blockSize`` 26 / 122,
  ``ipipMode``/``vxlanMode`` ``Never``, ``natOutgoing``/``disabled`` false, ``nodeSelector``
  ``all()``, ``allowedUses`` ``[Workload, Tunnel]``), a valid network CIDR, block size range,
  minimum pool size for enabled pools, on create no overlap with ANY existing pool
  (``IPPool(<new>) CIDR overlaps with IPPool(<other>) CIDR <cidr>``), ``cidr`` and
  ``blockSize`` immutable - all answered 422 ``Invalid``. ``RemoteClusterConfiguration``:
  with ``clusterAccessSecret`` every inline datastore field must be empty; enum checks.
* Faults: :meth:`FakeKubeServer.fail_next` (any status, e.g. 503, before auth),
  :meth:`FakeKubeServer.conflict_next` (409 on writes), :meth:`FakeKubeServer.set_unreachable`
  (the listener and every kept-alive connection are closed, so clients get connection
  refused; the same port is listened on again afterwards). No ``Retry-After`` header is sent,
  so urllib3 does not retry 503s by itself.
* A thread-safe request log (method, path, query, status) of every HTTP request.

Not imitated: watches (400), pagination (``limit``/``continue`` are ignored and the whole
list is returned), server-side apply, ``deletecollection``, admission webhooks, RBAC
authorization, finalizers and graceful deletion (objects go at once), garbage collection
of ``ownerReferences``, controllers other than the token controller (nothing fills
``status`` or creates default ServiceAccounts), field selectors restricted per kind, TLS
(``ca_data`` is decorative: the server speaks plain HTTP), protobuf, YAML bodies,
multi-version conversion.

The direct helpers (:meth:`~FakeKubeServer.seed`, :meth:`~FakeKubeServer.mutate`, ...) act
on the store like a privileged actor: they skip validation (IPPool defaulting still applies),
are not logged, and :meth:`~FakeKubeServer.seed` creates a missing namespace.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import ipaddress
import json
import re
import secrets
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "BUILTIN_TYPES",
    "FakeKubeServer",
    "RequestRecord",
    "ResourceType",
    "builtin_types",
]

JSONObj = dict[str, Any]

SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_NAMESPACES = ("default", "kube-system", "calico-system")
_SERVER_VERSION: JSONObj = {
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
_REASONS: dict[int, str] = {
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
        return self.method in _WRITE_METHODS


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


class _ApiError(Exception):
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
        self.reason = reason or _REASONS.get(code, "InternalError" if code >= 500 else "Unknown")
        self.details = details


def _status_body(code: int, reason: str, message: str, details: JSONObj | None = None) -> JSONObj:
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


def _details(rt: ResourceType, name: str | None, **extra: Any) -> JSONObj:
    details: JSONObj = {"name": name or "", "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    details.update(extra)
    return details


def _not_found(rt: ResourceType, name: str) -> _ApiError:
    return _ApiError(404, f'{rt.resource} "{name}" not found', details=_details(rt, name))


def _conflict(rt: ResourceType, name: str) -> _ApiError:
    return _ApiError(
        409,
        f'Operation cannot be fulfilled on {rt.resource} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        details=_details(rt, name),
    )


def _invalid(rt: ResourceType, name: str, message: str, field: str = "") -> _ApiError:
    details = _details(rt, name, kind=rt.kind)
    details["causes"] = [{"reason": "FieldValueInvalid", "message": message, "field": field}]
    return _ApiError(422, message, details=details)


def _bad_request(message: str) -> _ApiError:
    return _ApiError(400, message)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _name_problem(rt: ResourceType, name: str) -> str | None:
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


def _get_path(obj: Any, dotted: str) -> Any:
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


# --- selectors ---------------------------------------------------------------------------

_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_TERM = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^()]*)\)$")
_CMP_TERM = re.compile(rf"^({_KEY})\s*(==|!=|=)\s*({_VALUE})$")
_EXISTS_TERM = re.compile(rf"^(!?)\s*({_KEY})$")

LabelPredicate = Callable[[dict[str, str]], bool]


def _split_terms(selector: str) -> list[str]:
    terms: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(selector):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    return [t.strip() for t in terms if t.strip()]


def _label_in(key: str, values: frozenset[str], *, negate: bool) -> LabelPredicate:
    def pred(labels: dict[str, str]) -> bool:
        return (labels.get(key) in values) != negate

    return pred


def _label_exists(key: str, *, negate: bool) -> LabelPredicate:
    def pred(labels: dict[str, str]) -> bool:
        return (key in labels) != negate

    return pred


def parse_label_selector(selector: str) -> list[LabelPredicate]:
    """Predicates for a Kubernetes label selector string; ValueError if it is malformed."""
    predicates: list[LabelPredicate] = []
    for term in _split_terms(selector):
        if m := _SET_TERM.match(term):
            values = frozenset(v.strip() for v in m.group(3).split(","))
            predicates.append(_label_in(m.group(1), values, negate=m.group(2) == "notin"))
        elif m := _CMP_TERM.match(term):
            values = frozenset({m.group(3)})
            predicates.append(_label_in(m.group(1), values, negate=m.group(2) == "!="))
        elif m := _EXISTS_TERM.match(term):
            predicates.append(_label_exists(m.group(2), negate=m.group(1) == "!"))
        else:
            raise ValueError(f"unable to parse requirement: {term!r}")
    return predicates


_FIELD_TERM = re.compile(r"^([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*)$")


def _field_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field_equals(path: str, value: str, *, negate: bool) -> Callable[[JSONObj], bool]:
    def pred(obj: JSONObj) -> bool:
        return (_field_text(_get_path(obj, path)) == value) != negate

    return pred


def parse_field_selector(selector: str) -> list[Callable[[JSONObj], bool]]:
    """Predicates for a field selector (any dotted path, ``=``/``==``/``!=``)."""
    predicates: list[Callable[[JSONObj], bool]] = []
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        m = _FIELD_TERM.match(term)
        if not m:
            raise ValueError(f"invalid selector: {term!r}")
        predicates.append(_field_equals(m.group(1), m.group(3).strip(), negate=m.group(2) == "!="))
    return predicates


# --- patches -----------------------------------------------------------------------------


class _PatchError(Exception):
    """The patch could not be applied (422); ``bad_request`` for a malformed patch (400)."""

    def __init__(self, message: str, *, bad_request: bool = False) -> None:
        super().__init__(message)
        self.bad_request = bad_request


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: JSONObj = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise _PatchError(f"invalid JSON pointer {path!r}", bad_request=True)
    if path == "":
        return []
    if not path.startswith("/"):
        raise _PatchError(f"JSON pointer must start with '/': {path!r}", bad_request=True)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if allow_end and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise _PatchError(f"invalid array index {token!r}")
    idx = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if idx > limit:
        raise _PatchError(f"array index {idx} out of bounds")
    return idx


def _ptr_get(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for token in tokens:
        if isinstance(cur, dict):
            if token not in cur:
                raise _PatchError(f"doc is missing path: /{'/'.join(tokens)}")
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_index(cur, token, allow_end=False)]
        else:
            raise _PatchError(f"doc is missing path: /{'/'.join(tokens)}")
    return cur


def _ptr_add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _ptr_get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise _PatchError(f"cannot add at /{'/'.join(tokens)}: parent is not a container")
    return doc


def _ptr_remove(doc: Any, tokens: list[str]) -> tuple[Any, Any]:
    """Returns (new doc, removed value)."""
    if not tokens:
        return None, doc
    parent = _ptr_get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _PatchError(f"unable to remove nonexistent key: {last}")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, allow_end=False))
    raise _PatchError(f"cannot remove /{'/'.join(tokens)}: parent is not a container")


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise _PatchError("a JSON patch must be a list of operations", bad_request=True)
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise _PatchError(f"invalid JSON patch operation: {op!r}", bad_request=True)
        name, path = op["op"], _pointer(op["path"])
        if name in ("add", "replace", "test") and "value" not in op:
            raise _PatchError(f"{name} operation does not apply: missing value", bad_request=True)
        if name == "add":
            doc = _ptr_add(doc, path, copy.deepcopy(op["value"]))
        elif name == "remove":
            doc, _ = _ptr_remove(doc, path)
        elif name == "replace":
            _ptr_get(doc, path)  # must exist
            doc, _ = _ptr_remove(doc, path)
            doc = _ptr_add(doc, path, copy.deepcopy(op["value"]))
        elif name in ("move", "copy"):
            source = _pointer(op.get("from"))
            if name == "move":
                if path[: len(source)] == source and len(path) > len(source):
                    raise _PatchError("cannot move a value into one of its children")
                doc, value = _ptr_remove(doc, source)
            else:
                value = copy.deepcopy(_ptr_get(doc, source))
            doc = _ptr_add(doc, path, value)
        elif name == "test":
            if _ptr_get(doc, path) != op["value"]:
                raise _PatchError(f"testing value {op['path']} failed")
        else:
            raise _PatchError(f"unexpected JSON patch operation {name!r}", bad_request=True)
    return doc


# Kubernetes patchMergeKey for list fields (None: the list is atomic, replaced whole).
_SMP_MERGE_KEYS: dict[str, str | None] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "subjects": None,
    "rules": None,
    "tolerations": None,
    "envFrom": None,
    "items": None,
}
_DELETE = object()


def _merge_key(field: str, original: Any, patch: list[Any]) -> str | None:
    items = [i for i in patch if not (isinstance(i, dict) and set(i) == {"$patch"})]
    if original is not None and not isinstance(original, list):
        return None
    if not all(isinstance(i, dict) for i in [*items, *(original or [])]):
        return None
    if field == "ports":
        both = [*items, *(original or [])]
        return "containerPort" if any("containerPort" in i for i in both) else "port"
    if field in _SMP_MERGE_KEYS:
        return _SMP_MERGE_KEYS[field]
    if items and all("name" in i for i in items):
        return "name"
    return None


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return copy.deepcopy(value)


def _smp_list(field: str, original: Any, patch: list[Any]) -> list[Any]:
    replace_all = any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch)
    key = None if replace_all else _merge_key(field, original, patch)
    if key is None:
        return [_strip_directives(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    result: list[Any] = copy.deepcopy(original) if isinstance(original, list) else []
    for item in patch:
        directive = item.get("$patch")
        if key not in item:
            raise _PatchError(f"map: {item!r} does not contain declared merge key: {key}")
        idx = next(
            (
                n
                for n, cur in enumerate(result)
                if isinstance(cur, dict) and cur.get(key) == item[key]
            ),
            None,
        )
        if directive == "delete":
            if idx is not None:
                del result[idx]
        elif idx is not None:
            result[idx] = strategic_merge_patch(result[idx], item)
        else:
            result.append(_strip_directives(item))
    return result


def strategic_merge_patch(original: Any, patch: Any) -> Any:
    """Kubernetes strategic merge patch, as far as the built-in kinds used here need it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return _DELETE
    result: JSONObj = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):  # $setElementOrder, $retainKeys, ...: ordering hints, ignored
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _smp_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    return result


# --- HTTP plumbing -----------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # FakeKubeServer joins its handler threads itself, with a timeout
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeKubeServer) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse-DNS lookup of the host name."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fake._track_connection(sock, add=True)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"fake-kube-{self.fake.name}-conn",
            daemon=True,
        )
        self.fake._track_thread(thread)
        thread.start()

    def close_request(self, request: Any) -> None:
        self.fake._track_connection(request, add=False)
        super().close_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections cut by set_unreachable/stop end with socket errors: stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr (the server keeps its own request log)."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        fake = cast(_HTTPServer, self.server).fake
        body = self._read_body()
        status, payload, content_type = fake._handle_http(
            self.command,
            self.path,
            self.headers.get("Authorization", ""),
            self.headers.get("Content-Type", ""),
            body,
        )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()


@dataclass
class _Fault:
    status: int
    remaining: int
    method: str | None
    path_contains: str | None
    message: str
    writes_only: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.writes_only and method not in _WRITE_METHODS:
            return False
        if self.method and self.method.upper() != method:
            return False
        return not self.path_contains or self.path_contains in path


@dataclass(frozen=True)
class _Route:
    rt: ResourceType
    namespace: str | None  # None: cluster-scoped, or a list across all namespaces
    name: str | None
    subresource: str | None


Store = dict[ResourceType, dict[tuple[str, str], JSONObj]]


# --- the server --------------------------------------------------------------------------


class FakeKubeServer:
    """A fake Kubernetes API server on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        token: str = "sandbox-token",  # noqa: S107
        calico_group: str = "projectcalico.org",
        calico_version: str = "v3",
    ) -> None:
        self.name = name
        self.token = token
        # Extra bearer tokens to accept (e.g. EKS IAM tokens ``k8s-aws-v1.*``); None: none.
        self.accept_token: Callable[[str], bool] | None = None
        self.calico_group = calico_group
        self.calico_version = calico_version
        self._lock = threading.RLock()  # the store, the log, the faults
        self._life_lock = threading.Lock()  # start/stop/unreachable (never held by handlers)
        self._types: dict[tuple[str, str, str], ResourceType] = {}  # (group, version, plural)
        self._by_kind: dict[tuple[str, str], ResourceType] = {}  # (apiVersion, kind)
        self._store: Store = {}
        self._rv = 0
        self._log: list[RequestRecord] = []
        self._faults: list[_Fault] = []
        self._status_types = {
            ("", "pods"),
            ("", "nodes"),
            ("", "services"),
            ("", "namespaces"),
            ("apps", "daemonsets"),
            ("apps", "deployments"),
            (calico_group, "kubecontrollersconfigurations"),
            (calico_group, "licensekeys"),
        }
        self._httpd: _HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._port: int | None = None
        self._running = False
        self._unreachable = False
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._conn_lock = threading.Lock()
        self._ca_pem = self._make_ca_pem()
        self._token_kid = _b64url(secrets.token_bytes(16))
        for rt in builtin_types(calico_group, calico_version):
            self.register(rt)
        for ns in _DEFAULT_NAMESPACES:
            self.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeKubeServer:
        """Listen (ephemeral port the first time, the same port afterwards); idempotent."""
        with self._life_lock:
            if not self._running:
                self._bind()
                self._running = True
                self._unreachable = False
        return self

    def stop(self) -> None:
        """Stop listening, cut every connection and join the server's threads."""
        with self._life_lock:
            if self._running and not self._unreachable:
                self._unbind()
            self._running = False
            self._unreachable = False

    def __enter__(self) -> FakeKubeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"FakeKubeServer {self.name!r} has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca_data(self) -> str:
        """base64 of a PEM-looking CA certificate (decorative: the server speaks HTTP)."""
        return _b64(self._ca_pem)

    def set_token(self, token: str) -> None:
        self.token = token

    def kubeconfig(self, token: str | None = None, *, context: str | None = None) -> JSONObj:
        """A kubeconfig dict for this server with bearer-token auth."""
        ctx = context or self.name
        user = f"{self.name}-admin"
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [
                {
                    "name": self.name,
                    "cluster": {"server": self.url, "certificate-authority-data": self.ca_data},
                }
            ],
            "users": [{"name": user, "user": {"token": token or self.token}}],
            "contexts": [{"name": ctx, "context": {"cluster": self.name, "user": user}}],
            "current-context": ctx,
        }

    def _bind(self) -> None:
        last_error: OSError | None = None
        for _ in range(50):  # the old listener's port may take a moment to be free again
            try:
                httpd = _HTTPServer(("127.0.0.1", self._port or 0), self)
                break
            except OSError as exc:
                last_error = exc
                time.sleep(0.02)
        else:
            raise RuntimeError(f"cannot listen on port {self._port}: {last_error}")
        self._port = int(httpd.server_address[1])
        self._httpd = httpd
        self._serve_thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"fake-kube-{self.name}",
            daemon=True,
        )
        self._serve_thread.start()

    def _unbind(self) -> None:
        httpd, thread = self._httpd, self._serve_thread
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        with self._conn_lock:
            connections = list(self._connections)
            self._connections.clear()
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._conn_lock:
            threads = list(self._threads)
            self._threads.clear()
        for t in threads:
            t.join(timeout=5)
        self._httpd = None
        self._serve_thread = None

    def _track_connection(self, sock: socket.socket, *, add: bool) -> None:
        with self._conn_lock:
            if add:
                self._connections.add(sock)
            else:
                self._connections.discard(sock)

    def _track_thread(self, thread: threading.Thread) -> None:
        with self._conn_lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    # --- types ---------------------------------------------------------------------------

    def register(self, rt: ResourceType) -> None:
        """Serve a kind (replacing an earlier registration of the same group/version/plural)."""
        with self._lock:
            old = self._types.get((rt.group, rt.version, rt.plural))
            if old is not None and old != rt:
                self._by_kind.pop((old.api_version, old.kind), None)
                self._store[rt] = self._store.pop(old, {})
            self._types[(rt.group, rt.version, rt.plural)] = rt
            self._by_kind[(rt.api_version, rt.kind)] = rt
            self._store.setdefault(rt, {})

    def _type_for(self, api_version: str, kind: str) -> ResourceType:
        try:
            return self._by_kind[(api_version, kind)]
        except KeyError:
            raise KeyError(f"{self.name}: no registered type for {api_version} {kind}") from None

    # --- direct store access (not logged, no validation) ---------------------------------

    def seed(self, obj: JSONObj) -> JSONObj:
        """Create or replace an object directly, filling metadata as a create would."""
        with self._lock:
            rt = self._type_for(str(obj.get("apiVersion")), str(obj.get("kind")))
            new = copy.deepcopy(obj)
            meta = new.setdefault("metadata", {})
            name = meta.get("name")
            if not name:
                raise ValueError("seed: metadata.name is required")
            ns = ""
            if rt.namespaced:
                ns = meta.get("namespace") or "default"
                meta["namespace"] = ns
                ns_rt = self._by_kind[("v1", "Namespace")]
                if ("", ns) not in self._store[ns_rt]:
                    self.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            else:
                meta.pop("namespace", None)
            existing = self._store[rt].get((ns, name))
            meta.setdefault("uid", existing["metadata"]["uid"] if existing else str(uuid.uuid4()))
            meta.setdefault(
                "creationTimestamp",
                existing["metadata"]["creationTimestamp"] if existing else _now(),
            )
            meta.setdefault("generation", 1)
            try:
                self._prepare(rt, name, new, existing, validate=False)
            except _ApiError as exc:
                raise ValueError(f"seed: {exc.message}") from None
            self._commit(rt, new)
            self._run_controllers(rt, new)
            return copy.deepcopy(self._store[rt][(ns, name)])

    def get_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> JSONObj | None:
        with self._lock:
            rt = self._type_for(api_version, kind)
            obj = self._store[rt].get((self._ns_key(rt, namespace), name))
            return copy.deepcopy(obj) if obj is not None else None

    def list_objects(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> list[JSONObj]:
        with self._lock:
            rt = self._type_for(api_version, kind)
            return [
                copy.deepcopy(obj)
                for (ns, _), obj in sorted(self._store[rt].items())
                if namespace is None or not rt.namespaced or ns == namespace
            ]

    def delete_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> bool:
        with self._lock:
            rt = self._type_for(api_version, kind)
            obj = self._store[rt].get((self._ns_key(rt, namespace), name))
            if obj is None:
                return False
            self._remove(rt, obj)
            return True

    def mutate(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        fn: Callable[[JSONObj], None],
    ) -> JSONObj:
        """Edit an object out of band (like another actor); bumps resourceVersion."""
        with self._lock:
            rt = self._type_for(api_version, kind)
            key = (self._ns_key(rt, namespace), name)
            existing = self._store[rt].get(key)
            if existing is None:
                raise KeyError(f"{self.name}: {rt.resource} {key} not found")
            new = copy.deepcopy(existing)
            fn(new)
            new["apiVersion"], new["kind"] = rt.api_version, rt.kind
            meta = new.setdefault("metadata", {})
            meta["name"] = name
            if rt.namespaced:
                meta["namespace"] = key[0]
            if new.get("spec") != existing.get("spec"):
                meta["generation"] = int(existing["metadata"].get("generation", 1)) + 1
            if rt.plural == "secrets" and rt.group == "":
                self._fold_string_data(new)
            self._commit(rt, new)
            self._run_controllers(rt, new)
            return copy.deepcopy(self._store[rt][key])

    def rotate_token(self, namespace: str, secret_name: str) -> str:
        """Put a new token into a service-account token Secret; returns the new token."""
        with self._lock:
            rt = self._by_kind[("v1", "Secret")]
            secret = self._store[rt].get((namespace, secret_name))
            if secret is None:
                raise KeyError(f"{self.name}: secret {namespace}/{secret_name} not found")
            new = copy.deepcopy(secret)
            annotations = new.get("metadata", {}).get("annotations") or {}
            sa_name = str(annotations.get(SA_NAME_ANNOTATION))
            sa = self._store[self._by_kind[("v1", "ServiceAccount")]].get((namespace, sa_name))
            sa_uid = str(sa["metadata"]["uid"]) if sa else ""
            token = self._make_token(namespace, sa_name, sa_uid, secret_name)
            data = new.setdefault("data", {})
            data["token"] = _b64(token)
            data.setdefault("ca.crt", _b64(self._ca_pem))
            data.setdefault("namespace", _b64(namespace))
            self._commit(rt, new)
            return token

    def authenticates(self, token: str) -> bool:
        """Whether a bearer token is accepted: the admin token, a stored SA token, or one
        :attr:`accept_token` (an optional predicate) accepts."""
        with self._lock:
            if token == self.token or token in self._sa_tokens():
                return True
        hook = self.accept_token
        return bool(hook is not None and hook(token))

    # --- request log and faults ----------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def writes(self) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self._log if r.is_write]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        message: str = "injected fault",
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` and a Status body."""
        with self._lock:
            self._faults.append(_Fault(status, times, method, path_contains, message))

    def conflict_next(self, times: int = 1, *, path_contains: str | None = None) -> None:
        """Answer the next ``times`` matching writes with 409 Conflict."""
        with self._lock:
            self._faults.append(
                _Fault(409, times, None, path_contains, "injected conflict", writes_only=True)
            )

    def clear_faults(self) -> None:
        """Forget every pending injected fault."""
        with self._lock:
            self._faults.clear()

    def set_unreachable(self, unreachable: bool) -> None:
        """True: stop listening and cut kept-alive connections; False: listen again."""
        with self._life_lock:
            if not self._running or unreachable == self._unreachable:
                self._unreachable = unreachable and self._running
                return
            if unreachable:
                self._unbind()
            else:
                self._bind()
            self._unreachable = unreachable

    def _take_fault(self, method: str, path: str, *, writes_only: bool) -> _Fault | None:
        for fault in self._faults:
            if fault.writes_only == writes_only and fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # --- HTTP entry point ----------------------------------------------------------------

    def _handle_http(
        self, method: str, raw_path: str, authorization: str, content_type: str, body: bytes
    ) -> tuple[int, bytes, str]:
        split = urlsplit(raw_path)
        path, query = split.path, split.query
        ctype = "application/json"
        try:
            with self._lock:
                fault = self._take_fault(method, path, writes_only=False)
            if fault is not None:
                raise _ApiError(fault.status, fault.message)
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not self.authenticates(token.strip()):
                raise _ApiError(401, "Unauthorized")
            status, result = self._serve(method, path, query, content_type, body)
            if isinstance(result, str):
                payload, ctype = result.encode(), "text/plain; charset=utf-8"
            else:
                payload = json.dumps(result).encode()
        except _ApiError as exc:
            status = exc.code
            payload = json.dumps(
                _status_body(exc.code, exc.reason, exc.message, exc.details)
            ).encode()
        except Exception as exc:  # a bug in the fake: answer 500 rather than hang the client
            status = 500
            payload = json.dumps(
                _status_body(500, "InternalError", f"fake API server error: {exc!r}")
            ).encode()
        with self._lock:
            self._log.append(RequestRecord(method, path, query, status))
        return status, payload, ctype

    def _serve(
        self, method: str, path: str, query: str, content_type: str, raw: bytes
    ) -> tuple[int, Any]:
        segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        special = self._special(method, segments)
        if special is not None:
            return 200, special
        route = self._route(segments)
        params = parse_qs(query, keep_blank_values=True)
        body: Any = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise _bad_request(f"the request body is not valid JSON: {exc}") from None
        with self._lock:
            if method in _WRITE_METHODS:
                fault = self._take_fault(method, path, writes_only=True)
                if fault is not None:
                    raise _conflict(route.rt, route.name or "")
            dry_run = "All" in params.get("dryRun", [])
            saved = (copy.deepcopy(self._store), self._rv) if dry_run else None
            try:
                return self._serve_resource(method, route, params, content_type, body)
            finally:
                if saved is not None:
                    self._store, self._rv = saved

    def _special(self, method: str, segments: list[str]) -> Any:
        """Non-resource paths and discovery; None when ``segments`` name resources."""
        if method != "GET":
            return None
        if not segments:
            return {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/version"]}
        if segments == ["version"]:
            return dict(_SERVER_VERSION)
        if segments[0] in ("healthz", "livez", "readyz"):
            return "ok"
        with self._lock:
            types = list(self._types.values())
        if segments == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
                ],
            }
        groups: dict[str, list[str]] = {}
        for rt in types:
            if rt.group and rt.version not in groups.setdefault(rt.group, []):
                groups[rt.group].append(rt.version)

        def group_doc(group: str) -> JSONObj:
            versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in groups[group]]
            return {"name": group, "versions": versions, "preferredVersion": versions[0]}

        if segments == ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [group_doc(g) for g in sorted(groups)],
            }
        if len(segments) == 2 and segments[0] == "apis" and segments[1] in groups:
            return {"kind": "APIGroup", "apiVersion": "v1", **group_doc(segments[1])}
        gv: tuple[str, str] | None = None
        if len(segments) == 2 and segments[0] == "api":
            gv = ("", segments[1])
        elif len(segments) == 3 and segments[0] == "apis":
            gv = (segments[1], segments[2])
        if gv is None:
            return None
        resources: list[JSONObj] = []
        for rt in sorted(types, key=lambda t: t.plural):
            if (rt.group, rt.version) != gv:
                continue
            resources.append(
                {
                    "name": rt.plural,
                    "singularName": rt.kind.lower(),
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["create", "delete", "get", "list", "patch", "update"],
                }
            )
            if (rt.group, rt.plural) in self._status_types:
                resources.append(
                    {
                        "name": f"{rt.plural}/status",
                        "singularName": "",
                        "namespaced": rt.namespaced,
                        "kind": rt.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        if not resources:
            raise _ApiError(404, "the server could not find the requested resource")
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{gv[0]}/{gv[1]}" if gv[0] else gv[1],
            "resources": resources,
        }

    def _route(self, segments: list[str]) -> _Route:
        not_found = _ApiError(404, "the server could not find the requested resource")
        if len(segments) >= 3 and segments[0] == "api":
            group, version, rest = "", segments[1], segments[2:]
        elif len(segments) >= 4 and segments[0] == "apis":
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            raise not_found
        namespace: str | None = None
        is_ns_subresource = (
            rest[0] == "namespaces" and len(rest) == 3 and rest[2] in ("status", "finalize")
        )
        if rest[0] == "namespaces" and len(rest) >= 3 and not is_ns_subresource:
            namespace, rest = rest[1], rest[2:]
            if len(rest) > 3:
                raise not_found
        elif len(rest) > 3:
            raise not_found
        with self._lock:
            rt = self._types.get((group, version, rest[0]))
        if rt is None:
            raise not_found
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if namespace is not None and not rt.namespaced:
            raise not_found
        if rt.namespaced and namespace is None and name is not None:
            raise not_found
        if sub is not None and (sub != "status" or (rt.group, rt.plural) not in self._status_types):
            raise not_found
        return _Route(rt, namespace, name, sub)

    def _serve_resource(
        self, method: str, route: _Route, params: dict[str, list[str]], ctype: str, body: Any
    ) -> tuple[int, Any]:
        rt, ns, name = route.rt, route.namespace, route.name
        if name is None:
            if method == "GET":
                if params.get("watch", [""])[0] in ("true", "1"):
                    raise _bad_request("watch is not supported by this fake API server")
                return 200, self._list(rt, ns, params)
            if method == "POST" and (ns is not None or not rt.namespaced):
                return 201, self._create(rt, ns, body, params)
            raise _ApiError(405, f"the server does not allow this method on {rt.resource}")
        if method == "GET":
            obj = self._store[rt].get((ns or "", name))
            if obj is None:
                raise _not_found(rt, name)
            return 200, copy.deepcopy(obj)
        if method == "PUT":
            return 200, self._replace(rt, ns or "", name, body, route.subresource)
        if method == "PATCH":
            return 200, self._patch(rt, ns or "", name, body, ctype, route.subresource)
        if method == "DELETE" and route.subresource is None:
            return 200, self._delete(rt, ns or "", name, body)
        raise _ApiError(405, f"the server does not allow this method on {rt.resource}")

    # --- operations (called with the lock held) ------------------------------------------

    def _ns_key(self, rt: ResourceType, namespace: str | None) -> str:
        if rt.namespaced:
            if not namespace:
                raise ValueError(f"{rt.kind} is namespaced: a namespace is required")
            return namespace
        return ""

    def _commit(self, rt: ResourceType, obj: JSONObj) -> None:
        self._rv += 1
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._rv)
        self._store[rt][(meta.get("namespace", "") if rt.namespaced else "", meta["name"])] = (
            copy.deepcopy(obj)
        )

    def _remove(self, rt: ResourceType, obj: JSONObj) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace", "") if rt.namespaced else ""
        self._store[rt].pop((ns, meta["name"]), None)
        self._rv += 1
        if rt.group == "" and rt.plural == "namespaces":
            for other, bucket in self._store.items():
                if other.namespaced:
                    for key in [k for k in bucket if k[0] == meta["name"]]:
                        del bucket[key]
        elif rt.group == "" and rt.plural == "serviceaccounts":
            secrets_rt = self._by_kind[("v1", "Secret")]
            for key, secret in list(self._store[secrets_rt].items()):
                annotations = secret.get("metadata", {}).get("annotations") or {}
                if (
                    key[0] == ns
                    and secret.get("type") == SA_TOKEN_TYPE
                    and annotations.get(SA_NAME_ANNOTATION) == meta["name"]
                ):
                    del self._store[secrets_rt][key]

    def _check_kind(self, rt: ResourceType, body: Any) -> JSONObj:
        if not isinstance(body, dict):
            raise _bad_request("the request body must be a JSON object")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if kind and kind != rt.kind:
            raise _bad_request(
                f"the kind in the body ({kind}) does not match the kind of the URL ({rt.kind})"
            )
        if api_version and api_version != rt.api_version:
            raise _bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise _bad_request("metadata must be an object")
        body["apiVersion"], body["kind"] = rt.api_version, rt.kind
        return meta

    def _list(self, rt: ResourceType, ns: str | None, params: dict[str, list[str]]) -> JSONObj:
        try:
            labels = parse_label_selector(params.get("labelSelector", [""])[0])
            fields = parse_field_selector(params.get("fieldSelector", [""])[0])
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        items: list[JSONObj] = []
        for (obj_ns, _), obj in sorted(self._store[rt].items()):
            if ns is not None and obj_ns != ns:
                continue
            obj_labels = obj.get("metadata", {}).get("labels") or {}
            if all(p(obj_labels) for p in labels) and all(p(obj) for p in fields):
                items.append(copy.deepcopy(obj))
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _create(
        self, rt: ResourceType, ns: str | None, body: Any, params: dict[str, list[str]]
    ) -> JSONObj:
        obj = copy.deepcopy(body)
        meta = self._check_kind(rt, obj)
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise _bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise _bad_request("resourceVersion should not be set on objects to be created")
        bucket = self._store[rt]
        name = meta.get("name")
        if not name and meta.get("generateName"):
            while True:
                suffix = "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
                name = f"{meta['generateName']}{suffix}"
                if (ns or "", name) not in bucket:
                    break
            meta["name"] = name
        if not name or not isinstance(name, str):
            raise _invalid(
                rt,
                "",
                f"{rt.kind} is invalid: metadata.name: Required value: name or generateName "
                "is required",
                "metadata.name",
            )
        problem = _name_problem(rt, name)
        if problem:
            raise _invalid(
                rt,
                name,
                f'{rt.kind} "{name}" is invalid: metadata.name: Invalid value: "{name}": {problem}',
                "metadata.name",
            )
        if rt.namespaced:
            ns_rt = self._by_kind[("v1", "Namespace")]
            if ("", ns) not in self._store[ns_rt]:
                raise _ApiError(
                    404,
                    f'namespaces "{ns}" not found',
                    details={"name": ns, "kind": "namespaces"},
                )
        if (ns or "", name) in bucket:
            raise _ApiError(
                409,
                f'{rt.resource} "{name}" already exists',
                reason="AlreadyExists",
                details=_details(rt, name),
            )
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["generation"] = 1
        self._prepare(rt, name, obj, None, validate=True)
        self._commit(rt, obj)
        created = copy.deepcopy(self._store[rt][(ns or "", name)])
        self._run_controllers(rt, obj)
        return created

    def _replace(
        self, rt: ResourceType, ns: str, name: str, body: Any, subresource: str | None
    ) -> JSONObj:
        existing = self._store[rt].get((ns, name))
        if existing is None:
            raise _not_found(rt, name)
        return self._update(rt, ns, name, copy.deepcopy(body), existing, subresource)

    def _patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        patch: Any,
        content_type: str,
        subresource: str | None,
    ) -> JSONObj:
        ctype = content_type.split(";", maxsplit=1)[0].strip().lower()
        if ctype in ("application/apply-patch+yaml", "application/apply-patch+cbor"):
            raise _ApiError(415, "server-side apply is not supported by this fake API server")
        appliers: dict[str, Callable[[Any, Any], Any]] = {
            "application/merge-patch+json": merge_patch,
            "application/json-patch+json": json_patch,
            "application/strategic-merge-patch+json": strategic_merge_patch,
        }
        apply = appliers.get(ctype)
        if apply is None:
            raise _ApiError(415, f"the body of the request was in an unknown format: {ctype}")
        if patch is None:
            raise _bad_request("the PATCH body is empty")
        existing = self._store[rt].get((ns, name))
        if existing is None:
            raise _not_found(rt, name)
        try:
            patched = apply(copy.deepcopy(existing), patch)
        except _PatchError as exc:
            if exc.bad_request:
                raise _bad_request(str(exc)) from None
            raise _invalid(rt, name, str(exc), "patch") from None
        if not isinstance(patched, dict):
            raise _invalid(rt, name, "the patched object is not a JSON object", "patch")
        return self._update(rt, ns, name, patched, existing, subresource)

    def _update(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        new: Any,
        existing: JSONObj,
        subresource: str | None,
    ) -> JSONObj:
        meta = self._check_kind(rt, new)
        if meta.get("name") and meta["name"] != name:
            raise _bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != ns:
            raise _bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        old_meta = existing["metadata"]
        rv = meta.get("resourceVersion")
        if rv and str(rv) != old_meta["resourceVersion"]:
            raise _conflict(rt, name)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise _ApiError(
                409,
                f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: "
                f"{old_meta['uid']}",
                reason="Conflict",
                details=_details(rt, name),
            )
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(existing)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            meta = new["metadata"]
        elif (rt.group, rt.plural) in self._status_types:
            if "status" in existing:
                new["status"] = copy.deepcopy(existing["status"])
            else:
                new.pop("status", None)
        meta["name"] = name
        if rt.namespaced:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        for key in ("uid", "creationTimestamp", "generation"):
            if key in old_meta:
                meta[key] = old_meta[key]
        if new.get("spec") != existing.get("spec"):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        self._prepare(rt, name, new, existing, validate=True)
        self._commit(rt, new)
        updated = copy.deepcopy(self._store[rt][(ns, name)])
        self._run_controllers(rt, new)
        return updated

    def _delete(self, rt: ResourceType, ns: str, name: str, options: Any) -> JSONObj:
        existing = self._store[rt].get((ns, name))
        if existing is None:
            raise _not_found(rt, name)
        preconditions = (options or {}).get("preconditions") if isinstance(options, dict) else None
        if isinstance(preconditions, dict):
            meta = existing["metadata"]
            want_rv, want_uid = preconditions.get("resourceVersion"), preconditions.get("uid")
            if want_rv and str(want_rv) != meta["resourceVersion"]:
                raise _ApiError(
                    409,
                    f"Precondition failed: ResourceVersion in precondition: {want_rv}, "
                    f"ResourceVersion in object meta: {meta['resourceVersion']}",
                    reason="Conflict",
                    details=_details(rt, name),
                )
            if want_uid and want_uid != meta["uid"]:
                raise _ApiError(
                    409,
                    f"Precondition failed: UID in precondition: {want_uid}, UID in object meta: "
                    f"{meta['uid']}",
                    reason="Conflict",
                    details=_details(rt, name),
                )
        self._remove(rt, existing)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": _details(rt, name, uid=existing["metadata"]["uid"]),
        }

    # --- kind-specific behaviour ---------------------------------------------------------

    def _prepare(
        self, rt: ResourceType, name: str, obj: JSONObj, existing: JSONObj | None, *, validate: bool
    ) -> None:
        """Defaulting and validation of one kind, before the object is stored."""
        if rt.group == "":
            if rt.plural == "secrets":
                self._prepare_secret(rt, name, obj, existing, validate=validate)
            elif rt.plural == "namespaces":
                obj.setdefault("spec", {"finalizers": ["kubernetes"]})
                obj.setdefault("status", {"phase": "Active"})
        elif rt.group == self.calico_group:
            if rt.plural == "ippools":
                self._prepare_ippool(rt, name, obj, existing, validate=validate)
            elif rt.plural == "remoteclusterconfigurations" and validate:
                self._validate_rcc(rt, name, obj)

    @staticmethod
    def _fold_string_data(obj: JSONObj) -> None:
        string_data = obj.pop("stringData", None)
        if not string_data:
            return
        if not isinstance(string_data, dict) or not all(
            isinstance(v, str) for v in string_data.values()
        ):
            raise _bad_request("stringData must map keys to strings")
        data = obj.get("data")
        if not isinstance(data, dict):
            data = obj["data"] = {}
        for key, value in string_data.items():
            data[key] = _b64(value)

    def _prepare_secret(
        self,
        rt: ResourceType,
        name: str,
        obj: JSONObj,
        existing: JSONObj | None,
        *,
        validate: bool,
    ) -> None:
        self._fold_string_data(obj)
        data = obj.get("data")
        if data is not None:
            if not isinstance(data, dict):
                raise _bad_request("Secret data must be an object")
            for key, value in data.items():
                try:
                    if not isinstance(value, str):
                        raise ValueError("not a string")
                    base64.b64decode(value, validate=True)
                except (ValueError, binascii.Error):
                    raise _bad_request(
                        f'Secret in version "v1" cannot be handled as a Secret: illegal base64 '
                        f"data in data[{key!r}]"
                    ) from None
        obj.setdefault("type", "Opaque")
        if not validate:
            return
        if existing is not None and obj["type"] != existing.get("type", "Opaque"):
            raise _invalid(
                rt,
                name,
                f'Secret "{name}" is invalid: type: Invalid value: "{obj["type"]}": field is '
                "immutable",
                "type",
            )
        annotations = obj.get("metadata", {}).get("annotations") or {}
        if obj["type"] == SA_TOKEN_TYPE and not annotations.get(SA_NAME_ANNOTATION):
            raise _invalid(
                rt,
                name,
                f'Secret "{name}" is invalid: metadata.annotations[{SA_NAME_ANNOTATION}]: '
                "Required value",
                f"metadata.annotations[{SA_NAME_ANNOTATION}]",
            )

    def _prepare_ippool(
        self,
        rt: ResourceType,
        name: str,
        obj: JSONObj,
        existing: JSONObj | None,
        *,
        validate: bool,
    ) -> None:
        spec = obj.get("spec")
        if spec is None:
            spec = obj["spec"] = {}
        if not isinstance(spec, dict):
            raise _invalid(rt, name, "IPPool.Spec: must be an object", "spec")
        network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
        cidr = spec.get("cidr")
        if isinstance(cidr, str) and cidr:
            try:
                network = ipaddress.ip_network(cidr, strict=True)
            except ValueError:
                network = None
        ipv6 = network is not None and network.version == 6
        spec.setdefault("blockSize", 122 if ipv6 else 26)
        spec.setdefault("ipipMode", "Never")
        spec.setdefault("vxlanMode", "Never")
        spec.setdefault("natOutgoing", False)
        spec.setdefault("disabled", False)
        spec.setdefault("nodeSelector", "all()")
        spec.setdefault("allowedUses", ["Workload", "Tunnel"])
        if network is not None:
            spec["cidr"] = str(network)
        if not validate:
            return

        def invalid(field: str, value: Any, why: str) -> _ApiError:
            shown = f'"{value}"' if isinstance(value, str) else json.dumps(value)
            return _invalid(rt, name, f"IPPool.Spec.{field}: Invalid value: {shown}: {why}", field)

        if not cidr:
            raise _invalid(rt, name, "IPPool.Spec.CIDR: Required value", "CIDR")
        if network is None:
            raise invalid("CIDR", cidr, "must be a valid network CIDR (no host bits set)")
        block = spec["blockSize"]
        low, high = (116, 128) if ipv6 else (20, 32)
        if not isinstance(block, int) or isinstance(block, bool) or not low <= block <= high:
            raise invalid("BlockSize", block, f"block size must be between {low} and {high}")
        for field in ("ipipMode", "vxlanMode"):
            if spec[field] not in ("Never", "Always", "CrossSubnet"):
                raise invalid(
                    field[0].upper() + field[1:],
                    spec[field],
                    "must be Never, Always or CrossSubnet",
                )
        if spec["ipipMode"] != "Never" and spec["vxlanMode"] != "Never":
            raise invalid("IPIPMode", spec["ipipMode"], "IPIP and VXLAN cannot both be enabled")
        if ipv6 and spec["ipipMode"] != "Never":
            raise invalid("IPIPMode", spec["ipipMode"], "IPIP is not supported on IPv6 pools")
        for field in ("natOutgoing", "disabled", "disableBGPExport"):
            if field in spec and not isinstance(spec[field], bool):
                raise invalid(field[0].upper() + field[1:], spec[field], "must be a boolean")
        uses = spec["allowedUses"]
        if not isinstance(uses, list) or any(
            u not in ("Workload", "Tunnel", "LoadBalancer") for u in uses
        ):
            raise invalid("AllowedUses", uses, "must be Workload, Tunnel or LoadBalancer")
        if not spec["disabled"] and network.prefixlen > block:
            raise invalid(
                "CIDR",
                cidr,
                "IP pool size is too small for use with Calico IPAM. It must be equal to or "
                "greater than the block size.",
            )
        if existing is None:
            for (_, other_name), other in sorted(self._store[rt].items()):
                other_cidr = (other.get("spec") or {}).get("cidr")
                try:
                    other_net = ipaddress.ip_network(str(other_cidr), strict=False)
                except ValueError:
                    continue
                if other_name != name and network.overlaps(other_net):
                    raise _invalid(
                        rt,
                        name,
                        f"IPPool({name}) CIDR overlaps with IPPool({other_name}) CIDR {other_cidr}",
                        "CIDR",
                    )
            return
        old_spec = existing.get("spec") or {}
        if spec["cidr"] != old_spec.get("cidr"):
            raise invalid(
                "CIDR", spec["cidr"], "field is immutable (IPPool CIDR cannot be modified)"
            )
        if block != old_spec.get("blockSize"):
            raise invalid(
                "BlockSize", block, "field is immutable (IPPool BlockSize cannot be modified)"
            )

    def _validate_rcc(self, rt: ResourceType, name: str, obj: JSONObj) -> None:
        spec = obj.get("spec") or {}
        if not isinstance(spec, dict):
            raise _invalid(rt, name, "RemoteClusterConfiguration.Spec: must be an object", "spec")
        datastore = spec.get("datastoreType")
        if datastore not in (None, "", "kubernetes", "etcdv3"):
            raise _invalid(
                rt,
                name,
                f'RemoteClusterConfiguration.Spec.DatastoreType: Invalid value: "{datastore}": '
                "must be kubernetes or etcdv3",
                "DatastoreType",
            )
        mode = (spec.get("syncOptions") or {}).get("overlayRoutingMode")
        if mode not in (None, "", "Enabled", "Disabled"):
            raise _invalid(
                rt,
                name,
                "RemoteClusterConfiguration.Spec.SyncOptions.OverlayRoutingMode: Invalid value: "
                f'"{mode}": must be Enabled or Disabled',
                "SyncOptions.OverlayRoutingMode",
            )
        if spec.get("clusterAccessSecret"):
            inline = sorted(
                k
                for k, v in spec.items()
                if k not in ("clusterAccessSecret", "syncOptions") and v not in (None, "", False)
            )
            if inline:
                raise _invalid(
                    rt,
                    name,
                    "RemoteClusterConfiguration.Spec: Invalid value: "
                    f"{inline}: must be empty when clusterAccessSecret is set",
                    "ClusterAccessSecret",
                )

    # --- the token controller ------------------------------------------------------------

    def _run_controllers(self, rt: ResourceType, obj: JSONObj) -> None:
        if rt.group != "":
            return
        meta = obj.get("metadata", {})
        secrets_rt = self._by_kind[("v1", "Secret")]
        if rt.plural == "secrets":
            self._fill_token(secrets_rt, meta.get("namespace", ""), meta["name"])
        elif rt.plural == "serviceaccounts":
            ns = meta.get("namespace", "")
            for secret_ns, secret_name in sorted(self._store[secrets_rt]):
                if secret_ns == ns:
                    self._fill_token(secrets_rt, ns, secret_name)

    def _fill_token(self, secrets_rt: ResourceType, ns: str, name: str) -> None:
        secret = self._store[secrets_rt].get((ns, name))
        if secret is None or secret.get("type") != SA_TOKEN_TYPE:
            return
        annotations = secret.get("metadata", {}).get("annotations") or {}
        sa_name = annotations.get(SA_NAME_ANNOTATION)
        sa = self._store[self._by_kind[("v1", "ServiceAccount")]].get((ns, str(sa_name)))
        data = secret.get("data") or {}
        if sa is None or (data.get("token") and "ca.crt" in data and "namespace" in data):
            return
        new = copy.deepcopy(secret)
        new["metadata"].setdefault("annotations", {})[SA_UID_ANNOTATION] = sa["metadata"]["uid"]
        new_data = new.setdefault("data", {})
        if not new_data.get("token"):
            new_data["token"] = _b64(
                self._make_token(ns, str(sa_name), str(sa["metadata"]["uid"]), name)
            )
        new_data.setdefault("ca.crt", _b64(self._ca_pem))
        new_data.setdefault("namespace", _b64(ns))
        self._commit(secrets_rt, new)

    def _sa_tokens(self) -> set[str]:
        tokens: set[str] = set()
        for secret in self._store[self._by_kind[("v1", "Secret")]].values():
            raw = (secret.get("data") or {}).get("token")
            if secret.get("type") == SA_TOKEN_TYPE and raw:
                with contextlib.suppress(ValueError, binascii.Error):
                    tokens.add(base64.b64decode(raw).decode())
        return tokens

    def _make_token(self, ns: str, sa_name: str, sa_uid: str, secret_name: str) -> str:
        header = {"alg": "RS256", "kid": self._token_kid}
        payload = {
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": ns,
            "kubernetes.io/serviceaccount/secret.name": secret_name,
            "kubernetes.io/serviceaccount/service-account.name": sa_name,
            "kubernetes.io/serviceaccount/service-account.uid": sa_uid,
            "sub": f"system:serviceaccount:{ns}:{sa_name}",
            "jti": str(uuid.uuid4()),
        }
        return ".".join(
            (
                _b64url(json.dumps(header, separators=(",", ":")).encode()),
                _b64url(json.dumps(payload, separators=(",", ":")).encode()),
                _b64url(secrets.token_bytes(64)),
            )
        )

    def _make_ca_pem(self) -> str:
        body = _b64(f"fedkeeper fake CA for {self.name} ".encode() + secrets.token_bytes(300))
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
