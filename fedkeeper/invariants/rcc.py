"""Invariant 4 — rcc: each cluster federates the other through a RemoteClusterConfiguration.

On every cluster S, pointing at the other cluster O:
* the RCC (named after O) with ``clusterAccessSecret`` and ``overlayRoutingMode: Disabled``
  (pod IPs are routed over the VPN, not tunnelled), and no inline datastore fields;
* its access Secret (``datastoreType: kubernetes`` and a kubeconfig for O built from O's
  remote service-account token, CA and API endpoint);
* Role + RoleBinding ``remote-cluster-secret-access`` letting calico-typha read that Secret.
And on every cluster, for the other to read it: the remote ServiceAccount, its token Secret,
and ClusterRole + ClusterRoleBinding ``tigera-federation-remote-cluster``.

Created when absent, labelled as owned; owned objects that drifted are patched; objects we do
not own are never written — a finding says what is wrong with them.

One RCC per remote cluster ("each RemoteClusterConfiguration represents a single remote
cluster", Tigera docs): an RCC under another name whose access Secret (or inline kubeconfig or
endpoint) points at the other cluster's API server is the federation's RCC. When fedkeeper
does not own it, fedkeeper creates no RCC or access Secret of its own and reports it as
adoptable; once ``fedkeeper adopt`` labels it, it is kept under its own name, with its own
access Secret. Unowned objects with fedkeeper's names (remote ServiceAccount, token Secret,
RBAC, access Secret) are used as they are and reported as adoptable. Kubeconfigs are compared
by meaning (server, CA, token), so an unchanged world causes no write and a rotated token
updates the Secret. Secret material only ever travels in change payloads, never in reasons.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from fedkeeper.calico_v3 import RCC_OMITEMPTY_STRINGS, served_rcc_spec
from fedkeeper.invariants import Plan
from fedkeeper.invariants.shapes import (
    Problems,
    binding_problems,
    bool_at,
    decoded,
    mapping_at,
    metadata_problems,
    read_kubeconfig,
    rules_problems,
    secret_kubeconfig,
    shape_of,
    str_at,
    strings_at,
)
from fedkeeper.model import (
    FEDERATION_LABEL,
    IGNORE_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    Action,
    Backend,
    Change,
    Deferred,
    Finding,
    Invariant,
    Ownership,
    Severity,
    owner_labels,
    ownership,
)

SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
TYPHA_ACCESS = "remote-cluster-secret-access"
TYPHA_SA = ("calico-typha", "calico-system")
ROLE_LABEL = "fedkeeper.io/role"
ACCESS_SECRET_ROLE = "rcc-access-secret"
# Every datastore field of the spec: all must be empty beside clusterAccessSecret.
INLINE_DATASTORE_FIELDS = (*RCC_OMITEMPTY_STRINGS, "k8sInsecureSkipTLSVerify")
_READ = ["get", "list", "watch"]
REMOTE_RULES: tuple[dict[str, Any], ...] = (
    {
        "apiGroups": [""],
        "resources": ["namespaces", "serviceaccounts", "services", "endpoints", "pods", "nodes"],
        "verbs": _READ,
    },
    {
        "apiGroups": ["crd.projectcalico.org"],
        "resources": ["hostendpoints", "ipamblocks", "ippools"],
        "verbs": _READ,
    },
)
TYPHA_RULES: tuple[dict[str, Any], ...] = (
    {"apiGroups": [""], "resources": ["secrets"], "verbs": _READ},
)


@dataclass(frozen=True)
class RccNames:
    federation: str
    calico_api_version: str
    remote_sa: str
    remote_sa_namespace: str
    access_namespace: str


@dataclass(frozen=True)
class ClusterSide:
    """What one cluster holds, read for invariant 4."""

    backend: Backend
    name: str  # the cluster's name; the other side's RCC is named after it
    rcc_name: str  # name of the RCC this cluster holds (= the other cluster's name)
    endpoint: str  # how the other cluster's Typha reaches this API server
    ca_data: str | None  # base64 PEM of this API server's CA (None: use the token Secret's)
    service_account: Mapping[str, Any] | None
    token_secret: Mapping[str, Any] | None
    cluster_role: Mapping[str, Any] | None
    cluster_role_binding: Mapping[str, Any] | None
    typha_role: Mapping[str, Any] | None
    typha_binding: Mapping[str, Any] | None
    rccs: Sequence[Mapping[str, Any]]  # every RCC on the cluster
    access_secret: Mapping[str, Any] | None
    owned_access_secrets: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    # Secrets the RCCs' clusterAccessSecret refer to, by "namespace/name" (unreadable: absent)
    rcc_secrets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class RccObservation:
    names: RccNames
    eks: ClusterSide | None  # None: unreachable
    onprem: ClusterSide | None
    # The backends (mesh names) of the EKS cluster and the site, keying their changes.
    backends: tuple[Backend, Backend] = ("eks", "onprem")


# --- small helpers --------------------------------------------------------------------------


def _meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def _ignored(obj: Mapping[str, Any] | None) -> bool:
    annotations = _meta(obj).get("annotations")
    if not isinstance(annotations, Mapping):
        return False
    return str(annotations.get(IGNORE_ANNOTATION, "")).lower() == "true"


def _label(side: ClusterSide, kind: str, obj: Mapping[str, Any]) -> str:
    """``onprem Secret calico-system/name``: an object as findings and reasons name it."""
    meta = _meta(obj)
    ns = meta.get("namespace")
    where = f"{ns}/" if isinstance(ns, str) and ns else ""
    return f"{side.backend} {kind} {where}{meta.get('name')}"


def owned_by(obj: Mapping[str, Any] | None, federation: str) -> bool:
    """Owned by this federation: both ownership labels, with its name."""
    return obj is not None and ownership(obj, federation) is Ownership.OURS


def _labels(names: RccNames, role: str | None = None) -> dict[str, str]:
    out = owner_labels(names.federation)
    if role:
        out[ROLE_LABEL] = role
    return out


def access_secret_name(rcc_name: str) -> str:
    return f"remote-cluster-secret-{rcc_name}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _unb64(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of two merge-patch documents (``b`` wins)."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _rule_set(rules: Any) -> set[tuple[str, str, str]]:
    """(group, resource, verb) granted by PolicyRules of any shape (bad entries grant nothing)."""
    out: set[tuple[str, str, str]] = set()
    for r in rules if isinstance(rules, list) else []:
        if not isinstance(r, Mapping):
            continue
        ignored: list[str] = []
        groups = strings_at(r.get("apiGroups"), "", ignored) or [""]
        for g in groups:
            for res in strings_at(r.get("resources"), "", ignored):
                for v in strings_at(r.get("verbs"), "", ignored):
                    out.add((g, res, v))
    return out


def _data(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    data = obj.get("data") if isinstance(obj, Mapping) else None
    return data if isinstance(data, Mapping) else {}


def remote_token(side: ClusterSide) -> str | None:
    """The remote service account's token on ``side`` (decoded), if the Secret holds one."""
    return _unb64(_data(side.token_secret).get("token")) or None


def remote_ca(side: ClusterSide) -> str | None:
    """base64 PEM of ``side``'s CA: from describe_cluster (EKS) or the token Secret."""
    if side.ca_data:
        return side.ca_data
    ca = _data(side.token_secret).get("ca.crt")
    return ca if isinstance(ca, str) and ca else None


def build_kubeconfig(side: ClusterSide, token: str, sa_name: str) -> dict[str, Any]:
    """The kubeconfig the other cluster's Typha uses to read ``side``."""
    cluster: dict[str, Any] = {"server": side.endpoint}
    ca = remote_ca(side)
    if ca:
        cluster["certificate-authority-data"] = ca
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": side.name, "cluster": cluster}],
        "users": [{"name": sa_name, "user": {"token": token}}],
        "contexts": [{"name": side.name, "context": {"cluster": side.name, "user": sa_name}}],
        "current-context": side.name,
    }


def kubeconfig_meaning(text: str | None) -> tuple[str, str, str] | None:
    """(server, CA data, token) of a kubeconfig's current context; None if unreadable.

    A kubeconfig with any shape problem counts as unreadable: client-go (Typha) would not
    load it either.
    """
    meaning, problems = read_kubeconfig(text)
    return meaning.as_tuple() if meaning is not None and not problems else None


def normalized_server(url: Any) -> str | None:
    """``https://Host:443/`` → ``https://host:443``: one spelling per API server."""
    if not isinstance(url, str) or not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
        if not parts.hostname:
            return None
        scheme = parts.scheme or "https"
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return None
    return f"{scheme}://{parts.hostname.lower()}:{port}"


