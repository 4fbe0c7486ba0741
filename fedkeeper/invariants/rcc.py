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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from fedkeeper.calico_v3 import RCC_OMITEMPTY_STRINGS, served_rcc_spec
from fedkeeper.invariants import Plan
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


# --- small helpers --------------------------------------------------------------------------


def _meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def _ignored(obj: Mapping[str, Any] | None) -> bool:
    annotations = _meta(obj).get("annotations")
    if not isinstance(annotations, Mapping):
        return False
    return str(annotations.get(IGNORE_ANNOTATION, "")).lower() == "true"


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
    out: set[tuple[str, str, str]] = set()
    for r in rules or []:
        if not isinstance(r, Mapping):
            continue
        for g in r.get("apiGroups") or [""]:
            for res in r.get("resources") or []:
                for v in r.get("verbs") or []:
                    out.add((str(g), str(res), str(v)))
    return out


def remote_token(side: ClusterSide) -> str | None:
    """The remote service account's token on ``side`` (decoded), if the Secret holds one."""
    data = (side.token_secret or {}).get("data") or {}
    return _unb64(data.get("token")) or None


def remote_ca(side: ClusterSide) -> str | None:
    """base64 PEM of ``side``'s CA: from describe_cluster (EKS) or the token Secret."""
    if side.ca_data:
        return side.ca_data
    data = (side.token_secret or {}).get("data") or {}
    ca = data.get("ca.crt")
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
    """(server, CA data, token) of a kubeconfig's current context; None if unreadable."""
    if not text:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict):
        return None

    def named(section: str, name: Any) -> Mapping[str, Any]:
        for item in data.get(section) or []:
            if isinstance(item, Mapping) and item.get("name") == name:
                return item
        return {}

    current = data.get("current-context")
    ctx = named("contexts", current).get("context") or {}
    cluster = named("clusters", ctx.get("cluster")).get("cluster") or {}
    user = named("users", ctx.get("user")).get("user") or {}
    return (
        str(cluster.get("server", "")),
        str(cluster.get("certificate-authority-data", "")),
        str(user.get("token", "")),
    )


def normalized_server(url: str | None) -> str | None:
    """``https://Host:443/`` → ``https://host:443``: one spelling per API server."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if not parts.hostname:
        return None
    scheme = parts.scheme or "https"
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return None
    return f"{scheme}://{parts.hostname.lower()}:{port}"


def access_secret_ref(rcc: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) of the RCC's clusterAccessSecret, if it has one."""
    spec = rcc.get("spec")
    ref = spec.get("clusterAccessSecret") if isinstance(spec, Mapping) else None
    if not isinstance(ref, Mapping) or not ref.get("name"):
        return None
    return str(ref.get("namespace") or ""), str(ref["name"])


def rcc_server(rcc: Mapping[str, Any], side: ClusterSide) -> str | None:
    """The API server an RCC on ``side`` reads: from its access Secret or inline fields."""
    spec = rcc.get("spec")
    if not isinstance(spec, Mapping):
        return None
    ref = access_secret_ref(rcc)
    if ref is not None:
        secret = side.rcc_secrets.get(f"{ref[0]}/{ref[1]}")
        if secret is None:
            return None
        meaning = kubeconfig_meaning(_unb64((secret.get("data") or {}).get("kubeconfig")))
        return normalized_server(meaning[0]) if meaning else None
    inline = kubeconfig_meaning(str(spec.get("kubeconfigInline") or ""))
    if inline is not None and inline[0]:
        return normalized_server(inline[0])
    return normalized_server(str(spec.get("k8sAPIEndpoint") or ""))


@dataclass(frozen=True)
class FederationRcc:
    """The RCC on one side that federates the other cluster, and any duplicates of it."""

    rcc: Mapping[str, Any] | None  # None: none yet
    duplicates: tuple[Mapping[str, Any], ...]


