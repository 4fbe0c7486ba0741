"""`fedkeeper onprem-bootstrap`: the identity fedkeeper uses on the on-prem cluster.

Produces (or reconciles: creates or updates each to the desired state, showing the diff
first) a ServiceAccount with a long-lived token Secret and the narrow
ClusterRole of :mod:`fedkeeper.rbac`, then the kubeconfig to store in Secrets Manager and
the exact command that stores it. An ``exec`` credential (``aws eks get-token`` style) would
not work from a Lambda; a service-account token does.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import yaml

from fedkeeper.config import FederationConfig
from fedkeeper.errors import PermanentError
from fedkeeper.model import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from fedkeeper.rbac import reconciler_objects
from fedkeeper.topology.model import OnPremCluster

if TYPE_CHECKING:
    from fedkeeper.adapters.kube import KubeCluster

NAMESPACE = "fedkeeper"
SERVICE_ACCOUNT = "fedkeeper"
TOKEN_SECRET = "fedkeeper-token"
_LABELS = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}


def bootstrap_objects(config: FederationConfig) -> list[dict[str, Any]]:
    """The on-prem objects fedkeeper's own identity needs, in apply order."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": dict(_LABELS)},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE, "labels": dict(_LABELS)},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": TOKEN_SECRET,
                "namespace": NAMESPACE,
                "labels": dict(_LABELS),
                "annotations": {"kubernetes.io/service-account.name": SERVICE_ACCOUNT},
            },
        },
        *reconciler_objects(
            config,
            "onprem",
            {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE},
        ),
    ]


def manifests_yaml(config: FederationConfig) -> str:
    return yaml.safe_dump_all(bootstrap_objects(config), sort_keys=False)


def store_command(config: FederationConfig, path: str) -> str:
    return (
        f"aws secretsmanager put-secret-value --region {config.aws.region} "
        f"--secret-id {config.sole_site().credentials_secret} --secret-string file://{path}"
    )


# Fields each kind is reconciled on (besides labels and annotations, which are merged: keys
# fedkeeper sets are held to its values, keys others set are kept). A Secret's data belongs
# to the token controller and is never compared.
_SPEC_FIELDS = {
    "ClusterRole": ("rules",),
    "Role": ("rules",),
    "ClusterRoleBinding": ("roleRef", "subjects"),
    "RoleBinding": ("roleRef", "subjects"),
    "Secret": ("type",),
}
# Immutable once created: a difference means delete and create again.
_IMMUTABLE = {"roleRef", "type"}


@dataclass(frozen=True)
class ObjectDiff:
    """What reconciling one bootstrap object takes: create, update, recreate or nothing."""

    desired: dict[str, Any]
    current: dict[str, Any] | None
    action: Literal["create", "update", "recreate", "unchanged"]
    differences: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        meta = self.desired["metadata"]
        return f"{self.desired['kind']} {meta.get('namespace', '') or ''}/{meta['name']}"