def access_secret_ref(rcc: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) of the RCC's clusterAccessSecret, if it names one by a string."""
    spec = rcc.get("spec") if isinstance(rcc, Mapping) else None
    ref = spec.get("clusterAccessSecret") if isinstance(spec, Mapping) else None
    if not isinstance(ref, Mapping) or not isinstance(ref.get("name"), str) or not ref["name"]:
        return None
    namespace = ref.get("namespace")
    return (namespace if isinstance(namespace, str) else ""), ref["name"]


def rcc_spec_problems(rcc: Mapping[str, Any]) -> Problems:
    """What in an RCC's spec is not of the shape the Calico v3 type has (tigera/api
    ``remoteclusterconfig.go``); the inline kubeconfig is read too."""
    problems: Problems = []
    spec = mapping_at(rcc.get("spec"), "spec", problems, required=True)
    ref = mapping_at(spec.get("clusterAccessSecret"), "spec.clusterAccessSecret", problems)
    for key in ("name", "namespace", "kind"):
        str_at(ref.get(key), f"spec.clusterAccessSecret.{key}", problems)
    sync = mapping_at(spec.get("syncOptions"), "spec.syncOptions", problems)
    str_at(sync.get("overlayRoutingMode"), "spec.syncOptions.overlayRoutingMode", problems)
    for key in RCC_OMITEMPTY_STRINGS:
        str_at(spec.get(key), f"spec.{key}", problems)
    bool_at(spec.get("k8sInsecureSkipTLSVerify"), "spec.k8sInsecureSkipTLSVerify", problems)
    inline = spec.get("kubeconfigInline")
    if isinstance(inline, str) and inline:
        problems += [f"spec.kubeconfigInline: {p}" for p in read_kubeconfig(inline)[1]]
    return problems


def rcc_server(rcc: Mapping[str, Any], side: ClusterSide) -> str | None:
    """The API server an RCC on ``side`` reads: from its access Secret or inline fields.

    None when it reads nothing fedkeeper can tell: a Secret it may not read, a kubeconfig or
    spec of the wrong shape (such an RCC federates nothing).
    """
    spec = rcc.get("spec") if isinstance(rcc, Mapping) else None
    if not isinstance(spec, Mapping) or rcc_spec_problems(rcc):
        return None
    ref = access_secret_ref(rcc)
    if ref is not None:
        secret = side.rcc_secrets.get(f"{ref[0]}/{ref[1]}")
        if secret is None:
            return None
        meaning, problems = secret_kubeconfig(secret)
        return normalized_server(meaning.server) if meaning and not problems else None
    inline = kubeconfig_meaning(spec.get("kubeconfigInline") or "")
    if inline is not None and inline[0]:
        return normalized_server(inline[0])
    return normalized_server(spec.get("k8sAPIEndpoint"))


@dataclass(frozen=True)
class FederationRcc:
    """The RCC on one side that federates the other cluster, and any duplicates of it.

    ``blocker``: an RCC under the name fedkeeper gives its own that is not fedkeeper's and
    does not read the other cluster's API server (another federation's, a third cluster's,
    or one that reads nothing): it is never the federation's RCC, and never touched.
    """

    rcc: Mapping[str, Any] | None  # None: none yet
    duplicates: tuple[Mapping[str, Any], ...]
    blocker: Mapping[str, Any] | None = None


def federation_rcc(
    side: ClusterSide,
    other: ClusterSide | None,
    federation: str,
    exclude: frozenset[str] = frozenset(),
) -> FederationRcc:
    """The RCC that federates the other cluster, judged by what it reads, not its name.

    The configured RCC counts when fedkeeper owns it (it is kept and restored whatever it
    reads) or when it reads the other cluster's API server. Otherwise one reading that
    server does: among several, one owned by this federation is preferred, then the first
    unowned one by name; the rest are duplicates. With the other cluster unreachable its
    server is unknown, so the configured RCC is taken as it is (and written only if owned).
    RCCs named in ``exclude`` (in a mesh: the RCCs of the side's other peers) never count:
    one named for another cluster that reads this one is that pair's to repair.
    """
    named = next((r for r in side.rccs if _meta(r).get("name") == side.rcc_name), None)
    target = normalized_server(other.endpoint) if other is not None else None
    serving = sorted(
        (
            r
            for r in side.rccs
            if target is not None
            and _meta(r).get("name") not in exclude
            and rcc_server(r, side) == target
        ),
        key=lambda r: (not owned_by(r, federation), str(_meta(r).get("name"))),
    )
    if named is not None and (owned_by(named, federation) or other is None):
        return FederationRcc(named, tuple(r for r in serving if r is not named))
    if named is not None and any(r is named for r in serving):
        return FederationRcc(named, tuple(r for r in serving if r is not named))
    if serving:
        return FederationRcc(serving[0], tuple(serving[1:]), named)
    return FederationRcc(None, (), named)


def rcc_reads(rcc: Mapping[str, Any], side: ClusterSide) -> str:
    """What an RCC reads, for a message: its API server, or why none can be told."""
    server = rcc_server(rcc, side)
    if server is not None:
        return server
    if rcc_spec_problems(rcc):
        return "nothing (its spec is malformed)"
    ref = access_secret_ref(rcc)
    if ref is not None and f"{ref[0]}/{ref[1]}" not in side.rcc_secrets:
        return (
            f"a datastore fedkeeper cannot see (Secret {ref[0]}/{ref[1]} is missing or out "
            "of reach)"
        )
    return "no API server fedkeeper can read (its kubeconfig is missing or malformed)"


# --- desired objects --------------------------------------------------------------------


def desired_remote_objects(names: RccNames) -> dict[str, dict[str, Any]]:
    """What a cluster needs so the other cluster's Typha can read it, by kind."""
    sa, ns = names.remote_sa, names.remote_sa_namespace
    return {
        "ServiceAccount": {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": sa, "namespace": ns, "labels": _labels(names)},
        },
        "Secret": {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": SA_TOKEN_TYPE,
            "metadata": {
                "name": sa,
                "namespace": ns,
                "labels": _labels(names),
                "annotations": {SA_NAME_ANNOTATION: sa},
            },
        },
        "ClusterRole": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": sa, "labels": _labels(names)},
            "rules": [dict(r) for r in REMOTE_RULES],
        },
        "ClusterRoleBinding": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": sa, "labels": _labels(names)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": sa},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
        },
    }


def desired_typha_access(names: RccNames) -> dict[str, dict[str, Any]]:
    ns = names.access_namespace
    return {
        "Role": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": TYPHA_ACCESS, "namespace": ns, "labels": _labels(names)},
            "rules": [dict(r) for r in TYPHA_RULES],
        },
        "RoleBinding": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": TYPHA_ACCESS, "namespace": ns, "labels": _labels(names)},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": TYPHA_ACCESS,
            },
            "subjects": [{"kind": "ServiceAccount", "name": TYPHA_SA[0], "namespace": TYPHA_SA[1]}],
        },
    }