def federation_rcc(side: ClusterSide, other: ClusterSide | None, federation: str) -> FederationRcc:
    """The configured RCC if present; else one pointing at the other's API server.

    Among RCCs pointing at the same server, one owned by this federation is preferred,
    then the first unowned one by name; the rest are duplicates.
    """
    named = next((r for r in side.rccs if _meta(r).get("name") == side.rcc_name), None)
    target = normalized_server(other.endpoint) if other is not None else None
    same = sorted(
        (
            r
            for r in side.rccs
            if r is not named and target is not None and rcc_server(r, side) == target
        ),
        key=lambda r: (not owned_by(r, federation), str(_meta(r).get("name"))),
    )
    if named is not None:
        return FederationRcc(named, tuple(same))
    if same:
        return FederationRcc(same[0], tuple(same[1:]))
    return FederationRcc(None, ())


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
        meta = obj.get("metadata") or {}
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
        if whose is Ownership.FOREIGN:
            self.adoptable.append(f"{kind} {ns}{meta['name']} on {side.backend}")
        if not drift:
            return True
        if whose is Ownership.FOREIGN:
            self.finding(
                Severity.WARNING,
                "rcc.foreign",
                f"{label} is not managed by fedkeeper and {'; '.join(drift)}; fix it by hand, "
                "or take it over with `fedkeeper adopt --apply` so fedkeeper restores it",
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
    """
    p = _Planner(obs.names)
    pairs = [(obs.eks, obs.onprem), (obs.onprem, obs.eks)]
    for side, _ in pairs:
        if side is not None:
            _plan_remote_access(p, side)
    for side, other in pairs:
        if side is not None:
            _plan_local(p, side, other)
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


def _plan_remote_access(p: _Planner, side: ClusterSide) -> None:
    want = desired_remote_objects(p.names)
    sa = p.names.remote_sa
    p.ensure(
        side,
        want["ServiceAccount"],
        side.service_account,
        [],
        {},
        "the other cluster's Typha reads this cluster as this service account",
    )
    token = side.token_secret
    token_drift = []
    if token is not None:
        if token.get("type") != SA_TOKEN_TYPE:
            token_drift.append(f"its type is {token.get('type')!r} (want {SA_TOKEN_TYPE})")
        if (_meta(token).get("annotations") or {}).get(SA_NAME_ANNOTATION) != sa:
            token_drift.append(f"it is not annotated {SA_NAME_ANNOTATION}={sa}")
    if (
        token is not None
        and token_drift
        and owned_by(token, p.names.federation)
        and not _ignored(token)
    ):
        # Type and token binding cannot be patched meaningfully: re-create the Secret.
        p.change(
            side,
            want["Secret"],
            Action.DELETE,
            f"{side.backend} token Secret {sa} is unusable ({'; '.join(token_drift)}); "
            "re-creating it",
            {"op": "delete"},
            _meta(token).get("resourceVersion"),
        )
        p.change(
            side,
            want["Secret"],
            Action.CREATE,
            f"{side.backend} token Secret {sa} is re-created for service account {sa}",
            {"op": "create", "body": want["Secret"]},
            after=(f"{side.backend}/Secret/{want['Secret']['metadata']['namespace']}/{sa}",),
        )
        p.plan.settle = True
    else:
        p.ensure(
            side,
            want["Secret"],
            token,
            token_drift,
            {},
            "the other cluster needs a long-lived token for this service account",
        )
        if token is None:
            p.plan.settle = True
    cr = want["ClusterRole"]
    missing = _rule_set(cr["rules"]) - _rule_set((side.cluster_role or {}).get("rules"))
    cr_drift = (
        [f"it lacks {len(missing)} permission(s) such as {'/'.join(sorted(missing)[0])}"]
        if missing
        else []
    )
    p.ensure(
        side,
        cr,
        side.cluster_role,
        cr_drift,
        {"rules": cr["rules"]},
        "it grants the remote service account read access for federation",
    )
    crb = want["ClusterRoleBinding"]
    crb_drift = _binding_drift(side.cluster_role_binding, crb)
    p.ensure(
        side,
        crb,
        side.cluster_role_binding,
        crb_drift,
        {"roleRef": crb["roleRef"], "subjects": crb["subjects"]},
        "it binds the remote service account to its ClusterRole",
    )


def _binding_drift(actual: Mapping[str, Any] | None, want: Mapping[str, Any]) -> list[str]:
    if actual is None:
        return []
    drift = []
    if (actual.get("roleRef") or {}).get("name") != want["roleRef"]["name"] or (
        actual.get("roleRef") or {}
    ).get("kind") != want["roleRef"]["kind"]:
        drift.append(f"its roleRef is {actual.get('roleRef')}")
    subjects = actual.get("subjects") or []
    for s in want["subjects"]:
        if not any(
            x.get("kind") == s["kind"]
            and x.get("name") == s["name"]
            and x.get("namespace") == s["namespace"]
            for x in subjects
            if isinstance(x, Mapping)
        ):
            drift.append(f"it does not bind {s['namespace']}/{s['name']}")
    return drift


def _plan_local(p: _Planner, side: ClusterSide, other: ClusterSide | None) -> None:
    names = p.names
    access = desired_typha_access(names)
    role = access["Role"]
    missing = _rule_set(role["rules"]) - _rule_set((side.typha_role or {}).get("rules"))
    p.ensure(
        side,
        role,
        side.typha_role,
        ["it does not let Typha read secrets"] if missing else [],
        {"rules": role["rules"]},
        "calico-typha must be allowed to read the RCC's access Secret",
    )
    rb = access["RoleBinding"]
    p.ensure(
        side,
        rb,
        side.typha_binding,
        _binding_drift(side.typha_binding, rb),
        {"roleRef": rb["roleRef"], "subjects": rb["subjects"]},
        "it binds calico-typha to the secret-access Role",
    )

    found = federation_rcc(side, other, names.federation)
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
    if actual is not None and _meta(actual).get("name") != side.rcc_name:
        _plan_existing_rcc(p, side, other, actual)
        _prune_rccs(p, side, keep=str(_meta(actual).get("name")))
        ref = access_secret_ref(actual)
        _prune_access_secrets(p, side, keep=ref[1] if ref else "")
        return

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
            _rcc_patch(actual, want),
            f"{side.backend} must federate the {other.backend if other else 'other'} cluster "
            f"({side.rcc_name}) to see its endpoints",
            after=(secret_target,) if writes_secret else (),
        )
    _prune_rccs(p, side, keep=side.rcc_name)
    _prune_access_secrets(p, side, keep=access_secret_name(side.rcc_name))


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
        data = actual_secret.get("data") or {}
        if _unb64(data.get("datastoreType")) != "kubernetes":
            drift.append("its datastoreType is not kubernetes")
        have = kubeconfig_meaning(_unb64(data.get("kubeconfig")))
        want_meaning = kubeconfig_meaning(_unb64(want_secret["data"]["kubeconfig"]))
        if have is None:
            drift.append("its kubeconfig cannot be read")
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
    p.ensure(
        side,
        want_secret,
        actual_secret,
        drift,
        {"data": want_secret["data"]},
        f"the RCC {rcc_name} reads {other.backend} through it",
        adopt=ref is None,
    )
    return True


def _rcc_drift(actual: Mapping[str, Any] | None, want: Mapping[str, Any]) -> list[str]:
    if actual is None:
        return []
    raw = actual.get("spec")
    spec = served_rcc_spec(raw) if isinstance(raw, Mapping) else {}  # as the API serves it
    drift = []
    if raw is not None and not isinstance(raw, Mapping):
        drift.append(f"its spec is a {type(raw).__name__}, not an object")
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


def _prune_rccs(p: _Planner, side: ClusterSide, *, keep: str) -> None:
    for r in side.rccs:
        name = _meta(r).get("name")
        if name == keep or not owned_by(r, p.names.federation) or _ignored(r):
            continue
        p.change(
            side,
            r,
            Action.DELETE,
            f"{side.backend} RCC {name} is owned by fedkeeper but no longer configured "
            f"(the RCC is now {keep}); deleting it",
            {"op": "delete"},
            _meta(r).get("resourceVersion"),
        )


def _prune_access_secrets(p: _Planner, side: ClusterSide, *, keep: str) -> None:
    for s in side.owned_access_secrets:
        name = _meta(s).get("name")
        labels = _meta(s).get("labels") or {}
        if (
            name == keep
            or not owned_by(s, p.names.federation)
            or _ignored(s)
            or labels.get(ROLE_LABEL) != ACCESS_SECRET_ROLE
        ):
            continue
        p.change(
            side,
            {**s, "kind": "Secret"},
            Action.DELETE,
            f"{side.backend} access Secret {name} belongs to no configured RCC; deleting it",
            {"op": "delete"},
            _meta(s).get("resourceVersion"),
        )