def _differences(desired: dict[str, Any], current: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for part in ("labels", "annotations"):
        want = desired["metadata"].get(part) or {}
        have = current.get("metadata", {}).get(part) or {}
        for k, v in want.items():
            if have.get(k) != v:
                out.append(f"metadata.{part}.{k}: {have.get(k)!r} → {v!r}")
    for fld in _SPEC_FIELDS.get(desired["kind"], ()):
        want_v, have_v = desired.get(fld), current.get(fld)
        if want_v == have_v:
            continue
        if fld == "rules" and isinstance(want_v, list) and isinstance(have_v, list):
            missing = [r for r in want_v if r not in have_v]
            extra = [r for r in have_v if r not in want_v]
            out.append(f"rules: {len(have_v)} → {len(want_v)}")
            out += [f"  + {_rule(r)}" for r in missing]
            out += [f"  - {_rule(r)}" for r in extra]
        else:
            out.append(f"{fld}: {json.dumps(have_v)} → {json.dumps(want_v)}")
    return out


def _rule(rule: dict[str, Any]) -> str:
    groups = ",".join(g or "core" for g in rule.get("apiGroups", []))
    names = f" {','.join(rule['resourceNames'])}" if rule.get("resourceNames") else ""
    return (
        f"{groups} {','.join(rule.get('resources', []))}{names}: {','.join(rule.get('verbs', []))}"
    )


def plan_bootstrap(cluster: KubeCluster, config: FederationConfig) -> list[ObjectDiff]:
    """Read each bootstrap object and say what would bring it to the desired state."""
    diffs: list[ObjectDiff] = []
    for obj in bootstrap_objects(config):
        meta = obj["metadata"]
        current = cluster.get(obj["kind"], meta["name"], meta.get("namespace"))
        if current is None:
            diffs.append(ObjectDiff(obj, None, "create"))
            continue
        differences = _differences(obj, current)
        if not differences:
            diffs.append(ObjectDiff(obj, current, "unchanged"))
            continue
        immutable = any(
            obj.get(f) != current.get(f)
            for f in _IMMUTABLE & set(_SPEC_FIELDS.get(obj["kind"], ()))
        )
        diffs.append(
            ObjectDiff(obj, current, "recreate" if immutable else "update", tuple(differences))
        )
    return diffs


def render_plan(diffs: list[ObjectDiff]) -> list[str]:
    """The diff, shown before anything is written."""
    lines = []
    for d in diffs:
        lines.append(f"{d.action:<9} {d.label}")
        lines += [f"            {x}" for x in d.differences]
    return lines


def _merged(desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps(current))
    meta = body.setdefault("metadata", {})
    for part in ("labels", "annotations"):
        want = desired["metadata"].get(part)
        if want:
            meta[part] = {**(meta.get(part) or {}), **want}
    for fld in _SPEC_FIELDS.get(desired["kind"], ()):
        if fld in desired:
            body[fld] = desired[fld]
    return body


def apply_plan(cluster: KubeCluster, diffs: list[ObjectDiff]) -> list[str]:
    """Carry out the plan; updates are conditional on the resourceVersion that was read."""
    done = []
    for d in diffs:
        meta = d.desired["metadata"]
        if d.action == "create":
            cluster.create(d.desired)
            done.append(f"created   {d.label}")
        elif d.action == "update" and d.current is not None:
            cluster.replace(_merged(d.desired, d.current))
            done.append(f"updated   {d.label}")
        elif d.action == "recreate" and d.current is not None:
            rv = d.current.get("metadata", {}).get("resourceVersion")
            cluster.delete(
                d.desired["kind"],
                meta["name"],
                namespace=meta.get("namespace"),
                resource_version=rv,
            )
            cluster.create(d.desired)
            done.append(f"recreated {d.label}")
    if all(d.action == "unchanged" for d in diffs):
        done.append("every object already as desired: nothing written")
    return done


def apply_bootstrap(cluster: KubeCluster, config: FederationConfig) -> list[str]:
    """Reconcile every bootstrap object to its desired state; lines of what happened."""
    return apply_plan(cluster, plan_bootstrap(cluster, config))


def fedkeeper_kubeconfig(
    cluster: KubeCluster,
    config: FederationConfig,
    *,
    wait_s: float = 10.0,
    site: str | None = None,
) -> dict[str, Any]:
    """The kubeconfig (token auth) to store in the on-prem credentials secret of ``site``
    (a site's mesh name; None: the federation's one site)."""
    deadline = time.monotonic() + wait_s
    while True:
        secret = cluster.get("Secret", TOKEN_SECRET, NAMESPACE) or {}
        data = secret.get("data") or {}
        if data.get("token"):
            break
        if time.monotonic() > deadline:
            raise PermanentError(
                f"Secret {NAMESPACE}/{TOKEN_SECRET} has no token yet; is the token controller "
                "running?"
            )
        time.sleep(0.5)
    token = base64.b64decode(data["token"]).decode()
    onprem = config.sole_site() if site is None else config.cluster(site)
    if not isinstance(onprem, OnPremCluster):
        raise PermanentError(f"{site} is not an on-prem cluster of the federation")
    cluster_entry: dict[str, Any] = {"server": onprem.api_endpoint}
    if data.get("ca.crt"):
        cluster_entry["certificate-authority-data"] = data["ca.crt"]
    name = onprem.cluster_name
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster_entry}],
        "users": [{"name": "fedkeeper", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "fedkeeper"}}],
        "current-context": name,
    }