def desired_rcc(
    names: RccNames, rcc_name: str, secret: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The RCC; ``secret`` (namespace, name) for one adopted with its own access Secret."""
    ns, secret_name = secret or (names.access_namespace, access_secret_name(rcc_name))
    return {
        "apiVersion": names.calico_api_version,
        "kind": "RemoteClusterConfiguration",
        "metadata": {"name": rcc_name, "labels": _labels(names)},
        "spec": {
            "clusterAccessSecret": {
                "name": secret_name,
                "namespace": ns,
                "kind": "Secret",
            },
            "syncOptions": {"overlayRoutingMode": "Disabled"},
        },
    }


def desired_access_secret(
    names: RccNames,
    rcc_name: str,
    kubeconfig: dict[str, Any],
    secret: tuple[str, str] | None = None,
) -> dict[str, Any]:
    ns, secret_name = secret or (names.access_namespace, access_secret_name(rcc_name))
    text = yaml.safe_dump(kubeconfig, sort_keys=False)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name,
            "namespace": ns,
            "labels": _labels(names, ACCESS_SECRET_ROLE),
        },
        "data": {"datastoreType": _b64("kubernetes"), "kubeconfig": _b64(text)},
    }


# --- planning -----------------------------------------------------------------------------


@dataclass
class _Planner:
    names: RccNames
    plan: Plan = field(default_factory=Plan)
    adoptable: list[str] = field(default_factory=list)  # unowned objects doing fedkeeper's job
    reported: set[str] = field(default_factory=set)  # of those, already named in a finding
    malformed_seen: set[str] = field(default_factory=set)  # objects named as malformed
    # A mesh plan (plan_mesh_rcc): the names its configured clusters' RCCs have, and those
    # of the departed ones. False for today's two-cluster plan_rcc, whose results stay as
    # they were (its fixes name the federation.*_rcc_name settings).
    mesh: bool = False
    configured: frozenset[str] = frozenset()
    departed: frozenset[str] = frozenset()
    own_names: dict[str, str] = field(default_factory=dict)  # backend -> its peers' RCC name

    def gone(self, side: ClusterSide, peer: str, peers: set[str]) -> str | None:
        """Why an owned object on ``side`` named for ``peer`` goes (None: it may stay).

        Only in a mesh: ``peer`` departed, or is configured but no longer paired with
        ``side``. Whether the peer itself is reachable does not matter.
        """
        if not self.mesh or peer in peers:
            return None
        if peer in self.departed:
            return f"{peer} has left the federation (departed)"
        if peer in self.configured and peer != self.configured_name(side):
            return f"{side.backend} no longer federates {peer} (not a pair of the topology)"
        return None

    def configured_name(self, side: ClusterSide) -> str | None:
        return self.own_names.get(side.backend)

    def malformed(
        self, side: ClusterSide, obj: Mapping[str, Any] | None, kind: str, problems: Problems
    ) -> bool:
        """Name an object of the wrong shape, once, with its bad fields; True if it is one.

        fedkeeper restores what it owns; anyone else's object is left alone and not
        counted on (so it never does the federation's job).
        """
        if obj is None or not problems:
            return False
        label = _label(side, kind, obj)
        if label in self.malformed_seen:
            return True
        self.malformed_seen.add(label)
        if _ignored(obj):
            tail = f"it carries {IGNORE_ANNOTATION}=true, so fedkeeper leaves it as it is"
        elif owned_by(obj, self.names.federation):
            tail = "fedkeeper owns it and restores it"
        else:
            tail = (
                "it is not fedkeeper's, so fedkeeper leaves it alone and does not count on it; "
                "fix or remove it"
            )
        more = f" (and {len(problems) - 4} more)" if len(problems) > 4 else ""
        shown = "; ".join(problems[:4]) + more
        self.plan.findings.append(
            Finding(
                Severity.WARNING, "rcc.malformed", f"{label} is malformed: {shown}; {tail}", label
            )
        )
        return True

    def change(
        self,
        side: ClusterSide,
        obj: Mapping[str, Any],
        action: Action,
        reason: str,
        payload: dict[str, Any],
        resource_version: str | None = None,
        after: tuple[str, ...] = (),
    ) -> None:
        meta = _meta(obj)
        self.plan.changes.append(
            Change(
                after=after,
                backend=side.backend,
                kind=str(obj.get("kind")),
                name=str(meta.get("name")),
                namespace=meta.get("namespace"),
                action=action,
                invariant=Invariant.RCC,
                reason=reason,
                payload=payload,
                resource_version=resource_version,
            )
        )

    def finding(self, severity: Severity, check: str, message: str) -> None:
        self.plan.findings.append(Finding(severity, check, message))

    def ensure(
        self,
        side: ClusterSide,
        want: dict[str, Any],
        actual: Mapping[str, Any] | None,
        drift: list[str],
        patch: dict[str, Any],
        why_missing: str,
        *,
        adopt: bool = True,
        after: tuple[str, ...] = (),
    ) -> bool:
        """Create ``want`` if absent, patch an owned drifted copy, report a foreign one.

        ``adopt``: ``want`` has the name this federation gives it, so a copy labelled
        managed-by only is adopted; otherwise such a copy is left alone like a foreign one.
        True when the object exists and is as wanted (nothing to do).
        """
        kind = want["kind"]
        meta = want["metadata"]
        ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
        label = f"{side.backend} {kind} {ns}{meta['name']}"
        if actual is None:
            self.change(
                side,
                want,
                Action.CREATE,
                f"{label} is missing: {why_missing}",
                {"op": "create", "body": want},
                after=after,
            )
            return False
        whose = ownership(actual, self.names.federation)
        if whose is Ownership.UNCLAIMED and not adopt:
            whose = Ownership.FOREIGN
        if _ignored(actual):
            return True
        if whose is Ownership.UNCLAIMED:
            # Labelled managed-by only, under the name this federation gives it: adopted.
            patch = _merge(patch, {"metadata": {"labels": dict(meta["labels"])}})
            self.change(
                side,
                want,
                Action.UPDATE,
                f"adopted {label}: labelled {MANAGED_BY_LABEL}={MANAGED_BY_VALUE} only, under "
                f"the name this federation gives it; adding {FEDERATION_LABEL}="
                f"{self.names.federation}"
                + (f" and restoring: {'; '.join(drift)}" if drift else ""),
                {"op": "patch", "patch_type": "merge", "patch": patch},
                _meta(actual).get("resourceVersion"),
            )
            return not drift
        if whose is Ownership.OTHER_FEDERATION:
            labels = _meta(actual).get("labels") or {}
            self.finding(
                Severity.WARNING,
                "rcc.other-federation",
                f"{label} belongs to federation {labels.get(FEDERATION_LABEL)!r}, not "
                f"{self.names.federation!r}: fedkeeper leaves it alone"
                + (f", although {'; '.join(drift)}" if drift else "")
                + " — give one of the federations other names (federation.remote_service_"
                "account, access_secret_namespace) if both must run on this cluster",
            )
            return not drift
        if whose is Ownership.FOREIGN and not drift:
            # Doing the job as it is: used, and offered for adoption.
            self.adoptable.append(f"{kind} {ns}{meta['name']} on {side.backend}")
        if not drift:
            return True
        if whose is Ownership.FOREIGN:
            if label not in self.malformed_seen:
                self.finding(
                    Severity.WARNING,
                    "rcc.foreign",
                    f"{label} is not managed by fedkeeper and {'; '.join(drift)}; fix it by "
                    "hand (fedkeeper adopts only objects that already do the job)",
                )
            return False
        self.change(
            side,
            want,
            Action.UPDATE,
            f"{label} drifted: {'; '.join(drift)}; restoring it",
            {"op": "patch", "patch_type": "merge", "patch": patch},
            _meta(actual).get("resourceVersion"),
            after=after,
        )
        return False


def plan_rcc(obs: RccObservation) -> Plan:
    """Changes on both clusters, plus work that must wait (an unreachable side, a token).

    ``settle`` is set when this plan creates a token Secret that an access Secret on the
    other cluster needs: the engine then re-reads and plans again in the same run.

    The two-cluster case of :func:`plan_mesh_rcc`: the clusters are keyed by their backends
    (``obs.backends``), the RCCs keep the configured names, and each cluster's one
    consumer keeps the token Secret named after the remote service account.
    """
    eks, site = obs.backends
    clusters: dict[str, MeshSide | None] = {
        eks: mesh_side(obs.eks) if obs.eks is not None else None,
        site: mesh_side(obs.onprem) if obs.onprem is not None else None,
    }
    rcc_names = {}
    if obs.eks is not None:
        rcc_names[site] = obs.eks.rcc_name
    if obs.onprem is not None:
        rcc_names[eks] = obs.onprem.rcc_name
    return plan_mesh_rcc(
        MeshRccObservation(
            names=obs.names,
            clusters=clusters,
            pairs=((eks, site), (site, eks)),
            rcc_names=rcc_names,
            legacy_token_name=True,
        )
    )


# --- N clusters ---------------------------------------------------------------------------

CONSUMER_LABEL = "fedkeeper.io/consumer"


@dataclass(frozen=True)
class MeshSide:
    """What one cluster holds, read once per run for all its pairs (label-selected lists).

    ``token_secrets``: the remote service account's token Secrets in its namespace (the
    owned ones from one list, plus the one under the two-cluster name
    ``<remote service account>`` if it exists). ``access_secrets``: Secrets in the access
    namespace by name (the owned list, plus any read by the name fedkeeper gives a pair's).
    """

    cluster_name: str  # names the cluster in the kubeconfigs its consumers get
    endpoint: str  # how the other clusters' Typha reach this API server
    ca_data: str | None  # base64 PEM of its CA (None: each token Secret's ca.crt)
    service_account: Mapping[str, Any] | None
    cluster_role: Mapping[str, Any] | None
    cluster_role_binding: Mapping[str, Any] | None
    typha_role: Mapping[str, Any] | None
    typha_binding: Mapping[str, Any] | None
    token_secrets: Sequence[Mapping[str, Any]]
    rccs: Sequence[Mapping[str, Any]]  # every RCC on the cluster
    access_secrets: Mapping[str, Mapping[str, Any]]
    owned_access_secrets: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    rcc_secrets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class MeshRccObservation:
    """Invariant 4 over a whole federation.

    ``clusters``: every configured cluster by name (the backend of its changes), None when
    it could not be read this run (its pairs are deferred, nothing of it is pruned).
    ``pairs``: the directed pairs (L, R): L holds one RCC for R. ``departed``: names of
    clusters that left; what every reachable cluster holds for them is deleted.
    ``rcc_names``: the RCC name a cluster's peers give it, when not its key (two-cluster
    case only). ``legacy_token_name``: the two-cluster case, where each cluster's single
    consumer keeps the token Secret named after the remote service account.
    """

    names: RccNames
    clusters: Mapping[str, MeshSide | None]
    pairs: Sequence[tuple[str, str]]
    departed: frozenset[str] = frozenset()
    rcc_names: Mapping[str, str] = field(default_factory=dict)
    legacy_token_name: bool = False

    def rcc_name(self, cluster: str) -> str:
        """The name of the RCC every peer of ``cluster`` holds for it."""
        return self.rcc_names.get(cluster, cluster)

    def peers(self, cluster: str) -> list[str]:
        """The clusters ``cluster`` reads (holds an RCC for), in pair order."""
        return list(dict.fromkeys(r for left, r in self.pairs if left == cluster))

    def consumers(self, cluster: str) -> list[str]:
        """The clusters that read ``cluster`` (each gets its own token Secret there)."""
        return list(dict.fromkeys(left for left, r in self.pairs if r == cluster))


def mesh_side(side: ClusterSide) -> MeshSide:
    """A two-cluster side as the mesh planner reads it."""
    return MeshSide(
        cluster_name=side.name,
        endpoint=side.endpoint,
        ca_data=side.ca_data,
        service_account=side.service_account,
        cluster_role=side.cluster_role,
        cluster_role_binding=side.cluster_role_binding,
        typha_role=side.typha_role,
        typha_binding=side.typha_binding,
        token_secrets=(side.token_secret,) if side.token_secret is not None else (),
        rccs=side.rccs,
        access_secrets=(
            {access_secret_name(side.rcc_name): side.access_secret}
            if side.access_secret is not None
            else {}
        ),
        owned_access_secrets=side.owned_access_secrets,
        rcc_secrets=side.rcc_secrets,
    )


def issued_token_name(names: RccNames, consumer: str) -> str:
    """The token Secret a cluster issues for ``consumer``: ``<remote SA>-<consumer>``.

    A deployment from before the mesh has one token Secret named ``<remote SA>`` on each
    cluster, used by its single consumer: it stays that consumer's (see
    :func:`legacy_token_consumer`), so converging an existing federation writes nothing.
    """
    return f"{names.remote_sa}-{consumer}"


def _labels_of(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    labels = _meta(obj).get("labels")
    return labels if isinstance(labels, Mapping) else {}


def _token_secrets(obs: MeshRccObservation, side: MeshSide) -> list[Mapping[str, Any]]:
    """The token Secrets of the remote service account (never an access Secret)."""
    return [
        s
        for s in side.token_secrets
        if _labels_of(s).get(ROLE_LABEL) != ACCESS_SECRET_ROLE
        and (_meta(s).get("name") == obs.names.remote_sa or CONSUMER_LABEL in _labels_of(s))
    ]


def _access_token(obs: MeshRccObservation, consumer: str, cluster: str) -> str | None:
    """The token ``consumer``'s access Secret for ``cluster`` holds (None: unknown)."""
    side = obs.clusters.get(consumer)
    if side is None:
        return None
    secret = side.access_secrets.get(access_secret_name(obs.rcc_name(cluster)))
    if secret is None:
        return None
    meaning, problems = secret_kubeconfig(secret)
    return meaning.as_tuple()[2] if meaning is not None and not problems else None


def legacy_token_consumer(obs: MeshRccObservation, cluster: str) -> str | None:
    """Whose the token Secret named ``<remote SA>`` on ``cluster`` is, if anyone's.

    Its ``fedkeeper.io/consumer`` label says so when it has one. Unlabelled (written before
    the mesh): the only consumer's when ``cluster`` has one, else the consumer whose access
    Secret for ``cluster`` holds its token. None when it cannot be told (that consumer is
    unreachable): no consumer's token is then created or deleted in its place.
    """
    side = obs.clusters.get(cluster)
    if side is None:
        return None
    legacy = next(
        (s for s in _token_secrets(obs, side) if _meta(s).get("name") == obs.names.remote_sa),
        None,
    )
    if legacy is None:
        return None
    consumers = obs.consumers(cluster)
    label = _labels_of(legacy).get(CONSUMER_LABEL)
    if label is not None:
        return next((c for c in obs.clusters if obs.rcc_name(c) == label), str(label))
    if obs.legacy_token_name or len(consumers) == 1:
        return consumers[0] if consumers else None
    token = _unb64(_data(legacy).get("token"))
    holders = [c for c in consumers if token and _access_token(obs, c, cluster) == token]
    return holders[0] if len(holders) == 1 else None


def _consumer_of(obs: MeshRccObservation, secret: Mapping[str, Any], legacy: str | None) -> str:
    """The consumer a token Secret was issued for, by RCC name ("" when unknown)."""
    label = _labels_of(secret).get(CONSUMER_LABEL)
    if label is not None:
        return str(label)
    return obs.rcc_name(legacy) if legacy is not None else ""


def desired_issued_token(names: RccNames, consumer: str, name: str) -> dict[str, Any]:
    """The token Secret issued for ``consumer`` (labelled for it, so it can be revoked
    alone), under ``name``."""
    want = desired_remote_objects(names)["Secret"]
    meta = want["metadata"]
    return {
        **want,
        "metadata": {**meta, "name": name, "labels": {**meta["labels"], CONSUMER_LABEL: consumer}},
    }


def _issued_tokens(
    obs: MeshRccObservation, cluster: str
) -> tuple[dict[str, _IssuedToken], list[str]]:
    """The token Secret ``cluster`` issues for each consumer, by consumer; and the consumers
    whose token must wait (which one the two-cluster token Secret is cannot be told)."""
    side = obs.clusters[cluster]
    assert side is not None
    names = obs.names
    secrets = _token_secrets(obs, side)
    by_name = {str(_meta(s).get("name")): s for s in secrets}
    legacy = legacy_token_consumer(obs, cluster)
    unknown_legacy = names.remote_sa in by_name and legacy is None
    out: dict[str, _IssuedToken] = {}
    waiting: list[str] = []
    for consumer in obs.consumers(cluster):
        rcc_name = obs.rcc_name(consumer)
        if obs.legacy_token_name:
            # The one read by its name, whatever its shape (a malformed one is restored).
            want = desired_remote_objects(names)["Secret"]
            out[consumer] = _IssuedToken("", want, next(iter(side.token_secrets), None))
            continue
        if legacy == consumer:
            want = desired_issued_token(names, rcc_name, names.remote_sa)
        elif unknown_legacy and obs.clusters.get(consumer) is None:
            waiting.append(consumer)
            continue
        else:
            want = desired_issued_token(names, rcc_name, issued_token_name(names, rcc_name))
        out[consumer] = _IssuedToken(rcc_name, want, by_name.get(want["metadata"]["name"]))
    return out, waiting


def _revoke_tokens(p: _Planner, obs: MeshRccObservation, cluster: str, view: ClusterSide) -> None:
    """Delete the owned token Secrets ``cluster`` issued for a departed cluster, or for one
    that no longer reads it; report those issued for a name neither configured nor departed
    (never deleted)."""
    side = obs.clusters[cluster]
    assert side is not None
    legacy = legacy_token_consumer(obs, cluster)
    readers = {obs.rcc_name(c) for c in obs.consumers(cluster)}
    for secret in _token_secrets(obs, side):
        if not owned_by(secret, p.names.federation) or _ignored(secret):
            continue
        consumer = _consumer_of(obs, secret, legacy)
        name = _meta(secret).get("name")
        if not consumer or consumer in readers:
            continue
        why = p.gone(view, consumer, readers)
        if why is not None:
            p.change(
                view,
                {**secret, "kind": "Secret"},
                Action.DELETE,
                f"{cluster} token Secret {name} was issued for {consumer}, and {why}; revoking it",
                {"op": "delete"},
                _meta(secret).get("resourceVersion"),
            )
        else:
            p.finding(
                Severity.WARNING,
                "rcc.unknown-peer",
                f"{cluster} token Secret {name} is labelled as this federation's, issued for "
                f"{consumer}, which is neither a configured nor a departed cluster: fedkeeper "
                "never deletes it — list it under departed to revoke it, or remove its "
                "fedkeeper labels",
            )


def _view(
    obs: MeshRccObservation, cluster: str, peer: str | None, token: Mapping[str, Any] | None
) -> ClusterSide:
    """``cluster`` as the two-cluster code reads a side: holding the RCC for ``peer``, and
    offering ``token`` (the token Secret it issued for the consumer being planned)."""
    side = obs.clusters[cluster]
    assert side is not None
    rcc_name = obs.rcc_name(peer) if peer is not None else ""
    return ClusterSide(
        backend=cluster,
        name=side.cluster_name,
        rcc_name=rcc_name,
        endpoint=side.endpoint,
        ca_data=side.ca_data,
        service_account=side.service_account,
        token_secret=token,
        cluster_role=side.cluster_role,
        cluster_role_binding=side.cluster_role_binding,
        typha_role=side.typha_role,
        typha_binding=side.typha_binding,
        rccs=side.rccs,
        access_secret=side.access_secrets.get(access_secret_name(rcc_name)) if peer else None,
        owned_access_secrets=side.owned_access_secrets,
        rcc_secrets=side.rcc_secrets,
    )


@dataclass(frozen=True)
class PairState:
    """What one directed pair (L, R) holds, judged as the planner judges it.

    ``rcc_present``/``secret_matches`` are None when they cannot be told: L unreachable
    (both), or R unreachable (what the access Secret should hold is unknown).
    """

    left: str
    right: str
    rcc_present: bool | None
    secret_matches: bool | None
    remote_reachable: bool


def pair_state(obs: MeshRccObservation, left: str, right: str) -> PairState:
    """The state of the pair (``left``, ``right``) from the observation alone (no call).

    Reachability is each cluster's one observation (``obs.clusters[name]`` is None when it
    failed), never a probe per pair. The Secret matches when the access Secret of the RCC
    federating ``right`` means (server, CA, token) what ``right`` issued for ``left``.
    """
    reachable = obs.clusters.get(right) is not None
    if obs.clusters.get(left) is None:
        return PairState(left, right, None, None, reachable)
    issuer = None
    if reachable:
        tokens, _ = _issued_tokens(obs, right)
        issued = tokens.get(left)
        issuer = _view(obs, right, left, issued.actual if issued else None)
    view = _view(obs, left, right, None)
    exclude = frozenset({obs.rcc_name(r) for r in obs.peers(left)} | set(obs.departed)) - {
        view.rcc_name
    }
    found = federation_rcc(view, issuer, obs.names.federation, exclude).rcc
    if found is None or issuer is None:
        return PairState(
            left, right, found is not None, None if issuer is None else False, reachable
        )
    ref = access_secret_ref(found)
    secret = view.rcc_secrets.get(f"{ref[0]}/{ref[1]}") if ref else None
    if secret is None and ref is not None and ref[0] == obs.names.access_namespace:
        secret = view.access_secret if ref[1] == access_secret_name(view.rcc_name) else None
    token = remote_token(issuer)
    if secret is None or token is None:
        return PairState(left, right, True, False, reachable)
    want = build_kubeconfig(issuer, token, obs.names.remote_sa)
    have, problems = secret_kubeconfig(secret)
    matches = (
        have is not None
        and not problems
        and have.as_tuple() == kubeconfig_meaning(yaml.safe_dump(want, sort_keys=False))
    )
    return PairState(left, right, True, matches, reachable)


def plan_mesh_rcc(obs: MeshRccObservation) -> Plan:
    """Invariant 4 for N clusters and their directed pairs, in one plan.

    Per reachable cluster, once: the export side (remote ServiceAccount, ClusterRole and
    binding, one token Secret per consumer, labelled ``fedkeeper.io/consumer``), and the
    revocation of tokens issued for departed or unpaired clusters. Per reachable consumer L:
    Typha's read access, then for each peer R the RCC named R and its access Secret, whose
    server, CA and token are R's (the token R issued for L), then what L holds for no pair.

    Unreachable clusters: nothing is written on an unreachable L; an unreachable R leaves
    L's access Secret for R as it is (deferred). Departed clusters need no observation.

    Batched per consumer: a Calico consumer restarts on any change of an RCC's connection
    data (``ConfigChangeRestartRequired``, libcalico-go ``syncersv1/remotecluster``), so
    every write on L's RCCs and access Secrets is planned together, in one block, in the
    same run; an access Secret is written only when its meaning (server, CA, token)
    changes. Make-before-break: a consumer's access Secret moves to a new token only once
    that token exists (the token controller filled it), an RCC is created only once its
    access Secret exists, and an RCC is deleted before its access Secret. As each consumer
    has its own token, one rotated token changes that consumer's access Secrets only.
    """
    p = _Planner(obs.names, mesh=not obs.legacy_token_name)
    p.configured = frozenset(obs.rcc_name(c) for c in obs.clusters)
    p.departed = frozenset(obs.departed) - p.configured
    p.own_names = {c: obs.rcc_name(c) for c in obs.clusters}
    issued: dict[str, dict[str, _IssuedToken]] = {}
    for cluster, side in obs.clusters.items():
        if side is None:
            continue
        issued[cluster], waiting = _issued_tokens(obs, cluster)
        view = _view(obs, cluster, None, None)
        _plan_remote_access(p, view, list(issued[cluster].values()))
        for consumer in waiting:
            p.plan.deferred.append(
                Deferred(
                    f"{cluster}/Secret/{obs.names.remote_sa_namespace}/"
                    + issued_token_name(obs.names, obs.rcc_name(consumer)),
                    f"{consumer} is unreachable, so whether it reads {cluster} with the token "
                    f"Secret {obs.names.remote_sa} cannot be told",
                )
            )
        if p.mesh:
            _revoke_tokens(p, obs, cluster, view)
    for cluster, side in obs.clusters.items():
        if side is None:
            continue
        _plan_consumer(p, _view(obs, cluster, None, None))
        peers = obs.peers(cluster)
        others: dict[str, ClusterSide | None] = {}
        keep_rccs: set[str] = set()
        keep_secrets: set[str] = set()
        stale = True
        pair_names = {obs.rcc_name(r) for r in peers} | p.departed
        for peer in peers:
            token = issued.get(peer, {}).get(cluster)
            other = (
                _view(obs, peer, cluster, token.actual if token else None)
                if obs.clusters.get(peer) is not None
                else None
            )
            view = _view(obs, cluster, peer, None)
            others[view.rcc_name] = other
            kept = _plan_pair(p, view, other, frozenset(pair_names - {view.rcc_name}))
            if kept is None:
                stale = False
                keep_rccs.add(view.rcc_name)
                keep_secrets.add(access_secret_name(view.rcc_name))
            else:
                keep_rccs.add(kept[0])
                keep_secrets.add(kept[1])
        if obs.legacy_token_name and not stale:
            continue  # as the two-cluster planner always did: nothing of ours pruned
        view = _view(obs, cluster, None, None)
        _prune_rccs(p, view, others, keep=keep_rccs, stale=stale)
        _prune_access_secrets(p, view, others, keep=keep_secrets, stale=stale)
    rest = [a for a in dict.fromkeys(p.adoptable) if a not in p.reported]
    if rest:
        p.finding(
            Severity.INFO,
            "rcc.adoptable",
            f"not owned by fedkeeper but doing the job of what it would create: "
            f"{', '.join(rest)}; fedkeeper uses them as they are and "
            "creates no duplicate — `fedkeeper adopt` lists them, `--apply` takes them over",
        )
    return p.plan


def _target(side: ClusterSide, kind: str, obj: Mapping[str, Any]) -> str:
    """A change's target for ``obj`` (as :attr:`fedkeeper.model.Change.target` spells it)."""
    meta = _meta(obj)
    ns = meta.get("namespace")
    where = f"{ns}/" if isinstance(ns, str) and ns else ""
    return f"{side.backend}/{kind}/{where}{meta.get('name')}"


def _metadata_repair(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """A merge patch removing labels and annotations of the wrong shape (nothing if none)."""
    meta = _meta(obj)
    out: dict[str, Any] = {}
    for part in ("labels", "annotations"):
        values = meta.get(part)
        if values is None:
            continue
        if not isinstance(values, Mapping):
            out[part] = None
            continue
        bad = {str(k): None for k, v in values.items() if not isinstance(v, str)}
        if bad:
            out[part] = bad
    return {"metadata": out} if out else {}


def _object_problems(obj: Mapping[str, Any] | None, *more: Problems) -> Problems:
    if obj is None:
        return []
    out = metadata_problems(obj)
    for extra in more:
        out += extra
    return out


@dataclass(frozen=True)
class _IssuedToken:
    """The token Secret a cluster issues for one consumer: wanted and as read."""

    consumer: str  # the consumer's name ("" in the two-cluster case: its only consumer)
    want: dict[str, Any]
    actual: Mapping[str, Any] | None


def _plan_remote_access(p: _Planner, side: ClusterSide, tokens: Sequence[_IssuedToken]) -> None:
    """The export side, once per cluster: the remote service account, one token Secret per
    consumer (``tokens``), and its ClusterRole and binding."""
    want = desired_remote_objects(p.names)
    sa_problems = _object_problems(side.service_account)
    p.malformed(side, side.service_account, "ServiceAccount", sa_problems)
    p.ensure(
        side,
        want["ServiceAccount"],
        side.service_account,
        sa_problems,
        _metadata_repair(side.service_account),
        "the other cluster's Typha reads this cluster as this service account",
    )
    for issued in tokens:
        _plan_token_secret(p, side, issued)
    _ensure_role(
        p,
        side,
        want["ClusterRole"],
        side.cluster_role,
        lambda missing: f"it lacks {len(missing)} permission(s) such as {'/'.join(missing[0])}",
        "it grants the remote service account read access for federation",
    )
    _ensure_binding(
        p,
        side,
        want["ClusterRoleBinding"],
        side.cluster_role_binding,
        "it binds the remote service account to its ClusterRole",
    )


def _plan_token_secret(p: _Planner, side: ClusterSide, issued: _IssuedToken) -> None:
    """One token Secret of the remote service account: the one issued for one consumer."""
    sa = p.names.remote_sa
    wanted, token = issued.want, issued.actual
    secret_name = wanted["metadata"]["name"]
    token_drift: Problems = []
    if token is not None:
        shape: Problems = []
        mapping_at(token.get("data"), "data", shape)
        decoded(_data(token).get("token"), "data.token", shape)
        token_drift += _object_problems(token, shape)
        p.malformed(side, token, "Secret", token_drift)
        if token.get("type") != SA_TOKEN_TYPE:
            token_drift.append(f"its type is {token.get('type')!r} (want {SA_TOKEN_TYPE})")
        annotations = _meta(token).get("annotations")
        if not isinstance(annotations, Mapping) or annotations.get(SA_NAME_ANNOTATION) != sa:
            token_drift.append(f"it is not annotated {SA_NAME_ANNOTATION}={sa}")
    if (
        token is not None
        and token_drift
        and owned_by(token, p.names.federation)
        and not _ignored(token)
    ):
        # Type, token binding and a garbled token cannot be patched: re-create the Secret
        # (the token controller fills the new one).
        p.change(
            side,
            wanted,
            Action.DELETE,
            f"{side.backend} token Secret {secret_name} is unusable ({'; '.join(token_drift)}); "
            "re-creating it",
            {"op": "delete"},
            _meta(token).get("resourceVersion"),
        )
        p.change(
            side,
            wanted,
            Action.CREATE,
            f"{side.backend} token Secret {secret_name} is re-created for service account {sa}",
            {"op": "create", "body": wanted},
            after=(f"{side.backend}/Secret/{wanted['metadata']['namespace']}/{secret_name}",),
        )
        p.plan.settle = True
    else:
        p.ensure(
            side,
            wanted,
            token,
            token_drift,
            {},
            f"{issued.consumer} reads this cluster with a long-lived token of its own for "
            "this service account (revoked alone by deleting this Secret)"
            if issued.consumer
            else "the other cluster needs a long-lived token for this service account",
        )
        if token is None:
            p.plan.settle = True


def _ensure_role(
    p: _Planner,
    side: ClusterSide,
    want: dict[str, Any],
    actual: Mapping[str, Any] | None,
    lacks: Callable[[list[tuple[str, str, str]]], str],
    why_missing: str,
) -> None:
    """A Role or ClusterRole that must grant at least ``want``'s rules."""
    problems = _object_problems(
        actual, rules_problems(actual.get("rules")) if actual is not None else []
    )
    p.malformed(side, actual, want["kind"], problems)
    missing = role_lacks(actual or {}, want)
    drift = ([lacks(missing)] if missing else []) + problems
    patch = _merge({"rules": want["rules"]}, _metadata_repair(actual))
    p.ensure(side, want, actual, drift, patch, why_missing)


def role_lacks(actual: Mapping[str, Any], want: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The (group, resource, verb) permissions of ``want`` that role ``actual`` does not grant."""
    return sorted(_rule_set(want["rules"]) - _rule_set(actual.get("rules")))


def role_ref_drift(actual: Mapping[str, Any], want: Mapping[str, Any]) -> str | None:
    """Why a binding's roleRef is not ``want``'s (None when it is)."""
    ref = actual.get("roleRef")
    want_ref = want["roleRef"]
    if not isinstance(ref, Mapping):
        return f"its roleRef is {shape_of(ref)}, not {want_ref['kind']} {want_ref['name']}"
    if any(ref.get(k) != want_ref[k] for k in ("apiGroup", "kind", "name")):
        return (
            f"its roleRef is {ref.get('kind')} {ref.get('name')} "
            f"(want {want_ref['kind']} {want_ref['name']})"
        )
    return None


def subjects_drift(actual: Mapping[str, Any], want: Mapping[str, Any]) -> list[str]:
    """The wanted subjects a binding does not bind (entries of any other shape ignored)."""
    subjects = actual.get("subjects")
    held = [x for x in subjects if isinstance(x, Mapping)] if isinstance(subjects, list) else []
    return [
        f"it does not bind {s['namespace']}/{s['name']}"
        for s in want["subjects"]
        if not any(
            x.get("kind") == s["kind"]
            and x.get("name") == s["name"]
            and x.get("namespace") == s["namespace"]
            for x in held
        )
    ]


def _ensure_binding(
    p: _Planner,
    side: ClusterSide,
    want: dict[str, Any],
    actual: Mapping[str, Any] | None,
    why_missing: str,
) -> None:
    """A RoleBinding or ClusterRoleBinding: subjects are patched; roleRef cannot be.

    The API server refuses any change of a binding's roleRef (422 "cannot change roleRef",
    kubernetes ``pkg/apis/rbac/validation/validation.go``): an owned binding bound to
    another role is deleted and re-created.
    """
    kind = want["kind"]
    problems = _object_problems(actual, binding_problems(actual))
    p.malformed(side, actual, kind, problems)
    ref_drift = role_ref_drift(actual, want) if actual is not None else None
    whose = ownership(actual, p.names.federation) if actual is not None else None
    if (
        actual is not None
        and ref_drift is not None
        and whose in (Ownership.OURS, Ownership.UNCLAIMED)
        and not _ignored(actual)
    ):
        label = _label(side, kind, actual)
        target = _target(side, kind, actual)
        p.change(
            side,
            want,
            Action.DELETE,
            f"{label}: {ref_drift}, and a binding's roleRef cannot change; deleting it to "
            "re-create it",
            {"op": "delete"},
            _meta(actual).get("resourceVersion"),
        )
        ref = want["roleRef"]
        p.change(
            side,
            want,
            Action.CREATE,
            f"{label} is re-created bound to {ref['kind']} {ref['name']}",
            {"op": "create", "body": want},
            after=(target,),
        )
        return
    drift = ([ref_drift] if ref_drift else []) + (
        subjects_drift(actual, want) if actual is not None else []
    )
    drift += [x for x in problems if x not in drift]
    patch = _merge({"subjects": want["subjects"]}, _metadata_repair(actual))
    p.ensure(side, want, actual, drift, patch, why_missing)


def _plan_consumer(p: _Planner, side: ClusterSide) -> None:
    """Once per consumer cluster: Typha may read the access Secrets; malformed objects named."""
    names = p.names
    access = desired_typha_access(names)
    _ensure_role(
        p,
        side,
        access["Role"],
        side.typha_role,
        lambda _: "it does not let Typha read secrets",
        "calico-typha must be allowed to read the RCC's access Secret",
    )
    _ensure_binding(
        p,
        side,
        access["RoleBinding"],
        side.typha_binding,
        "it binds calico-typha to the secret-access Role",
    )
    for rcc in side.rccs:
        rcc_problems = _object_problems(rcc, rcc_spec_problems(rcc))
        p.malformed(side, rcc, "RemoteClusterConfiguration", rcc_problems)
    for secret in side.rcc_secrets.values():
        p.malformed(side, secret, "Secret", _object_problems(secret, secret_kubeconfig(secret)[1]))


def _plan_pair(
    p: _Planner,
    side: ClusterSide,
    other: ClusterSide | None,
    exclude: frozenset[str] = frozenset(),
) -> tuple[str, str] | None:
    """The RCC on ``side`` for ``other`` (named ``side.rcc_name``) and its access Secret.

    Returns the names of the RCC and access Secret kept for this pair, or None when the RCC
    name is taken by an RCC that is not the federation's and nothing was planned (then
    nothing of ours is pruned on ``side``). ``exclude``: names of RCCs that belong to other
    pairs (or departed peers): never taken for this pair's RCC whatever they read.
    """
    names = p.names
    found = federation_rcc(side, other, names.federation, exclude)
    actual = found.rcc
    for dup in found.duplicates:
        if not owned_by(dup, names.federation):
            p.finding(
                Severity.WARNING,
                "rcc.duplicate",
                f"{side.backend} RCC {_meta(dup).get('name')} (not owned by fedkeeper) reads the "
                f"same API server as RCC {_meta(actual).get('name')}: two syncs of one cluster "
                "give duplicate remote endpoints; delete one of them",
            )
    if found.blocker is not None:
        _report_blocker(p, side, other, found)
        if actual is None:
            return None
    if actual is not None and _meta(actual).get("name") != side.rcc_name:
        _plan_existing_rcc(p, side, other, actual)
        ref = access_secret_ref(actual)
        return str(_meta(actual).get("name")), ref[1] if ref else ""

    secret_ready = _plan_access_secret(p, side, other)

    # The RCC itself, once its access Secret exists (or is being written in this plan), so
    # Typha never sees an RCC pointing at nothing.
    want = desired_rcc(names, side.rcc_name)
    if actual is None and not secret_ready:
        if not p.plan.settle:
            p.plan.deferred.append(
                Deferred(
                    f"{side.backend}/RemoteClusterConfiguration/{side.rcc_name}",
                    "its access Secret cannot be written yet",
                )
            )
    else:
        # Never an RCC pointing at a Secret whose write failed in this run.
        secret_target = f"{side.backend}/Secret/{names.access_namespace}/" + access_secret_name(
            side.rcc_name
        )
        writes_secret = any(c.target == secret_target for c in p.plan.changes)
        p.ensure(
            side,
            want,
            actual,
            _rcc_drift(actual, want),
            _merge(_rcc_patch(actual, want), _metadata_repair(actual)),
            f"{side.backend} must federate the {other.backend if other else 'other'} cluster "
            f"({side.rcc_name}) to see its endpoints",
            # With the other cluster out of reach, what an unclaimed RCC reads cannot be
            # judged: it is not adopted (nor re-pointed) until it can be.
            adopt=other is not None,
            after=(secret_target,) if writes_secret else (),
        )
    return side.rcc_name, access_secret_name(side.rcc_name)


def _report_blocker(
    p: _Planner, side: ClusterSide, other: ClusterSide | None, found: FederationRcc
) -> None:
    """The configured RCC name is held by an RCC that does not federate the other cluster."""
    blocker = found.blocker
    if blocker is None:
        return
    name = _meta(blocker).get("name")
    whose = ownership(blocker, p.names.federation)
    labels = _meta(blocker).get("labels")
    fed = labels.get(FEDERATION_LABEL) if isinstance(labels, Mapping) else None
    owner = {
        Ownership.OTHER_FEDERATION: f"federation {fed!r}'s",
        Ownership.UNCLAIMED: f"labelled {MANAGED_BY_LABEL}={MANAGED_BY_VALUE} only",
    }.get(whose, "not fedkeeper's")
    other_name = other.backend if other is not None else "the other cluster"
    target = normalized_server(other.endpoint) if other is not None else None
    p.reported.add(f"RemoteClusterConfiguration {name} on {side.backend}")
    reads = rcc_reads(blocker, side)
    if found.rcc is None:
        p.finding(
            Severity.ERROR,
            "rcc.name-taken",
            f"{side.backend} RCC {name} is {owner} and reads {reads}, not {other_name}'s API "
            f"server{f' {target}' if target else ''}: it does not federate {other_name}, and "
            "fedkeeper neither re-points it nor creates its own RCC under the same name — "
            + (
                "rename or remove it"
                if p.mesh
                else f"rename or remove it, or set federation.{side.backend}_rcc_name to "
                "another name"
            ),
        )
    else:
        p.finding(
            Severity.INFO,
            "rcc.other-cluster",
            f"{side.backend} RCC {name} has the name fedkeeper gives its RCC but is {owner} "
            f"and reads {reads}: left alone; RCC {_meta(found.rcc).get('name')} federates "
            f"{other_name}",
        )


def _plan_existing_rcc(
    p: _Planner, side: ClusterSide, other: ClusterSide | None, actual: Mapping[str, Any]
) -> None:
    """An RCC under its own name that already federates the other cluster.

    Owned (adopted): kept like ours, with its own access Secret. Not owned: fedkeeper creates
    nothing of its own and reports it as the federation's RCC, with the way to adopt it.
    """
    name = str(_meta(actual).get("name"))
    ref = access_secret_ref(actual)
    want = desired_rcc(p.names, name, ref)
    mine = owned_by(actual, p.names.federation)
    if not mine and not _ignored(actual):
        via = f" through Secret {ref[0]}/{ref[1]}" if ref else ""
        p.reported.add(f"RemoteClusterConfiguration {name} on {side.backend}")
        if ref:
            p.reported.add(f"Secret {ref[0]}/{ref[1]} on {side.backend}")
        p.finding(
            Severity.INFO,
            "rcc.adoptable",
            f"{side.backend} RCC {name} is not owned by fedkeeper but already federates "
            f"{other.backend if other else 'the other cluster'}{via}: it is the federation's "
            f"RCC, so fedkeeper creates no {side.rcc_name} beside it — take it over with "
            "`fedkeeper adopt --apply`",
        )
    if ref is not None:
        secret = side.rcc_secrets.get(f"{ref[0]}/{ref[1]}")
        if mine or secret is not None:
            _plan_access_secret(p, side, other, ref=ref, actual_secret=secret, rcc_name=name)
    p.ensure(
        side,
        want,
        actual,
        _rcc_drift(actual, want),
        _rcc_patch(actual, want),
        f"{side.backend} must federate the other cluster",
        adopt=False,
    )


def _plan_access_secret(
    p: _Planner,
    side: ClusterSide,
    other: ClusterSide | None,
    *,
    ref: tuple[str, str] | None = None,
    actual_secret: Mapping[str, Any] | None = None,
    rcc_name: str | None = None,
) -> bool:
    """Plan the RCC's access Secret; True when it exists or this plan writes it.

    ``ref`` (namespace, name) and ``actual_secret`` for an RCC adopted with its own Secret.
    """
    names = p.names
    rcc_name = rcc_name or side.rcc_name
    ns, secret_name = ref or (names.access_namespace, access_secret_name(side.rcc_name))
    if ref is None:
        actual_secret = side.access_secret
    target = f"{side.backend}/Secret/{ns}/{secret_name}"
    exists = actual_secret is not None
    if other is None:
        p.plan.deferred.append(
            Deferred(target, "the other cluster is unreachable; its token cannot be read")
        )
        return exists
    token = remote_token(other)
    if token is None:
        if not p.plan.settle:
            p.plan.deferred.append(
                Deferred(
                    target,
                    f"waiting for {other.backend}'s token controller to fill Secret "
                    f"{names.remote_sa}",
                )
            )
        return exists
    kubeconfig = build_kubeconfig(other, token, names.remote_sa)
    want_secret = desired_access_secret(names, rcc_name, kubeconfig, ref)
    drift: list[str] = []
    if actual_secret is not None:
        if _unb64(_data(actual_secret).get("datastoreType")) != "kubernetes":
            drift.append("its datastoreType is not kubernetes")
        meaning, problems = secret_kubeconfig(actual_secret)
        p.malformed(side, actual_secret, "Secret", _object_problems(actual_secret, problems))
        have = meaning.as_tuple() if meaning is not None and not problems else None
        want_meaning = kubeconfig_meaning(_unb64(want_secret["data"]["kubeconfig"]))
        if have is None:
            drift.append(
                "its kubeconfig cannot be read" + (f" ({problems[0]})" if problems else "")
            )
        elif want_meaning is not None and have != want_meaning:
            parts = [
                n
                for n, a, b in zip(("server", "CA", "token"), have, want_meaning, strict=True)
                if a != b
            ]
            drift.append(
                f"its kubeconfig for {other.backend} has a different {' and '.join(parts)}"
                + (" (token rotated)" if parts == ["token"] else "")
            )
        drift += metadata_problems(actual_secret)
    p.ensure(
        side,
        want_secret,
        actual_secret,
        drift,
        _merge({"data": want_secret["data"]}, _metadata_repair(actual_secret)),
        f"the RCC {rcc_name} reads {other.backend} through it",
        adopt=ref is None,
    )
    return True


def _rcc_drift(actual: Mapping[str, Any] | None, want: Mapping[str, Any]) -> list[str]:
    if actual is None:
        return []
    raw = actual.get("spec")
    spec = served_rcc_spec(raw) if isinstance(raw, Mapping) else {}  # as the API serves it
    drift = _object_problems(actual, rcc_spec_problems(actual))
    ref = spec.get("clusterAccessSecret")
    ref = ref if isinstance(ref, Mapping) else {}
    want_ref = want["spec"]["clusterAccessSecret"]
    if any(ref.get(k) != want_ref[k] for k in ("name", "namespace")):
        drift.append(
            f"clusterAccessSecret is {ref or 'unset'} "
            f"(want {want_ref['namespace']}/{want_ref['name']})"
        )
    sync = spec.get("syncOptions")
    mode = sync.get("overlayRoutingMode") if isinstance(sync, Mapping) else None
    if mode != "Disabled":
        drift.append(
            f"overlayRoutingMode is {mode or 'unset'} "
            "(want Disabled: pod IPs are routed over the VPN)"
        )
    inline = [f for f in INLINE_DATASTORE_FIELDS if spec.get(f) not in (None, "")]
    if inline:
        drift.append(
            f"it sets inline datastore fields {', '.join(inline)} beside clusterAccessSecret"
        )
    known = {"clusterAccessSecret", "syncOptions", *INLINE_DATASTORE_FIELDS}
    stray = sorted(str(k) for k in spec if k not in known)
    if stray:
        drift.append(f"it has fields fedkeeper does not set: {', '.join(stray)}")
    return drift


def _rcc_patch(actual: Mapping[str, Any] | None, want: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch making the spec exactly ``want``'s: every other key is removed."""
    spec: dict[str, Any] = dict(want["spec"])
    have = actual.get("spec") if actual is not None else None
    for f in have if isinstance(have, Mapping) else ():
        if f not in spec:
            spec[str(f)] = None  # merge patch: remove (inline datastore fields, stray keys)
    return {"spec": spec}


def _third_cluster(server: str | None, targets: Collection[str | None]) -> bool:
    """Reads an API server that is none of the peers' (or a peer's is unknown)."""
    return server is not None and server not in targets


def _peer_servers(others: Mapping[str, ClusterSide | None]) -> set[str | None]:
    return {normalized_server(o.endpoint) if o is not None else None for o in others.values()}


def _whose_server(others: Mapping[str, ClusterSide | None]) -> str:
    """``onprem's API server`` (one peer) or ``the API server of any of its peers (a, b)``."""
    if len(others) == 1:
        [other] = others.values()
        return f"{other.backend if other else 'the other cluster'}'s API server"
    return f"the API server of any of its peers ({', '.join(sorted(others))})"


def _prune_rccs(
    p: _Planner,
    side: ClusterSide,
    others: Mapping[str, ClusterSide | None],
    *,
    keep: Collection[str],
    stale: bool = True,
) -> None:
    """Delete the owned RCCs on ``side`` that no pair keeps.

    ``others``: ``side``'s peers by the name of their RCC (None: unreachable). In a mesh, an
    RCC named for a departed peer, or for a configured cluster ``side`` no longer pairs
    with, is deleted whatever it reads; one named for a cluster neither configured nor
    departed is reported and never deleted (a typo must not tear down a federation). Any
    other owned RCC is deleted when it reads a peer's API server (a stale duplicate) or
    nothing at all. ``stale`` False (an RCC name is taken): only departed peers are pruned.
    """
    servers = _peer_servers(others)
    for r in side.rccs:
        name = _meta(r).get("name")
        if name in keep or not owned_by(r, p.names.federation) or _ignored(r):
            continue
        why = p.gone(side, str(name), set(others))
        if why is not None:
            p.change(
                side,
                r,
                Action.DELETE,
                f"{side.backend} RCC {name} is owned by fedkeeper and {why}; deleting it",
                {"op": "delete"},
                _meta(r).get("resourceVersion"),
            )
            continue
        if not stale:
            continue
        server = rcc_server(r, side)
        if _third_cluster(server, servers):
            # Labelled as ours, yet it federates another cluster (or the other cluster
            # cannot be read to tell): never deleted on a guess.
            if p.mesh and name not in p.configured:
                p.reported.add(f"RemoteClusterConfiguration {name} on {side.backend}")
                p.finding(
                    Severity.WARNING,
                    "rcc.unknown-peer",
                    f"{side.backend} RCC {name} is labelled as this federation's but {name} "
                    "is neither a configured nor a departed cluster: fedkeeper never deletes "
                    "it (a misspelt name must not tear down a federation) — list it under "
                    "departed to remove it, or remove its fedkeeper labels",
                )
            elif None not in servers:
                p.finding(
                    Severity.WARNING,
                    "rcc.third-cluster",
                    f"{side.backend} RCC {name} is labelled as this federation's but reads "
                    f"{server}, not {_whose_server(others)}: fedkeeper never deletes "
                    "another cluster's federation — remove its fedkeeper labels, or delete it",
                )
            continue
        now = ", ".join(sorted(keep))
        p.change(
            side,
            r,
            Action.DELETE,
            f"{side.backend} RCC {name} is owned by fedkeeper but no longer configured "
            f"(the RCC{'s are' if len(keep) > 1 else ' is'} now {now}); deleting it",
            {"op": "delete"},
            _meta(r).get("resourceVersion"),
        )


def _prune_access_secrets(
    p: _Planner,
    side: ClusterSide,
    others: Mapping[str, ClusterSide | None],
    *,
    keep: Collection[str],
    stale: bool = True,
) -> None:
    """Delete owned access Secrets no pair keeps (rules as :func:`_prune_rccs`; the peer of
    ``remote-cluster-secret-<peer>`` is the name after the prefix)."""
    servers = _peer_servers(others)
    for s in side.owned_access_secrets:
        name = _meta(s).get("name")
        if name in keep or not owned_by(s, p.names.federation) or _ignored(s):
            continue
        labels = _meta(s).get("labels")
        if not isinstance(labels, Mapping) or labels.get(ROLE_LABEL) != ACCESS_SECRET_ROLE:
            continue
        peer = str(name).removeprefix(access_secret_name(""))
        why = p.gone(side, peer, set(others)) if str(name) != peer else None
        if why is not None:
            # After the RCC that reads it: Typha never sees an RCC pointing at nothing.
            rcc_target = f"{side.backend}/RemoteClusterConfiguration/{peer}"
            deleted = any(c.target == rcc_target for c in p.plan.changes)
            p.change(
                side,
                {**s, "kind": "Secret"},
                Action.DELETE,
                f"{side.backend} access Secret {name} is owned by fedkeeper and {why}; deleting it",
                {"op": "delete"},
                _meta(s).get("resourceVersion"),
                after=(rcc_target,) if deleted else (),
            )
            continue
        if not stale:
            continue
        meaning, problems = secret_kubeconfig(s)
        server = normalized_server(meaning.server) if meaning and not problems else None
        if None in servers or _third_cluster(server, servers):
            continue  # another cluster's credentials (or cannot tell): never deleted
        p.change(
            side,
            {**s, "kind": "Secret"},
            Action.DELETE,
            f"{side.backend} access Secret {name} belongs to no configured RCC; deleting it",
            {"op": "delete"},
            _meta(s).get("resourceVersion"),
        )
